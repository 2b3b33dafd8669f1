"""Numba kernels of the power-law tail fit (``fit.tails``): the Hurwitz zeta function with
its derivatives in s, the discrete ML exponent, the x_min scan and the samplers of the
goodness-of-fit test. Arrays and scalars in, arrays and scalars out; ``fit.tails`` checks
the input and wraps the output.

The x_min scan (Clauset, Shalizi & Newman 2009, §3.3) works on the distinct sorted values
``v`` with ``n_ge[i]`` (samples ≥ v_i) and ``log_ge[i]`` (Σ log s over them): every
candidate's ML exponent then costs O(1) (continuous, closed form) or one Newton solve
(discrete), and its KS distance a pass over the larger values that stops as soon as it
exceeds the best distance found so far; the candidates are taken from the largest x_min
down, so the cheap small tails set that bound first.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

#: B_2j / (2j)! for j = 1..9 (Euler–Maclaurin coefficients)
_EM = np.array([1.0 / 12, -1.0 / 720, 1.0 / 30240, -1.0 / 1209600, 1.0 / 47900160,
                -691.0 / 1307674368000, 1.0 / 74724249600, -3617.0 / 10670622842880000,
                43867.0 / 5109094217170944000])


@njit(cache=True, nogil=True)
def zeta3(s, q):
    """Hurwitz ζ(s, q) = Σ_k (q + k)^-s (s > 1, q > 0) and its first two derivatives in s:
    direct terms up to q + k ≥ max(16, 2s), then Euler–Maclaurin with 9 Bernoulli terms,
    differentiated term by term."""
    z = z1 = z2 = 0.0
    big = max(16.0, 2.0 * s)
    while q < big:
        t = q ** -s
        lq = math.log(q)
        z += t
        z1 -= lq * t
        z2 += lq * lq * t
        q += 1.0
    lq = math.log(q)
    a = q ** -s
    c = s - 1.0
    lead = q * a / c                                       # q^(1-s)/(s-1)
    z += lead + 0.5 * a
    z1 += -lead * (lq + 1.0 / c) - 0.5 * lq * a
    z2 += lead * (lq * lq + 2.0 * lq / c + 2.0 / (c * c)) + 0.5 * lq * lq * a
    # term j: B_2j/(2j)! · P(s) · q^(-s-2j+1), P(s) = s (s+1) ... (s+2j-2)
    p, dp, ddp = s, 1.0, 0.0
    qpow = a / q                                           # q^(-s-1)
    for j in range(_EM.size):
        if j > 0:
            for i in (2 * j - 1, 2 * j):
                ddp = ddp * (s + i) + 2.0 * dp
                dp = dp * (s + i) + p
                p *= s + i
            qpow /= q * q
        c_j = _EM[j] * qpow
        z += c_j * p
        z1 += c_j * (dp - lq * p)
        z2 += c_j * (ddp - 2.0 * lq * dp + lq * lq * p)
    return z, z1, z2


@njit(cache=True, nogil=True)
def zeta(s, q):
    """Hurwitz ζ(s, q) alone (see :func:`zeta3`)."""
    return zeta3(s, q)[0]


@njit(cache=True, nogil=True)
def discrete_gamma(mean_log, xmin, lo, hi):
    """The ML exponent of a discrete power law on {xmin, xmin+1, ...}: the root in [lo, hi]
    of the score mean_log + ∂_s log ζ(s, xmin), by Newton's method safeguarded by
    bisection (the negative log-likelihood s·mean_log + log ζ is convex in s); an end of
    [lo, hi] when the score keeps its sign there."""
    z, z1, _ = zeta3(lo, xmin)
    if mean_log + z1 / z >= 0.0:
        return lo
    z, z1, _ = zeta3(hi, xmin)
    if mean_log + z1 / z <= 0.0:
        return hi
    g = 1.0 + 1.0 / max(mean_log - math.log(xmin - 0.5), 1e-12)   # continuous approximation
    g = min(max(g, lo), hi)
    for _ in range(100):
        z, z1, z2 = zeta3(g, xmin)
        score = mean_log + z1 / z
        if score > 0.0:
            hi = g
        else:
            lo = g
        step = score / (z2 / z - (z1 / z) ** 2)
        new = g - step
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - g) <= 1e-13 * g or hi - lo <= 1e-13 * g:
            return new
        g = new
    return g


@njit(cache=True, nogil=True)
def tail_exponent(xm, n, sum_log, discrete, lo, hi):
    """The ML exponent of n samples ≥ xm whose logs sum to sum_log."""
    mean_log = sum_log / n
    if discrete:
        return discrete_gamma(mean_log, xm, lo, hi)
    g = 1.0 + 1.0 / max(mean_log - math.log(xm), 1e-300)
    return min(max(g, lo), hi)


@njit(cache=True, nogil=True)
def tail_ks(v, n_ge, j, xm, g, discrete, stop):
    """KS distance max_i |P_n(S ≥ v_i) - P(S ≥ v_i)| over the values v_i ≥ v[j] (the
    tail, all ≥ xm) fitted with exponent g (the CCDF at each distinct value, as Clauset et
    al.'s plfit and the ``powerlaw`` package compare it); returns early, with a value above
    ``stop``, once the distance exceeds ``stop``."""
    n = n_ge[j]
    z0 = zeta(g, xm) if discrete else 0.0
    d = 0.0
    for i in range(j, v.size):
        emp = n_ge[i] / n
        if discrete:
            model = zeta(g, v[i]) / z0
        else:
            model = (v[i] / xm) ** (1.0 - g)
        d = max(d, abs(emp - model))
        if d > stop:
            return d
    return d


@njit(cache=True, nogil=True)
def scan(v, n_ge, log_ge, discrete, min_tail, lo, hi):
    """The candidate x_min = v[j] (n_ge[j] ≥ min_tail) whose fitted tail has the smallest
    KS distance, ties to the smaller x_min: returns (j, exponent, distance)."""
    best_j, best_g, best_d = -1, np.nan, np.inf
    for j in range(v.size - 1, -1, -1):
        if n_ge[j] < min_tail:
            continue
        g = tail_exponent(v[j], n_ge[j], log_ge[j], discrete, lo, hi)
        d = tail_ks(v, n_ge, j, v[j], g, discrete, best_d)
        if d <= best_d:
            best_j, best_g, best_d = j, g, d
    return best_j, best_g, best_d


#: largest draw of :func:`discrete_draws` placed exactly
EXACT_UP_TO = 1e7


@njit(cache=True, nogil=True)
def discrete_draws(u, xmin, g):
    """Exact draws of the discrete power law P(s) ∝ s^-g, s ≥ xmin, by inversion of its
    CCDF ζ(g, s)/ζ(g, xmin) at the uniforms u: the continuous approximation (Clauset et
    al. 2009, eq. D.6) as a start, then unit steps to the exact quantile. Beyond
    ``EXACT_UP_TO`` neighbouring CCDF values differ by less than float64 resolves, and the
    approximation (relative error ~ s^-2) is kept."""
    out = np.empty(u.size)
    z0 = zeta(g, xmin)
    for k in range(u.size):
        target = (1.0 - u[k]) * z0             # want the largest s with ζ(g, s) >= target
        s = math.floor((xmin - 0.5) * (1.0 - u[k]) ** (-1.0 / (g - 1.0)) + 0.5)
        s = max(s, xmin)
        if s > EXACT_UP_TO:
            out[k] = s
            continue
        while s > xmin and zeta(g, s) < target:
            s -= 1.0
        while zeta(g, s + 1.0) >= target:
            s += 1.0
        out[k] = s
    return out
