"""Quantities a fit implies beyond its parameters, with intervals from the same bootstrap.

- Joint laws (``chinchilla``, ``max``): the compute-optimal split. With compute C = 6ND,
  minimising E + A N^-alpha + B D^-beta (or the max form) along C gives N_opt ∝ C^a and
  D_opt ∝ C^b with a = beta/(alpha+beta), b = alpha/(alpha+beta) (Hoffmann et al. 2022,
  eq. 4); the quantization model says a = 1/(α+2), b = (α+1)/(α+2)
  (``theory.compute_optimal``).
- ``bnsl``: the exponent past the last break, alpha + sum_i c_i, the law's asymptote.

Each is a function of the public parameters, applied to every bootstrap draw (percentile or
BCa intervals, as the fit's own) or, without a bootstrap, carried by the delta method.
"""
from __future__ import annotations

import numpy as np

from fit.bootstrap import bca_interval, percentile_interval
from fit.forms import JOINT_FORMS, to_public


def _alpha_final(p):
    return p["alpha"] + sum(v for k, v in p.items() if k[0] == "c" and k[1:].isdigit())


def functions(form: str) -> dict:
    """name → function of the public parameters (a mapping of floats or arrays)."""
    if form in JOINT_FORMS:
        return {"N_opt_exponent": lambda p: p["beta"] / (p["alpha"] + p["beta"]),
                "D_opt_exponent": lambda p: p["alpha"] / (p["alpha"] + p["beta"])}
    if form == "bnsl":
        return {"alpha_final": _alpha_final}
    return {}


def values(res) -> dict[str, float]:
    """name → the derived quantity at the fitted parameters."""
    return {k: float(f(res.params)) for k, f in functions(res.form).items()}


def draws(res, which: str = "bootstrap") -> dict[str, np.ndarray] | None:
    """name → the derived quantity of each bootstrap (or ``"jackknife"``) draw."""
    params = res.bootstrap_params if which == "bootstrap" else res.jackknife_params
    if params is None:
        return None
    return {k: np.asarray(f(params), dtype=float) for k, f in functions(res.form).items()}


def bounds(res, level: float, method: str | None = None) -> dict[str, tuple[float, float]]:
    """name → interval at ``level``: the fit's bootstrap method (percentile or BCa), or the
    delta method from the fit's covariance (``method="wald"`` or no bootstrap)."""
    method = res.checked_method(method)
    if method == "wald":
        return _delta_bounds(res, level)
    boot = draws(res)
    if method == "bca":
        jack = draws(res, "jackknife")
        return {k: bca_interval(v, values(res)[k], jack[k], level) for k, v in boot.items()}
    return {k: percentile_interval(v, level) for k, v in boot.items()}


def _delta_bounds(res, level):
    """value ± q·se with se² = g Σ gᵀ, g the gradient in the free parameters (central
    differences) and Σ their covariance; q the fit's :meth:`~fit.FitResult.wald_quantile`
    (as its parameters' Wald intervals)."""
    spec, free = res.spec, res.spec.free
    cov = res.cov_theta[np.ix_(free, free)]
    q = res.wald_quantile(level)
    out = {}
    for name, f in functions(res.form).items():
        g = np.empty(len(free))
        for j, k in enumerate(free):
            h = 1e-6 * (1 + abs(res.theta[k]))
            up, dn = res.theta.copy(), res.theta.copy()
            up[k] += h
            dn[k] -= h
            g[j] = (f(to_public(spec, up)) - f(to_public(spec, dn))) / (2 * h)
        se = float(np.sqrt(max(g @ cov @ g, 0.0)))
        v = float(f(res.params))
        out[name] = (v - q * se, v + q * se)
    return out


def rows(res, level: float, method: str | None = None) -> dict[str, tuple[float, float, float]]:
    """name → (value, lower, upper) ({} for a form with no derived quantity)."""
    if not functions(res.form):
        return {}
    vals, ci = values(res), bounds(res, level, method)
    return {k: (v, *(float(b) for b in ci[k])) for k, v in vals.items()}


def table(res, level: float, method: str | None = None):
    """:func:`rows` as a DataFrame indexed by name: ``value``, ``lower``, ``upper``."""
    import pandas as pd

    got = rows(res, level, method)
    return pd.DataFrame(list(got.values()) or None, columns=["value", "lower", "upper"],
                        index=pd.Index(list(got), name="quantity", dtype=object), dtype=float)


def compute_optimal(form: str, params, C):
    """(N_opt, D_opt) of a joint law at compute ``C`` = 6ND: the minimum of the law along
    C, where αA N^-α = βB D^-β (chinchilla) or A N^-α = B D^-β (max), i.e.
    N_opt = (k (C/6)^β)^(1/(α+β)) with k = αA/(βB) or A/B. ``params``: a mapping of floats or
    of arrays (bootstrap draws, broadcast against C)."""
    C = np.asarray(C, dtype=float)
    al, be, A, B = (np.asarray(params[k], dtype=float) for k in ("alpha", "beta", "A", "B"))
    if al.ndim:                                   # draws: one row of C per draw
        al, be, A, B = (v[:, None] for v in (al, be, A, B))
    k = al * A / (be * B) if form == "chinchilla" else A / B
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        N = np.exp((np.log(k) + be * np.log(C / 6)) / (al + be))
    return N, C / 6 / N
