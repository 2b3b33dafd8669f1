"""Estimates from the per-group totals, with a bootstrap over documents (or tokens).

A bootstrap resample gives every group (bucket of documents) a Poisson(1) weight — the
Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy et al. 2012), which for many units
matches resampling them with replacement — so a resample of every total is one product
of the weights with the group totals, and 10^7 tokens are never copied. Each resample's
curves are then refitted in one batch:

- the mean loss against x, as a power law A·x^-e (least squares on log-log axes) and in the
  offset form E + A·x^-e (``fit.forms.solve_batch``, started from the full-data fit);
- the sharp drops per gap, by maximum likelihood of a power-law density of drop positions
  ∝ x^-(e+1), truncated to the columns and censored to the gaps: P(gap j) ∝ x_j^-e − x_{j+1}^-e;
- the fraction of tokens still above the threshold, in the offset form.

In the quantization model the exponent e of each is α for sizes (α_N = α) and α/(α+1) for
steps (α_S); ``to_alpha`` converts.
"""
from __future__ import annotations

import numpy as np

import theory
from fit.bootstrap import percentile_interval
from fit.forms import form_spec, solve_batch

#: Exponents searched by the drop-position likelihood (a fine grid, refined by a parabola).
DROP_GRID = np.arange(-2.0, 6.0, 1e-3) + 5e-4


def poisson_totals(groups: np.ndarray, n_resamples: int, seed, batch: int = 128) -> np.ndarray:
    """(n_resamples, width) totals, each from Poisson(1) weights on the groups."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4,)))
    out = []
    for lo in range(0, n_resamples, batch):
        b = min(batch, n_resamples - lo)
        w = rng.poisson(1.0, size=(b, groups.shape[0])).astype(np.float64)
        out.append(w @ groups)
    return np.vstack(out) if out else np.empty((0, groups.shape[1]))


def to_alpha(exponent, axis: str):
    """The model's α from a fitted exponent: α = e (sizes), α = e/(1 − e) (steps; NaN
    unless 0 < e < 1). Scalars or arrays."""
    e = np.asarray(exponent, float)
    if axis == "sizes":
        return e if e.ndim else float(e)
    out = np.array([theory.alpha_from_alpha_D(v) if 0 < v < 1 else np.nan
                    for v in e.reshape(-1)]).reshape(e.shape)
    return out if e.ndim else float(out)


def power_exponents(x, Y) -> np.ndarray:
    """e of A·x^-e fitted to each row of Y by least squares on log-log axes."""
    u = np.log(np.asarray(x, float))
    uc = u - u.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        logY = np.log(np.atleast_2d(Y))
    slope = (logY - logY.mean(1, keepdims=True)) @ uc / (uc @ uc)
    return -slope


def offset_exponents(x, Y, theta0) -> np.ndarray:
    """e of E + A·x^-e refitted to each row of Y (warm start theta0 = (log E, log A, e)),
    with the bounds of ``fit.fit``'s offset form; NaN where a refit did not converge."""
    spec = form_spec("offset")
    Y = np.atleast_2d(Y)
    with np.errstate(divide="ignore", invalid="ignore"):
        logY = np.log(Y)
    ok_rows = np.all(np.isfinite(logY), axis=1)
    out = np.full(Y.shape[0], np.nan)
    if not ok_rows.any() or not np.all(np.isfinite(theta0)):
        return out
    logY = logY[ok_rows]
    lower = np.array([logY.min() - 50.0, -np.inf, 0.0])
    upper = np.array([logY.max(), np.inf, 10.0])
    sol = solve_batch(spec, np.tile(theta0, (logY.shape[0], 1)), (np.log(np.asarray(x, float)),),
                      logY, lower=lower, upper=upper)
    out[np.flatnonzero(ok_rows)] = np.where(sol.converged, sol.theta[:, 2], np.nan)
    return out


def drop_probabilities(x, exponent) -> np.ndarray:
    """P(gap j) ∝ x_j^-e − x_{j+1}^-e over the gaps (∝ the gap's width in ln x at e = 0)."""
    u = np.log(np.asarray(x, float))
    u = u - u[0]
    e = np.atleast_1d(np.asarray(exponent, float))[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        tail = np.where(np.abs(e) < 1e-12, -u[None, :], np.expm1(-e * u[None, :]) / np.where(
            np.abs(e) < 1e-12, 1.0, e))
    p = tail[:, :-1] - tail[:, 1:]
    return p / p.sum(1, keepdims=True)


def drop_exponents(x, counts) -> np.ndarray:
    """Maximum-likelihood e of the drop positions for each row of gap counts."""
    counts = np.atleast_2d(np.asarray(counts, float))
    logp = np.log(np.clip(drop_probabilities(x, DROP_GRID), 1e-300, None))
    ll = counts @ logp.T
    best = np.argmax(ll, axis=1)
    inner = (best > 0) & (best < DROP_GRID.size - 1)
    est = DROP_GRID[best].copy()
    i = best[inner]
    rows = np.flatnonzero(inner)
    l0, l1, l2 = ll[rows, i - 1], ll[rows, i], ll[rows, i + 1]
    curv = l0 - 2 * l1 + l2
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(curv < 0, 0.5 * (l0 - l2) / curv, 0.0)
    est[rows] += np.clip(shift, -1, 1) * (DROP_GRID[1] - DROP_GRID[0])
    est[counts.sum(1) == 0] = np.nan
    return est


def share_inside(x, exponent) -> np.ndarray:
    """P(a drop lies within the columns | not before the first): 1 − (x_1/x_m)^e."""
    e = np.asarray(exponent, float)
    span = np.log(x[-1] / x[0])
    with np.errstate(invalid="ignore"):
        return np.where(e > 0, -np.expm1(-e * span), np.nan)


def interval(samples, level: float) -> tuple[float, float]:
    """The percentile interval of the finite samples (NaN, NaN without any)."""
    return percentile_interval(samples, level)
