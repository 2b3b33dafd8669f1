"""Closed-form predictions of the Quantization Model of Neural Scaling.

Convention: ``alpha`` is the paper's α; quantum k is used with frequency
p_k = k^-(α+1) / ζ(α+1) (or the generalised harmonic number for finite K).
``K=None`` means infinitely many quanta. Per-quantum losses ``a`` (learned) and ``b``
(unlearned) default to 0 and 1, so the loss is the unlearned mass; they may be
constants, arrays of length K, or callables of the 1-based rank k.
"""
from theory.data import (ComputeOptimal, compute_optimal, critical_batch, expected_loss_D,
                         expected_loss_ND,
                         expected_loss_S, loss_D_asymptote, loss_S_asymptote, prob_learned_D,
                         prob_learned_N, prob_learned_S)
from theory.exponents import (alpha_D, alpha_from_alpha_D, alpha_from_alpha_N,
                              alpha_from_rank_slope, alpha_gamma_from_exponents, alpha_N,
                              alpha_S, finite_K_cutoff, local_exponent, sliding_exponent,
                              tilted_exponents)
from theory.loss import (capacity, loss_infinity, loss_N, loss_n, loss_n_asymptote,
                         per_quantum)
from theory.zipf import frequencies, normalization, tail_mass, truncation_offset

__all__ = [
    "normalization", "frequencies", "tail_mass", "truncation_offset",
    "loss_n", "loss_n_asymptote", "loss_infinity", "loss_N", "capacity", "per_quantum",
    "expected_loss_D", "loss_D_asymptote", "expected_loss_S", "loss_S_asymptote",
    "expected_loss_ND", "prob_learned_D", "prob_learned_S", "prob_learned_N", "critical_batch",
    "compute_optimal", "ComputeOptimal",
    "alpha_N", "alpha_D", "alpha_S", "alpha_from_alpha_N", "alpha_from_alpha_D",
    "alpha_from_rank_slope", "tilted_exponents", "alpha_gamma_from_exponents",
    "local_exponent", "sliding_exponent", "finite_K_cutoff",
]
