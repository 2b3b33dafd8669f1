"""Loss after learning the n most frequent quanta, and with N parameters.

L(n) = Σ_{k≤n} p_k a_k + Σ_{k>n} p_k b_k, so L(n) − L∞ = Σ_{k>n} p_k (b_k − a_k).
"""
from __future__ import annotations

import math

import numpy as np

from common.errors import InputError
from theory._checks import check_alpha, check_K, check_positive, check_sizes, finish
from theory._sums import PerQuantum, check_head_memory, weighted_sum
from theory.zipf import _normalization, tail_mass


def per_quantum(value, K, name: str = "a") -> np.ndarray:
    """A per-quantum loss (a constant, a length-K array or a callable of the 1-based rank k)
    as its K values at k = 1..K: the one reading of ``a`` and ``b`` that the sums here and
    the Monte Carlo share. Refuses non-finite values and a wrong length, naming ``name``."""
    K = check_K(K)
    if K is None:
        raise InputError(f"{name}: K must be finite to list one value per quantum")
    return PerQuantum(value, name, K).values(K)


def _losses(a, b, K):
    a_, b_ = PerQuantum(a, "a", K), PerQuantum(b, "b", K)
    return a_, b_, b_.minus(a_)


def _total(alpha, K, w: PerQuantum) -> float:
    """Σ_k p_k w_k over all quanta."""
    if w.is_const:
        return w.value
    check_head_memory(alpha)
    return weighted_sum(alpha, K, w, 1, math.inf)


def loss_infinity(alpha, K=None, a=0):
    """L∞ = Σ_k p_k a_k, the loss once every quantum is learned."""
    alpha, K = check_alpha(alpha), check_K(K)
    return _total(alpha, K, PerQuantum(a, "a", K))


def loss_n(n, alpha, K=None, a=0, b=1):
    """L(n) = Σ_{k≤n} p_k a_k + Σ_{k>n} p_k b_k, exact for finite or infinite K.

    With constant a and b it is L∞ + (b − a)·tail_mass(n): exact at integer n and the
    smooth Hurwitz-zeta interpolation between them. With per-quantum arrays or callables
    n is floored (ranks are whole quanta); callables at infinite K are summed exactly for
    the first ranks and by Euler–Maclaurin with adaptive quadrature beyond.
    """
    alpha, K = check_alpha(alpha), check_K(K)
    n = check_sizes(n, "n")
    a_, b_, d = _losses(a, b, K)
    l_inf = _total(alpha, K, a_)
    if d.is_const:
        return finish(l_inf + d.value * np.asarray(tail_mass(n, alpha, K)))
    # Σ_{k≤n} p_k a_k + Σ_{k>n} p_k b_k as two sums (no cancellation when L(n) ≪ L(0))
    check_head_memory(alpha)
    out = np.array([weighted_sum(alpha, K, a_, 1, m) + weighted_sum(alpha, K, b_, m + 1, math.inf)
                    for m in map(int, capacity(n.reshape(-1)))])
    return finish(out.reshape(n.shape))


def capacity(N, C=1.0) -> np.ndarray:
    """n = ⌊N/C⌋: the whole quanta of C parameters each that N parameters hold, floored with
    a 1e-9 tolerance so that a ratio rounded just below an integer (0.3/0.1 =
    2.9999999999999996, 7/0.07) counts that integer."""
    return np.floor(np.asarray(N, dtype=float) / C + 1e-9)


def loss_N(N, alpha, C=1.0, K=None, a=0, b=1):
    """L(N) = L(n = N/C): a network of N parameters holds N/C quanta of C parameters each."""
    C = check_positive(C, "C")
    N = check_sizes(N, "N")
    return loss_n(N / C, alpha, K=K, a=a, b=b)


def loss_n_asymptote(n, alpha, a=0, b=1, midpoint=False):
    """(b − a)/(α ζ(α+1)) · n^-α, the large-n form of L(n) − L∞ at infinite K.

    ``midpoint=True`` uses (n + ½)^-α instead, whose relative error is O(n^-2) rather
    than O(n^-1) (Euler–Maclaurin on Σ_{k>n} k^-(α+1)). a, b must be constants.
    """
    alpha = check_alpha(alpha)
    n = check_sizes(n, "n")
    a_, b_, d = _losses(a, b, None)
    if not d.is_const:
        raise InputError("a and b must be constants for the asymptote")
    x = n + 0.5 if midpoint else n
    zeta = _normalization(alpha, None)                 # refuses α outside the sums' range
    with np.errstate(divide="ignore"):
        return finish(d.value * x ** -alpha / (alpha * zeta))
