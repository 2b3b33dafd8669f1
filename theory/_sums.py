"""Sums over quanta, Σ_k p_k w_k U(p_k), done exactly for a head of ranks and by the
midpoint Euler–Maclaurin formula beyond it:

    Σ_{k=A}^{B} g(k) = ∫_{A−½}^{B+½} g(x) dx + [g'(A−½) − g'(B+½)]/24 − 7/5760 [g''' ...]

g(x) = p(x) w(x) U(p(x)) with the smooth frequency p(x) = x^-(α+1)/Z. Its derivatives
scale as g·(c s(√τ + 4)/x)^m (s = α+1; U changes over a relative width ~1/√τ of D p), so a
head of ``head_size(alpha, tau)`` = 20 s(√τ + 4) ranks leaves a neglected third-derivative
term measured at ≤ 1e-10 relative over α in [0.05, 3], τ in 1..100, D in 1..1e15
(against a head 20× longer; 1e-8 already at 5 s(√τ + 4)).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from common import resources
from common.errors import InputError
from theory.zipf import _normalization, tail_mass

#: A numerical tail integral from rank x0 stops at x0·e^(40/α) (or e^T_MAX): the
#: neglected part is relatively below e^-40 (or (e^T_MAX/x0)^-α, 1e-14 for α=0.05, x0=1e9).
T_MAX = 690.0


class PerQuantum:
    """A per-quantum loss: a constant, an array over k = 1..K, or a callable of k.

    Callables receive float arrays of 1-based ranks; beyond an exact head they are
    integrated, so they must accept non-integer ranks and vary smoothly there.
    """

    def __init__(self, value, name: str, K: int | None):
        self.name = name
        if callable(value):
            self.kind, self.value = "func", value
            return
        arr = np.asarray(value, dtype=float) if not isinstance(value, str) else None
        if arr is None or arr.dtype == object:
            raise InputError(f"{name} must be a number, an array of length K or a callable")
        if arr.ndim == 0:
            if not math.isfinite(float(arr)):
                raise InputError(f"{name} must be finite, got {value!r}")
            self.kind, self.value = "const", float(arr)
            return
        if K is None:
            raise InputError(f"{name}: a per-quantum array needs a finite K "
                             f"(use a callable of k for infinitely many quanta)")
        if arr.shape != (K,):
            raise InputError(f"{name} must have shape ({K},) (one value per quantum), "
                             f"got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise InputError(f"{name} must be finite")
        self.kind, self.value = "array", arr

    @property
    def is_const(self) -> bool:
        return self.kind == "const"

    def at(self, k) -> np.ndarray:
        """Values at 1-based ranks k (array kind: integer ranks ≤ K only)."""
        k = np.asarray(k, dtype=float)
        if self.kind == "const":
            return np.full(k.shape, self.value)
        if self.kind == "array":
            return self.value[k.astype(np.int64) - 1]
        out = np.asarray(self.value(k), dtype=float)
        if out.shape != k.shape:
            try:
                out = np.broadcast_to(out, k.shape).astype(float)
            except ValueError:
                raise InputError(f"{self.name}: the callable returned shape {out.shape} for "
                                 f"ranks of shape {k.shape}") from None
        if not np.isfinite(out).all():
            raise InputError(f"{self.name}: the callable returned non-finite values")
        return out

    def values(self, K: int) -> np.ndarray:
        """The K values at k = 1..K (contiguous, for the Monte Carlo's kernels)."""
        return np.ascontiguousarray(self.at(np.arange(1, K + 1, dtype=float)))

    def minus(self, other: "PerQuantum") -> "PerQuantum":
        """self − other, per quantum."""
        if self.is_const and other.is_const:
            return PerQuantum(self.value - other.value, f"{self.name}-{other.name}", None)
        diff = PerQuantum.__new__(PerQuantum)
        diff.name = f"{self.name}-{other.name}"
        if "array" in (self.kind, other.kind):
            K = len(self.value) if self.kind == "array" else len(other.value)
            k = np.arange(1, K + 1, dtype=float)
            diff.kind, diff.value = "array", self.at(k) - other.at(k)
        else:
            diff.kind, diff.value = "func", lambda k: self.at(k) - other.at(k)
        return diff


def head_size(alpha: float, tau: int) -> int:
    """Ranks summed term by term before the Euler–Maclaurin tail; never past the rank
    exp(746/(α+1)) beyond which k^-(α+1) underflows to 0 (large α: a few ranks)."""
    head = math.ceil(20.0 * (alpha + 1.0) * (math.sqrt(tau) + 4.0))
    underflow = math.exp(min(746.0 / (alpha + 1.0), 60.0))
    return int(max(2, min(head, math.ceil(underflow))))


#: seconds per incomplete-beta term of the closed-form tail (measured: 2.7e-7 for the
#: betainc alone, 6.6e-7 per τ term and D value in all)
SECONDS_PER_TAIL_TERM = 7e-7
#: incomplete-beta terms (D values × τ) evaluated at a time
TAIL_BLOCK = 2_000_000


def check_work(tau: int, n_D: int, head: int) -> None:
    """Refuse a τ whose head ranks or closed-form tail (τ incomplete betas per D, about 64
    bytes each) would not fit in memory, or would take too long, before allocating."""
    # the tail's blocks hold one D's τ terms, or as many D as fit in TAIL_BLOCK terms
    resources.check_memory(64.0 * max(head, tau, min(n_D * tau, TAIL_BLOCK)),
                           f"the expected loss at tau = {tau:,}", "lower tau")
    resources.check_seconds(SECONDS_PER_TAIL_TERM * tau * n_D,
                            f"the expected loss at tau = {tau:,} for {n_D:,} values",
                            "lower tau or the number of values")


def _log_integral(g, lo: float, hi: float, alpha: float, points=()) -> float:
    """∫_lo^hi g(x) dx by adaptive quadrature in t = log x (hi may be inf). Quadrature stops
    where the tail left is e^-40 of the integral, or at x = e^T_MAX; beyond that (small α)
    g is taken as ∝ x^-(α+1), its asymptotic form when nothing there is learned (p → 0) and
    the per-quantum weight has settled to a constant, and the rest is added in closed form,
    g(X)·X/α."""
    t_lo = math.log(lo)
    t_end = min(t_lo + 40.0 / alpha, T_MAX)
    t_hi = min(math.log(hi) if math.isfinite(hi) else t_end, t_end)
    if t_hi <= t_lo:
        return 0.0
    rest = 0.0
    if t_hi == T_MAX and (not math.isfinite(hi) or math.log(hi) > T_MAX):
        X = math.exp(T_MAX)
        rest = float(g(np.array(X)) * X / alpha)
        if math.isfinite(hi):
            rest *= 1.0 - (hi / X) ** -alpha
    marks = sorted(t for t in (math.log(p) for p in points if p > 0) if t_lo < t < t_hi)
    edges = [t_lo, *marks, t_hi]
    from scipy import integrate  # here, not at import: ``import fit`` need not load it

    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        val, _ = integrate.quad(lambda t: float(g(np.exp(t)) * np.exp(t)), a, b,
                                epsabs=0.0, epsrel=1e-11, limit=400)
        total += val
    return total + rest


def _head_terms(alpha: float, tau: int) -> int:
    """Ranks :func:`weighted_sum` sums term by term before its quadrature."""
    return max(1000, head_size(alpha, tau))


def check_head_memory(alpha: float, tau: int = 1) -> None:
    """Refuse, before any sum, a :func:`weighted_sum` whose head of ranks would not fit in
    memory: once per public call (reading the machine's memory takes ~26 µs, a sum less)."""
    resources.check_memory(64.0 * _head_terms(alpha, tau),
                           f"the expected loss at tau = {tau:,}", "lower tau")


def weighted_sum(alpha: float, K: int | None, w: PerQuantum, lo: int, hi: float,
                 unlearned=None, tau: int = 1, points=()) -> float:
    """Σ_{k=lo}^{min(hi,K)} p_k w_k U(p_k) for one range; U (a vectorised function of p,
    default 1) is the probability that the quantum is still unlearned."""
    Z = _normalization(alpha, K)
    s = alpha + 1.0
    top = hi if K is None else min(hi, K)
    if top < lo:
        return 0.0
    u = (lambda p: 1.0) if unlearned is None else unlearned
    m0 = _head_terms(alpha, tau)

    def g(x):
        p = x ** -s / Z
        return p * w.at(x) * u(p)

    if w.kind == "array" or top - lo + 1 <= 4 * m0:
        k = np.arange(int(top), lo - 1, -1, dtype=float)
        return float(np.sum(g(k)))
    head = float(np.sum(g(np.arange(lo + m0 - 1, lo - 1, -1, dtype=float))))
    A, B = lo + m0 - 0.5, top + 0.5
    integral = _log_integral(g, A, B, alpha, points)
    h = 0.25
    dg_A = (float(g(np.array(A + h))) - float(g(np.array(A - h)))) / (2 * h)
    dg_B = 0.0 if not math.isfinite(B) else \
        (float(g(np.array(B + h))) - float(g(np.array(B - h)))) / (2 * h)
    return head + integral + (dg_A - dg_B) / 24.0


#: τ up to which binomial tails are summed term by term (scipy's incomplete beta loses up to
#: ~1e-8 of relative accuracy at small τ and D ~ 1e7–1e9, e.g. I_x(2, 1e9) at x = 2.5e-9)
SUM_TAU_MAX = 64
SUM_D_MIN = 1e5


def _binomial_tail(D, p, tau: int, upper: bool) -> np.ndarray:
    """P(Bin(D, p) ≥ τ) (``upper``) or P(Bin(D, p) < τ), to full relative accuracy; D ≤ τ−1
    gives 0 or 1 (real D: the standard continuous extension, I_p(τ, D−τ+1)).

    For τ ≤ SUM_TAU_MAX and D large enough, the pmf is summed from its log recursion
    (log pmf(j+1) = log pmf(j) + log((D−j)/(j+1)) + log(p/(1−p))): the lower tail over
    j < τ (for integer τ this is 1 − I_p(τ, D−τ+1) for any real D), the upper one over
    τ ≤ j ≤ J, which holds all its mass whenever it is the smaller tail; each tail is taken
    from its own sum when it is the smaller one and as 1 minus the other otherwise. Elsewhere
    scipy's incomplete beta."""
    D, p = np.broadcast_arrays(np.asarray(D, dtype=float), np.asarray(p, dtype=float))
    ok = D > tau - 1
    b = np.where(ok, D - tau + 1.0, 1.0)
    beta = special.betainc if upper else special.betaincc
    out = np.array(np.where(ok, beta(tau, b, p), 1.0 - upper), dtype=float, ndmin=1)
    out = out.reshape(D.shape)
    J = int(tau + 40 + 12 * math.sqrt(tau + 1))
    # scipy is exact below D ~ 1e5 (1e-11 at 1e6, 1e-9 at 1e8), and where D·p is large,
    # where the pmf's logs grow and would lose their relative accuracy
    use = (D >= max(J, SUM_D_MIN)) & (p > 0) & (p < 1) & (D * p <= 4 * tau + 100)
    if tau > SUM_TAU_MAX or not use.any():
        return out
    n, q = D[use], p[use]
    log_pmf = n * np.log1p(-q)
    log_odds = np.log(q) - np.log1p(-q)
    below = np.zeros_like(n)
    above = np.zeros_like(n)
    with np.errstate(divide="ignore"):         # n − j = 0 at j = J = n: pmf 0 from there
        for j in range(J + 1):
            term = np.exp(log_pmf)
            if j < tau:
                below += term
            else:
                above += term
            log_pmf = log_pmf + np.log((n - j) / (j + 1.0)) + log_odds
    small_lower = below <= 0.5
    out[use] = np.where(small_lower, 1.0 - below, above) if upper else \
        np.where(small_lower, below, 1.0 - above)
    return out


def unlearned_prob(D, p, tau: int):
    """P(Binomial(D, p) < τ) = 1 − I_p(τ, D−τ+1); 1 when D ≤ τ−1 (real D: the standard
    continuous extension). Broadcasts D and p."""
    return _binomial_tail(D, p, tau, upper=False)


def learned_prob(D, p, tau: int):
    """P(Binomial(D, p) ≥ τ) = I_p(τ, D−τ+1) (0 when D ≤ τ−1)."""
    return _binomial_tail(D, p, tau, upper=True)


def step_presence(p, batch: float):
    """q = 1 − (1 − p)^B, the chance that a batch of B samples contains quantum k."""
    with np.errstate(divide="ignore"):
        return -np.expm1(batch * np.log1p(-np.asarray(p, dtype=float)))


def _closed_tail(alpha: float, Z: float, D: np.ndarray, tau: int, x_lo: np.ndarray,
                 x_hi: np.ndarray):
    """∫_{x_lo}^{x_hi} p(y) P(Bin(D, p(y)) < τ) dy in closed form, per D (x_hi may be inf).

    With u = p(y): (1/s) Z^{-1/s} Σ_{j<τ} Γ(j+μ)/(Γ(j+1) (D+1)_μ) [I_{u_lo}(j+μ, D−j+1) −
    I_{u_hi}(j+μ, D−j+1)], μ = α/(α+1), (z)_μ = Γ(z+μ)/Γ(z) (Pochhammer). Where both
    incomplete betas are near 1 (everything there is learned) their complements are
    subtracted instead, so a small finite-K remainder keeps its relative accuracy.
    """
    s = alpha + 1.0
    mu = alpha / s
    u_lo = x_lo ** -s / Z
    u_hi = np.where(np.isfinite(x_hi), x_hi, 1.0) ** -s / Z * np.isfinite(x_hi)
    j = np.arange(tau, dtype=float)
    Dr = D[:, None]
    coef = np.exp(special.gammaln(j + mu) - special.gammaln(j + 1.0)) / special.poch(Dr + 1.0, mu)
    a, b = j + mu, Dr - j + 1.0
    a, b, ul, uh = np.broadcast_arrays(a, b, u_lo[:, None], u_hi[:, None])
    inc_hi = special.betainc(a, b, uh)
    upper = inc_hi > 0.5
    diff = np.empty(a.shape)
    low = ~upper
    diff[low] = special.betainc(a[low], b[low], ul[low]) - inc_hi[low]
    if upper.any():
        diff[upper] = (special.betaincc(a[upper], b[upper], uh[upper])
                       - special.betaincc(a[upper], b[upper], ul[upper]))
    return Z ** (-1.0 / s) / s * np.sum(coef * diff, axis=1)


def unlearned_mass_samples(alpha: float, K: int | None, D, tau: int, hi) -> np.ndarray:
    """Σ_{k=1}^{min(hi,K)} p_k P(Bin(D, p_k) < τ) for arrays D and hi (broadcast).

    Exact head of ``head_size`` ranks (regularised incomplete beta), closed-form
    incomplete-beta integral for the rest plus the Euler–Maclaurin derivative term.
    """
    D, hi = np.broadcast_arrays(np.asarray(D, dtype=float), np.asarray(hi, dtype=float))
    shape = D.shape
    D, hi = D.reshape(-1), hi.reshape(-1)
    if K is not None:
        hi = np.minimum(hi, K)
    Z = _normalization(alpha, K)
    s = alpha + 1.0
    k0 = head_size(alpha, tau) if K is None else min(head_size(alpha, tau), K)
    check_work(tau, D.size, k0)
    k = np.arange(1, k0 + 1, dtype=float)
    pk = k ** -s / Z
    out = np.zeros(D.shape)
    block = max(1, 2_000_000 // k0)
    for start in range(0, D.size, block):
        sl = slice(start, start + block)
        # where D p_k > 2τ + 750, P(Bin(D, p_k) < τ) < e^-600: skip the incomplete beta
        Dk, pkk = np.broadcast_arrays(D[sl, None], pk)
        band = (Dk * pkk <= 2 * tau + 750) & (k <= hi[sl, None])
        terms = np.zeros(Dk.shape)
        terms[band] = pkk[band] * unlearned_prob(Dk[band], pkk[band], tau)
        out[sl] = terms[:, ::-1].sum(axis=1)
    blind = D <= tau - 1         # nothing can be learned: the whole mass up to hi
    if blind.any():
        top = hi[blind]
        fin = np.isfinite(top)
        out[blind] = 1.0
        out[np.flatnonzero(blind)[fin]] = 1.0 - np.asarray(tail_mass(top[fin], alpha, K))
    tail = (hi > k0) & ~blind
    # A finite range that is steep all the way to its end (s D p(x)/x > 0.05 at x = hi:
    # everything learned, the sum is e^-(D p_hi)-small and its last terms dominate) is
    # summed term by term from where D p_k ≤ 2τ + 750, since Euler–Maclaurin needs a
    # slowly varying summand for relative accuracy there.
    h_safe = np.where(tail & np.isfinite(hi), hi, 1.0)
    steep = tail & np.isfinite(hi) & (s * D * h_safe ** (-s - 1.0) / Z > 0.05)
    for i in np.flatnonzero(steep):
        k_band = (Z * (2 * tau + 750) / D[i]) ** (-1.0 / s)
        kk = np.arange(int(hi[i]), max(k0, int(k_band)), -1, dtype=float)
        pkk = kk ** -s / Z
        out[i] += float(np.sum(pkk * unlearned_prob(D[i], pkk, tau)))
    tail &= ~steep
    if tail.any():
        Dt, ht = D[tail], hi[tail]
        A = np.full(Dt.shape, k0 + 0.5)
        B = ht + 0.5
        block = max(1, TAIL_BLOCK // tau)   # D values at a time: bounded memory
        integral = np.concatenate([_closed_tail(alpha, Z, Dt[i:i + block], tau, A[i:i + block],
                                                B[i:i + block])
                                   for i in range(0, Dt.size, block)])
        fin = np.isfinite(B)

        def g(x, Dv):
            p = x ** -s / Z
            return p * unlearned_prob(Dv, p, tau)

        h = 0.25
        dg = (g(A + h, Dt) - g(A - h, Dt)) / (2 * h)
        if fin.any():
            dg[fin] -= (g(B[fin] + h, Dt[fin]) - g(B[fin] - h, Dt[fin])) / (2 * h)
        out[tail] += integral + dg / 24.0
    return np.maximum(out, 0.0).reshape(shape)   # round-off below 0 where all is learned
