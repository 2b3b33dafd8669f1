"""Expected loss with finite data, steps and parameters, and per-quantum emergence.

A quantum is learned once it has been seen at least τ times: among D samples with
probability P(Binomial(D, p_k) ≥ τ), so

    E[L(D)] − L∞ = Σ_k p_k (b_k − a_k) P(Binomial(D, p_k) < τ).

With constant a, b the sum is exact for the first ``head_size(α, τ)`` ranks and the rest
is the substitution u = p(x), which turns ∫ p(x) P(Bin(D, p(x)) < τ) dx into a finite sum
of regularised incomplete beta functions (no Poisson approximation), plus the
Euler–Maclaurin derivative term: about 1e-9 relative for any D up to 1e15 and any K.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import special

from common.errors import InputError
from common.results import Result, jsonable
from theory._checks import (broadcast, check_alpha, check_K, check_positive, check_rule,
                            check_sizes, check_tau, finish)
from theory._sums import (check_head_memory, learned_prob, step_presence,
                          unlearned_mass_samples, unlearned_prob, weighted_sum)
from theory.loss import _losses, _total, capacity
from theory.zipf import _normalization, frequencies, tail_mass


def _transition_rank(alpha, Z, p_star):
    """The rank x at which p(x) = p_star (where learning is half-way)."""
    return (Z * p_star) ** (-1.0 / (alpha + 1.0)) if p_star > 0 else math.inf


def _expected(alpha, K, tau, a, b, size, hi, unlearned_of, p_star):
    """L∞ + Σ_{k≤hi} p_k d_k U_i(p_k) + Σ_{k>hi} p_k d_k for each point i (generic path)."""
    a_, b_, d = _losses(a, b, K)
    l_inf = _total(alpha, K, a_)
    Z = _normalization(alpha, K)
    check_head_memory(alpha, tau)           # the head sums below, and the rest's (τ = 1)
    check_head_memory(alpha)
    out = np.empty(size.shape)
    for i, (x, top) in enumerate(zip(size.reshape(-1), hi.reshape(-1))):
        pts = (_transition_rank(alpha, Z, p_star(x)),)
        head = weighted_sum(alpha, K, d, 1, top, unlearned_of(x), tau, pts)
        rest = 0.0 if not math.isfinite(top) else weighted_sum(alpha, K, d, int(top) + 1, math.inf)
        out.flat[i] = l_inf + head + rest
    return out


def expected_loss_D(D, alpha, tau=1, K=None, a=0, b=1):
    """E[L(D)] = L∞ + Σ_k p_k (b_k − a_k) P(Binomial(D, p_k) < τ) (multi-epoch data).

    Exact for any D ≥ 0 (non-integer D: the continuous extension 1 − I_p(τ, D−τ+1)) and
    any K. Constant a, b: head sum plus closed-form incomplete-beta tail, vectorised over
    D (0.02–1 ms per point, 1e-10 relative). Per-quantum arrays (finite K) are summed
    term by term; callables use adaptive quadrature beyond the head (a few ms per point).
    """
    alpha, tau, K = check_alpha(alpha), check_tau(tau), check_K(K)
    D = check_sizes(D, "D")
    return _expected_ND(alpha, tau, K, a, b, D, np.full(D.shape, math.inf))


def _expected_ND(alpha, tau, K, a, b, D, hi):
    """L∞ + Σ_{k≤hi} p_k d_k P(Bin(D, p_k) < τ) + Σ_{k>hi} p_k d_k (hi = inf: all quanta)."""
    a_, b_, d = _losses(a, b, K)
    if d.is_const:
        l_inf = a_.value
        unl = unlearned_mass_samples(alpha, K, D, tau, hi)
        rest = np.zeros(np.broadcast(D, hi).shape)
        fin = np.broadcast_to(np.isfinite(hi), rest.shape)
        if fin.any():
            rest[fin] = tail_mass(np.broadcast_to(hi, rest.shape)[fin], alpha, K)
        return finish(l_inf + d.value * (unl + rest))
    return finish(_expected(alpha, K, tau, a, b, D, hi,
                            lambda x: (lambda p: unlearned_prob(x, p, tau)),
                            lambda x: tau / x if x > 0 else 0.0))


def loss_D_asymptote(D, alpha, tau=1, a=0, b=1):
    """(b − a) ζ(α+1)^(−1/(α+1)) (1/α) Γ(τ+μ)/Γ(τ) D^−μ with μ = α/(α+1), the large-D
    form of E[L(D)] − L∞ at infinite K (a, b constants)."""
    alpha, tau = check_alpha(alpha), check_tau(tau)
    D = check_sizes(D, "D")
    _, _, d = _losses(a, b, None)
    if not d.is_const:
        raise InputError("a and b must be constants for the asymptote")
    mu = alpha / (alpha + 1.0)
    pref = d.value * _normalization(alpha, None) ** (-1.0 / (alpha + 1.0)) / alpha \
        * math.exp(special.gammaln(tau + mu) - special.gammaln(tau))
    with np.errstate(divide="ignore"):
        return finish(pref * D ** -mu)


def expected_loss_S(S, alpha, batch, tau=1, rule="samples", K=None, a=0, b=1):
    """E[L] after S steps of batch B (single epoch).

    rule="samples": learned after τ occurrences among the S·B samples, i.e. E[L(D = S·B)].
    rule="steps": learned after appearing in τ distinct steps; a step contains quantum k
    with probability q_k = 1 − (1 − p_k)^B, so P(unlearned) = P(Binomial(S, q_k) < τ).
    Once B·p_k ≳ 1 a bigger batch no longer helps quantum k (critical batch ≈ 1/p_k).
    The steps rule is summed by adaptive quadrature beyond the head (ms per point).
    """
    alpha, tau, K = check_alpha(alpha), check_tau(tau), check_K(K)
    batch, rule = check_positive(batch, "batch"), check_rule(rule)
    S = check_sizes(S, "S")
    if rule == "samples":
        return expected_loss_D(S * batch, alpha, tau=tau, K=K, a=a, b=b)
    return finish(_expected(alpha, K, tau, a, b, S, np.full(S.shape, math.inf),
                            lambda x: (lambda p: unlearned_prob(x, step_presence(p, batch), tau)),
                            lambda x: _step_p_star(x, tau, batch)))


def _step_p_star(S, tau, batch):
    """The p at which a quantum is present in about τ of S steps."""
    q = tau / S if S > 0 else math.inf
    return 1.0 if q >= 1 else -math.expm1(math.log1p(-q) / batch)


def loss_S_asymptote(S, alpha, batch, tau=1, rule="samples", a=0, b=1):
    """The large-S form of E[L(S)] − L∞: loss_D_asymptote(S·B). Both rules share it,
    because the quanta still unlearned at large S have B·p_k ≪ 1, where q_k ≈ B p_k."""
    batch, rule = check_positive(batch, "batch"), check_rule(rule)
    S = check_sizes(S, "S")
    return loss_D_asymptote(S * batch, alpha, tau=tau, a=a, b=b)


def expected_loss_ND(N, D, alpha, C=1.0, tau=1, K=None, a=0, b=1):
    """E[L(N, D)]: the network holds n = ⌊N/C⌋ quanta, and quantum k ≤ n is learned once
    seen τ times among D samples:
    Σ_{k≤n} p_k [a_k P(learned) + b_k P(not)] + Σ_{k>n} p_k b_k. Broadcasts N and D."""
    alpha, tau, K = check_alpha(alpha), check_tau(tau), check_K(K)
    C = check_positive(C, "C")
    N, D = broadcast(N=check_sizes(N, "N"), D=check_sizes(D, "D"))
    n = capacity(N, C)
    return _expected_ND(alpha, tau, K, a, b, D.astype(float), n.astype(float))


def prob_learned_D(k, D, alpha, tau=1, K=None):
    """P(quantum k learned from D samples) = P(Binomial(D, p_k) ≥ τ). Broadcasts k, D."""
    alpha, tau, K = check_alpha(alpha), check_tau(tau), check_K(K)
    D = check_sizes(D, "D")
    p, D = broadcast(k=np.asarray(frequencies(alpha, K, k)), D=D)
    return finish(learned_prob(D, p, tau))


def prob_learned_S(k, S, alpha, batch, tau=1, rule="samples", K=None):
    """P(quantum k learned after S steps of batch B): P(Bin(S·B, p_k) ≥ τ) for
    rule="samples", P(Bin(S, 1 − (1 − p_k)^B) ≥ τ) for rule="steps"."""
    alpha, tau, K = check_alpha(alpha), check_tau(tau), check_K(K)
    batch, rule = check_positive(batch, "batch"), check_rule(rule)
    S = check_sizes(S, "S")
    p, S = broadcast(k=np.asarray(frequencies(alpha, K, k)), S=S)
    if rule == "samples":
        return finish(learned_prob(S * batch, p, tau))
    return finish(learned_prob(S, step_presence(p, batch), tau))


def prob_learned_N(k, N, alpha, C=1.0):
    """1 if quantum k fits in N parameters (k ≤ ⌊N/C⌋), else 0. Broadcasts k, N."""
    check_alpha(alpha)
    C = check_positive(C, "C")
    k, N = broadcast(k=check_sizes(k, "k"), N=check_sizes(N, "N"))
    if k.size and (k < 1).any():
        raise InputError("k must be >= 1 (ranks are 1-based)")
    return finish((k <= capacity(N, C)).astype(float))


def critical_batch(k, alpha, K=None):
    """B_crit(k) ≈ 1/p_k: under the steps rule a batch well below it makes each step
    count (steps to learn quantum k ∝ 1/B), a batch well above it is wasted (quantum k is
    in nearly every step, so it still needs τ steps)."""
    p = np.asarray(frequencies(alpha, K, k))
    with np.errstate(divide="ignore"):
        return finish(1.0 / p)


@dataclasses.dataclass(frozen=True)
class ComputeOptimal(Result):
    """Compute-optimal allocation at compute = 6 N D (see ``compute_optimal``).

    N*(c) = N_coef c^N_exponent, D*(c) = D_coef c^D_exponent,
    L*(c) − L∞ = L_coef c^−L_exponent.

    A result of the protocol (``common.results``): ``params`` are the exponents, the
    coefficients and the asymptotes' prefactors A, B; ``conf_int`` is an empty table,
    because a closed form of given α, τ, C has no sampling uncertainty (intervals come
    with the fits that estimate α); ``plot`` draws N*, D* and L* against compute.
    """
    alpha: float
    tau: int
    C: float
    A: float            # L − L∞ ≈ A N^−α from parameters
    B: float            # L − L∞ ≈ B D^−μ from data
    N_exponent: float
    D_exponent: float
    L_exponent: float
    N_coef: float
    D_coef: float
    L_coef: float
    L_inf: float

    @property
    def params(self) -> dict:
        return {k: float(getattr(self, k)) for k in
                ("N_exponent", "D_exponent", "L_exponent", "N_coef", "D_coef", "L_coef",
                 "A", "B", "L_inf")}

    def _bounds(self, level: float) -> dict:
        return {}

    def to_dict(self) -> dict:
        return jsonable(dataclasses.asdict(self))

    def summary(self) -> str:
        return (f"compute-optimal allocation, compute c = 6 N D (alpha = {self.alpha:g}, "
                f"tau = {self.tau}, C = {self.C:g})\n"
                f"  N*(c) = {self.N_coef:.4g} c^{self.N_exponent:.4g}\n"
                f"  D*(c) = {self.D_coef:.4g} c^{self.D_exponent:.4g}\n"
                f"  L*(c) - L_inf = {self.L_coef:.4g} c^-{self.L_exponent:.4g}   "
                f"(L_inf = {self.L_inf:g})")

    def plot(self, ax=None, compute=None):
        """N*, D* and L* − L∞ against compute (``theory.plots.plot_compute_optimal``)."""
        from theory.plots import plot_compute_optimal

        return plot_compute_optimal(self, compute=compute, ax=ax)

    def N(self, compute):
        """Compute-optimal parameters."""
        return finish(self.N_coef * check_sizes(compute, "compute") ** self.N_exponent)

    def D(self, compute):
        """Compute-optimal samples."""
        return finish(self.D_coef * check_sizes(compute, "compute") ** self.D_exponent)

    def L(self, compute):
        """Loss at the optimum (L∞ included)."""
        c = check_sizes(compute, "compute")
        with np.errstate(divide="ignore"):
            return finish(self.L_inf + self.L_coef * c ** -self.L_exponent)


def compute_optimal(alpha, tau=1, C=1.0, a=0, b=1) -> ComputeOptimal:
    """Compute-optimal N*, D*, L* for compute c = 6 N D, from the two asymptotes.

    Derivation: with A = (b−a) C^α/(α ζ(α+1)) (loss_n_asymptote at n = N/C) and
    B = (b−a) ζ(α+1)^(−1/(α+1)) Γ(τ+μ)/(α Γ(τ)) (loss_D_asymptote), μ = α/(α+1),
    minimise A N^−α + B D^−μ with D = c/(6N). Setting the N-derivative to zero gives
    α A N^−α = μ B D^−μ, so N*^(α+μ) = (αA/(μB)) (c/6)^μ, i.e.
    N* = (αA/(μB))^((α+1)/(α(α+2))) (c/6)^(1/(α+2)), D* = c/(6 N*) ∝ c^((α+1)/(α+2)),
    and L* − L∞ = A N*^−α + B D*^−μ = (α+2) A N*^−α ∝ c^(−α/(α+2)).
    The sum form slightly overstates E[L(N, D)] (the two shortfalls overlap) but has the
    same exponents. a, b must be constants.
    """
    alpha, tau = check_alpha(alpha), check_tau(tau)
    C = check_positive(C, "C")
    a_, _, d = _losses(a, b, None)
    if not d.is_const:
        raise InputError("a and b must be constants for compute_optimal")
    if d.value <= 0:
        raise InputError("b must exceed a (learning a quantum must lower the loss)")
    mu = alpha / (alpha + 1.0)
    zeta = _normalization(alpha, None)
    A = d.value * C ** alpha / (alpha * zeta)
    B = d.value * zeta ** (-1.0 / (alpha + 1.0)) / alpha \
        * math.exp(special.gammaln(tau + mu) - special.gammaln(tau))
    e_N = 1.0 / (alpha + 2.0)
    N_coef = (alpha * A / (mu * B)) ** (1.0 / (alpha + mu)) * 6.0 ** -e_N
    D_coef = 1.0 / (6.0 * N_coef)
    L_coef = (alpha + 2.0) * A * N_coef ** -alpha
    return ComputeOptimal(alpha=alpha, tau=tau, C=C, A=A, B=B, N_exponent=e_N,
                          D_exponent=(alpha + 1.0) / (alpha + 2.0),
                          L_exponent=alpha / (alpha + 2.0), N_coef=N_coef, D_coef=D_coef,
                          L_coef=L_coef, L_inf=a_.value)
