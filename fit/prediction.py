"""Predictions of a fitted law with a band: what the bootstrap (or, without one, the fit's
covariance) says about the law at new sizes.

Two bands: ``interval="curve"`` is the uncertainty of the fitted law itself (the percentiles
of the refits' predictions; without a bootstrap, the delta method on log axes);
``"observation"`` is where a new measurement should fall: the same, with the fit's residual
scatter added (each refit's prediction times a residual drawn from the fit's log residuals,
inflated by n/(n − p) for the parameters fitted; without a bootstrap, the residual variance
added to the delta method's). A held-out point is judged against the observation band.
"""
from __future__ import annotations

import numpy as np
from common.errors import InputError
from fit.forms import to_internal

INTERVALS = ("curve", "observation")


def _bootstrap_theta(res):
    """Internal parameters of the bootstrap refits (B, p), or None."""
    if res.bootstrap_params is None:
        return None
    theta = to_internal(res.spec, res.bootstrap_params)
    return theta if len(theta) else None


def _residual_scale(res) -> tuple[np.ndarray, float]:
    """The fit's centred log residuals, inflated for the parameters fitted, and their
    variance."""
    r = res.resid - res.resid.mean()
    dof = max(res.df_resid, 1)
    r = r * np.sqrt(res.n_points / dof)
    return r, float(np.sum(res.resid ** 2) / dof)


def prediction_band(res, x, x2=None, level=None, interval="curve"):
    """Pointwise (lower, upper) band of the fitted law at ``x`` (``x2``) at ``level``
    (default the fit's): bootstrap percentiles, or without a bootstrap the delta method."""
    if interval not in INTERVALS:
        raise InputError(f"interval must be one of {INTERVALS}, got {interval!r}")
    level = res.level if level is None else level
    X = res._design(x, x2)
    theta = _bootstrap_theta(res)
    if theta is None:
        return _delta_band(res, X, level, interval)
    logp = res.spec.model(theta, X)[0]
    if interval == "observation":
        r, _ = _residual_scale(res)
        rng = np.random.default_rng(_seed(res))
        logp = logp + rng.choice(r, size=logp.shape)
    tail = 50 * (1 - level)
    lo, hi = np.percentile(np.exp(logp), [tail, 100 - tail], axis=0)
    return lo, hi


def _seed(res):
    seed = res.config.get("seed")
    return seed if isinstance(seed, (int, np.integer)) else 0


def _delta_band(res, X, level, interval):
    """exp(log f ± q·se) with se² = J Σ Jᵀ (+ the residual variance for an observation), q
    the fit's :meth:`~fit.FitResult.wald_quantile`."""
    spec = res.spec
    logp, J = spec.model(res.theta[None], X)
    J = J[0][:, spec.free]
    cov = res.cov_theta[np.ix_(spec.free, spec.free)]
    var = np.einsum("ij,jk,ik->i", J, cov, J)
    if interval == "observation":
        var = var + _residual_scale(res)[1]
    q = res.wald_quantile(level)
    se = np.sqrt(np.clip(var, 0, None))
    return np.exp(logp[0] - q * se), np.exp(logp[0] + q * se)


def prediction_frame(res, x, x2=None, level=None, interval="curve"):
    """A DataFrame of ``x`` (and ``x2``), ``predicted``, ``lower``, ``upper``."""
    import pandas as pd

    x = np.atleast_1d(np.asarray(x, dtype=float))
    if np.any(~(x > 0)):
        raise InputError("x: predict at positive sizes")
    lo, hi = prediction_band(res, x, x2, level, interval)
    cols = {"x": x}
    if res.x2 is not None:
        cols["x2"] = np.broadcast_to(np.asarray(x2, dtype=float), x.shape)
    cols.update(predicted=res.predict(x, x2), lower=lo, upper=hi)
    return pd.DataFrame(cols)
