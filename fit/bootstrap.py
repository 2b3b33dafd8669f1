"""Bootstrap resampling and intervals (percentile and BCa), vectorised over resamples.

A pairs resample is represented by count weights (how often each point was drawn), so all B
refits share the design and run as one batched problem (:func:`fit.forms.solve_batch`). A
residual resample keeps the design and the weights and replaces the responses.

BCa (Efron 1987) is implemented here by hand: the bias correction ``z0`` from the share of
resamples below the estimate and the acceleration ``a`` from the jackknife
(leave-one-out refits, also run as one batch); ``scipy.stats.bootstrap`` cannot be used
directly because it refits one resample at a time. The tests compare it with scipy's BCa on a
statistic scipy can vectorise.
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from common.errors import InputError
from common.results import percentile_interval  # noqa: F401  (part of this module's API)

BOOTSTRAP_METHODS = ("pairs", "residuals")
CI_METHODS = ("percentile", "bca")


def check_level(level) -> float:
    """A confidence level, refused unless it lies in (0, 1)."""
    if not 0 < level < 1:
        raise InputError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


def check_resamples(bootstrap) -> int:
    """A number of bootstrap resamples: 0 (no bootstrap) or an integer >= 2 (a single
    resample has no spread: its "interval" would be one point, or for BCa exclude the
    estimate)."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) \
            or bootstrap < 0:
        raise InputError(f"bootstrap must be an integer >= 0, got {bootstrap!r}")
    if bootstrap == 1:
        raise InputError("bootstrap=1: a single resample gives no interval; use 0 (none) or "
                         "at least 2 (1000 or more for BCa)")
    return int(bootstrap)


def pair_weights(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) counts of each point in B resamples of n points drawn with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)


def residual_indices(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) indices of the residuals drawn, with replacement, for each resample."""
    return rng.integers(0, n, size=(n_resamples, n))


def jackknife_weights(n: int) -> np.ndarray:
    """(n, n) weights of the n leave-one-out fits."""
    return 1.0 - np.eye(n)


def bca_interval(samples, estimate: float, jackknife, level: float) -> tuple[float, float]:
    """The bias-corrected and accelerated interval (Efron & Tibshirani 1993, §14.3).

    ``samples``: bootstrap replicates; ``estimate``: the full-data value; ``jackknife``: the n
    leave-one-out values.
    """
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    jack = np.asarray(jackknife, dtype=float)
    jack = jack[np.isfinite(jack)]
    if s.size == 0 or jack.size < 2:
        return (np.nan, np.nan)
    below = (np.sum(s < estimate) + 0.5 * np.sum(s == estimate)) / s.size
    below = min(max(below, 0.5 / s.size), 1.0 - 0.5 / s.size)
    z0 = ndtri(below)
    d = jack.mean() - jack
    denom = 6.0 * np.sum(d * d) ** 1.5
    acc = np.sum(d ** 3) / denom if denom > 0 else 0.0
    z = ndtri(np.array([0.5 * (1 - level), 0.5 * (1 + level)]))
    q = ndtr(z0 + (z0 + z) / (1.0 - acc * (z0 + z)))
    lo, hi = np.percentile(s, 100.0 * q)
    return (float(lo), float(hi))
