"""Slow, obviously correct references for ``fit.tails`` (the STUMPY pattern of
tests/naive_simulate.py).

``discrete_scan`` is the x_min scan ``fit.sizes.discrete_power_law_mle`` ran until commit
9f6b1e1, unchanged in substance: for every distinct value with at least ``min_tail`` samples
above it, the ML exponent by ``scipy.optimize.minimize_scalar`` on the Hurwitz-zeta
likelihood and the KS distance from ``scipy.special.zeta``; the smallest distance wins (the
first, i.e. the smallest x_min, on ties). ``continuous_scan`` is the same loop for the
continuous law (closed-form exponent, CCDF (s/x_min)^(1-gamma)).
"""
import numpy as np
from scipy import optimize, special

GAMMA_BOUNDS = (1.0 + 1e-6, 20.0)


def discrete_tail_fit(logs_sum, n_tail, xmin):
    """ML gamma for n_tail samples ≥ xmin with Σ log s = logs_sum (within GAMMA_BOUNDS)."""
    def nll(g):
        return g * logs_sum + n_tail * np.log(special.zeta(g, xmin))
    res = optimize.minimize_scalar(nll, bounds=GAMMA_BOUNDS, method="bounded",
                                   options={"xatol": 1e-10})
    return float(res.x)


def _ks(tail_sorted, model_ccdf):
    vals, counts = np.unique(tail_sorted, return_counts=True)
    emp = 1.0 - np.concatenate([[0], np.cumsum(counts)[:-1]]) / tail_sorted.size
    return float(np.max(np.abs(emp - model_ccdf(vals))))


def _scan(s, min_tail, fit_one):
    s = np.sort(np.asarray(s, dtype=float))
    best = None
    for xm in np.unique(s):
        i = int(np.searchsorted(s, xm, side="left"))
        if s.size - i < min_tail:
            continue
        g, ccdf = fit_one(s[i:], xm)
        d = _ks(s[i:], ccdf)
        if best is None or d < best[0]:
            best = (d, xm, g)
    d, xm, g = best
    return {"xmin": float(xm), "gamma": float(g), "ks": float(d)}


def discrete_scan(samples, min_tail=10):
    """x_min, gamma and KS distance of the discrete power-law tail (the pre-#20 scan)."""
    def fit_one(tail, xm):
        g = discrete_tail_fit(np.log(tail).sum(), tail.size, xm)
        return g, lambda v: special.zeta(g, v) / special.zeta(g, xm)
    return _scan(samples, min_tail, fit_one)


def continuous_scan(samples, min_tail=10):
    """x_min, gamma and KS distance of the continuous power-law tail."""
    def fit_one(tail, xm):
        g = 1.0 + tail.size / np.log(tail / xm).sum()
        return g, lambda v: (v / xm) ** (1.0 - g)
    return _scan(samples, min_tail, fit_one)
