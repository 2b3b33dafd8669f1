"""Zipfian quanta: frequencies p_k = k^-(α+1) / Z, their normalisation and tails.

Z is ζ(α+1) for infinitely many quanta (``K=None``) and the generalised harmonic number
H_K^(α+1) = Σ_{k≤K} k^-(α+1) for K quanta. Tails use the Hurwitz zeta function
ζ(s, q) = Σ_{j≥0} (q+j)^-s (``scipy.special.zeta(s, q)``).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from common.errors import InputError
from theory._checks import check_alpha, check_K, check_sizes, finish

#: Below this many terms a finite sum is done term by term instead of by Hurwitz differences.
DIRECT_TERMS = 100_000

#: The α range of the sums over quanta. Below ALPHA_MIN, with infinitely many quanta (or
#: more than DIRECT_TERMS), the sums run through ζ(1+α) near its pole at α = 0, and
#: s = 1 + α keeps only the digits of α above 1e-16: they lose ~1e-16/α of relative accuracy
#: and mix α with the rounded s − 1 (at α = 1e-5 a loss came out 1 + 6e-12, at 1e-15 1.11,
#: at 1e-300 NaN). Finite K ≤ DIRECT_TERMS is summed term by term and stays exact at any
#: α > 0. Above ALPHA_MAX every quantum but the first has frequency below 2^-(α+1) of it and
#: 1 − p_1 is lost to rounding (at α = 1000 a loss came out half its value, at 1e300 NaN).
#: Inside the range every loss agrees with mpmath to 1e-9 (tests/test_theory_extreme_alpha.py).
ALPHA_MIN = 1e-4
ALPHA_MAX = 20.0


def check_alpha_sums(alpha: float, K: int | None) -> None:
    """Refuse α outside [``ALPHA_MIN``, ``ALPHA_MAX``] where the sums over quanta lose their
    accuracy (below ALPHA_MIN only for K infinite or above ``DIRECT_TERMS``), naming what to
    do instead."""
    if alpha > ALPHA_MAX:
        raise InputError(f"alpha = {alpha:g} is above {ALPHA_MAX:g}: every quantum but the "
                         f"first then has frequency below 2^-{ALPHA_MAX + 1:g} of it and the "
                         "model's sums lose their accuracy in double precision; give "
                         f"alpha <= {ALPHA_MAX:g}")
    if alpha < ALPHA_MIN and (K is None or K > DIRECT_TERMS):
        quanta = "infinitely many quanta" if K is None else f"K = {K:,} quanta"
        raise InputError(f"alpha = {alpha:g} is below {ALPHA_MIN:g}: with {quanta} the "
                         "model's sums sit at the pole of zeta(1 + alpha) and lose their "
                         "accuracy in double precision (losses would come out wrong, even "
                         f"above 1); give alpha >= {ALPHA_MIN:g}, or K <= {DIRECT_TERMS:,} "
                         "quanta, which are summed term by term at any alpha > 0")


@functools.lru_cache(maxsize=256)
def _normalization(alpha: float, K: int | None) -> float:
    check_alpha_sums(alpha, K)
    s = alpha + 1.0
    if K is None:
        return float(special.zeta(s))
    if K <= DIRECT_TERMS:
        return math.fsum(np.arange(K, 0, -1, dtype=float) ** -s)
    return float(special.zeta(s) - special.zeta(s, K + 1.0))


def normalization(alpha, K=None) -> float:
    """Z = Σ_{k≤K} k^-(α+1): ζ(α+1) when K is None, else the generalised harmonic number."""
    return _normalization(check_alpha(alpha), check_K(K))


def frequencies(alpha, K=None, k=None):
    """p_k = k^-(α+1)/Z for 1-based ``k`` (all k = 1..K when ``k`` is None and K finite).

    Ranks beyond a finite K have frequency 0; non-integer k gives the smooth interpolation.
    """
    alpha, K = check_alpha(alpha), check_K(K)
    if k is None:
        if K is None:
            raise InputError("k must be given when K is None (infinitely many quanta)")
        k = np.arange(1, K + 1, dtype=float)
    else:
        k = check_sizes(k, "k")
        if k.size and (k < 1).any():
            raise InputError("k must be >= 1 (ranks are 1-based)")
    p = k ** -(alpha + 1.0) / _normalization(alpha, K)
    if K is not None:
        p = np.where(k > K, 0.0, p)
    return finish(p)


@functools.lru_cache(maxsize=16)
def _suffix_sums(s: float, K: int) -> np.ndarray:
    """S[m] = Σ_{k=m+1}^{K} k^-s for m = 0..K (K ≤ DIRECT_TERMS), summed from the small end."""
    terms = np.arange(K, 0, -1, dtype=float) ** -s
    out = np.concatenate([[0.0], np.cumsum(terms)])[::-1].copy()
    out.setflags(write=False)
    return out


#: terms of ζ(s, x) − ζ(s, b) summed one by one before Euler–Maclaurin (``_hurwitz_gap``)
GAP_TERMS = 32


def _hurwitz_gap(alpha: float, x: float, b: float) -> float:
    """ζ(α+1, x) − ζ(α+1, b) for 1 ≤ x ≤ b ≤ x + 1, without the cancellation of the two
    zetas near the pole at α = 0 (each is about 1/α): the first GAP_TERMS terms of
    Σ_j [(x+j)^-s − (b+j)^-s] one by one, then Euler–Maclaurin from X = x + GAP_TERMS, whose
    integral (X^-α − B^-α)/α is written with expm1/log1p (log(B/X) at α → 0) and whose
    B4 and B6 terms leave below 1e-10 relative. scipy has no such difference; mpmath is
    not a runtime dependency."""
    s = alpha + 1.0
    j = np.arange(GAP_TERMS - 1, -1, -1, dtype=float)
    head = math.fsum((x + j) ** -s - (b + j) ** -s)
    X, B = x + GAP_TERMS, b + GAP_TERMS
    ratio = math.log1p((B - X) / X)
    integral = X ** -alpha * -math.expm1(-alpha * ratio) / alpha if alpha * ratio > 0 \
        else ratio
    f = X ** -s - B ** -s
    f1 = -s * (X ** (-s - 1) - B ** (-s - 1))
    f3 = -s * (s + 1) * (s + 2) * (X ** (-s - 3) - B ** (-s - 3))
    return head + integral + f / 2 - f1 / 12 + f3 / 720


def _hurwitz_between(alpha: float, n: np.ndarray, K: int | None) -> np.ndarray:
    """ζ(s, n+1) − ζ(s, K+1) (s = α+1) for real n ≤ K (Σ_{n<k≤K} k^-s at integer n),
    computed term by term where the two zetas would nearly cancel (n within DIRECT_TERMS
    of K; between integers, the last fraction of a term by ``_hurwitz_gap``)."""
    s = alpha + 1.0
    n = np.asarray(n, dtype=float)
    if K is None:
        return special.zeta(s, n + 1.0)
    flat_n = n.reshape(-1)
    out = np.empty(flat_n.shape)
    near = (K - flat_n) <= DIRECT_TERMS
    out[~near] = special.zeta(s, flat_n[~near] + 1.0) - special.zeta(s, K + 1.0)
    whole = near & (flat_n == np.floor(flat_n)) & (K <= DIRECT_TERMS)
    if whole.any():                       # integer n, K summed term by term: suffix sums
        out[whole] = _suffix_sums(s, K)[flat_n[whole].astype(np.int64)]
    for i in np.flatnonzero(near & ~whole):
        m = int(math.floor(K - flat_n[i]))
        terms = (flat_n[i] + 1.0 + np.arange(m - 1, -1, -1, dtype=float)) ** -s
        out[i] = math.fsum(terms) + _hurwitz_gap(alpha, flat_n[i] + 1.0 + m, K + 1.0)
    return np.maximum(out.reshape(n.shape), 0.0)


def tail_mass(n, alpha, K=None):
    """Σ_{k>n} p_k, the mass of the quanta beyond rank n.

    Exact at integer n; between integers it is the Hurwitz interpolation
    (ζ(α+1, n+1) − ζ(α+1, K+1))/Z, smooth in n (so local exponents exist). 0 for n ≥ K.
    """
    alpha, K = check_alpha(alpha), check_K(K)
    n = check_sizes(n, "n")
    m = n if K is None else np.minimum(n, K)
    return finish(_hurwitz_between(alpha, m, K) / _normalization(alpha, K))


def truncation_offset(alpha, K=None, first_rank: int = 1) -> float:
    """ε_K = Σ_{k ≥ K+q} k^-(α+1) / Σ_{q ≤ k < K+q} k^-(α+1) with q = ``first_rank``: the
    mass that cutting a Zipf law at K quanta removes, relative to the mass kept.

    With per-quantum losses b (unlearned) and a (learned), a system of K quanta whose
    frequencies are normalised over the K has L − L∞ = A x^-e − ε_K (b − a) below its
    cutoff, so adding ε_K (b − a) back recovers the infinite-K power law (``simulate``
    and the parity analysis do this). 0 for ``K=None``. ``first_rank`` q > 1 shifts the
    ranks, as the parity task's ``offset`` does (subtask i has weight (i + q)^-(α+1)).
    """
    alpha, K = check_alpha(alpha), check_K(K)
    if K is None:
        return 0.0
    q = int(first_rank)
    if q != first_rank or q < 1:
        raise InputError(f"first_rank must be an integer >= 1, got {first_rank!r}")
    s = alpha + 1.0
    if q == 1:
        kept = _normalization(alpha, K)
    elif K <= DIRECT_TERMS:
        kept = math.fsum(np.arange(K + q - 1, q - 1, -1, dtype=float) ** -s)
    else:
        kept = float(special.zeta(s, q) - special.zeta(s, K + q))
    return float(special.zeta(s, K + q)) / kept
