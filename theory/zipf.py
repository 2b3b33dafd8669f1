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


@functools.lru_cache(maxsize=256)
def _normalization(alpha: float, K: int | None) -> float:
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


def _hurwitz_between(s: float, n: np.ndarray, K: int | None) -> np.ndarray:
    """ζ(s, n+1) − ζ(s, K+1) for real n ≤ K (Σ_{n<k≤K} k^-s at integer n), computed
    term by term where the two zetas would nearly cancel."""
    n = np.asarray(n, dtype=float)
    head = special.zeta(s, n + 1.0)
    if K is None:
        return head
    out = head - special.zeta(s, K + 1.0)
    flat_n, flat_out = n.reshape(-1), out.reshape(-1)
    near = (K - flat_n) <= DIRECT_TERMS
    whole = near & (flat_n == np.floor(flat_n))
    if whole.any():                       # integer n near K: cached suffix sums
        if K <= DIRECT_TERMS:
            flat_out[whole] = _suffix_sums(s, K)[flat_n[whole].astype(np.int64)]
        else:
            near = near.copy()
            whole[:] = False
    for i in np.flatnonzero(near & ~whole):
        m = int(math.floor(K - flat_n[i]))
        terms = (flat_n[i] + 1.0 + np.arange(m - 1, -1, -1, dtype=float)) ** -s
        rest = special.zeta(s, flat_n[i] + 1.0 + m) - special.zeta(s, K + 1.0)
        flat_out[i] = math.fsum(terms) + rest
    return np.maximum(flat_out.reshape(n.shape), 0.0)


def tail_mass(n, alpha, K=None):
    """Σ_{k>n} p_k, the mass of the quanta beyond rank n.

    Exact at integer n; between integers it is the Hurwitz interpolation
    (ζ(α+1, n+1) − ζ(α+1, K+1))/Z, smooth in n (so local exponents exist). 0 for n ≥ K.
    """
    alpha, K = check_alpha(alpha), check_K(K)
    n = check_sizes(n, "n")
    m = n if K is None else np.minimum(n, K)
    return finish(_hurwitz_between(alpha + 1.0, m, K) / _normalization(alpha, K))


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
