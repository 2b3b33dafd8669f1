"""Per-token scaling curves: a sharp drop at one size against a gradual power law.

Each token's curve is read on log axes, z_j = ln(L_j + floor) against u_j = ln x_j (x: the
sizes or steps), and two least-squares models are compared by BIC (Gaussian residuals):

- *gradual*: a line, z = a + b·u (a power law in L + floor), 2 parameters;
- *sharp*: a smoothed step in ln x, z = c + d·σ((u − u0)/w), with u0 at the middle of a
  gap between neighbouring columns (the gap is the fitted parameter) and w = ``smooth`` ×
  that gap's width, 3 parameters.

ΔBIC = m·ln(RSS_step / RSS_line) + ln m. A token is **sharp** when ΔBIC < −threshold and
the step falls by at least ``min_log_drop`` (−d, in ln units); **gradual** when it is not
sharp and its line falls by at least ``min_log_drop`` over the columns; **flat** otherwise
(little change, or a rise). Both fits are linear once u0 is fixed, so all candidate steps
of a whole chunk of tokens are one matrix product (centred data against centred bases).

The threshold is calibrated (:func:`calibrate`) so that tokens without a step are called
sharp at a stated false-alarm rate: the null curves are power laws with the slopes and
residual scatter fitted to a sample of the data's own tokens, plus Gaussian noise.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from common.errors import InputError

CLASSES = ("flat", "sharp", "gradual")
FLAT, SHARP, GRADUAL = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class CurveDesign:
    """The two models' centred regressors for columns at ``x``: row 0 the line (ln x), rows
    1… one smoothed step per gap."""
    x: np.ndarray
    smooth: float
    bases: np.ndarray        # (1 + gaps, m), each row centred
    norms: np.ndarray        # squared norm of each row

    @property
    def m(self) -> int:
        return self.x.size

    @property
    def span(self) -> float:
        u = np.log(self.x)
        return float(u[-1] - u[0])


def design(x, smooth: float = 0.1) -> CurveDesign:
    """The design for columns at increasing positive ``x`` (at least 3)."""
    x = np.asarray(x, float)
    if x.size < 3:
        raise InputError(f"per-token curves need at least 3 columns (models or checkpoints), "
                         f"got {x.size}")
    if not smooth > 0:
        raise InputError(f"smooth must be positive, got {smooth!r}")
    u = np.log(x)
    mids, widths = (u[1:] + u[:-1]) / 2, np.diff(u)
    steps = 0.5 * (1 + np.tanh((u[None, :] - mids[:, None]) / (2 * smooth * widths[:, None])))
    bases = np.vstack([u, steps])
    bases = bases - bases.mean(1, keepdims=True)
    return CurveDesign(x, float(smooth), bases, (bases ** 2).sum(1))


@dataclasses.dataclass
class CurveFits:
    """Per-token results of both fits (arrays of one value per token)."""
    delta_bic: np.ndarray    # BIC(step) − BIC(line): negative favours the step
    drop: np.ndarray         # fall of the best step, −d (ln units; positive = falls)
    gap: np.ndarray          # the best step's gap: between column gap and gap + 1
    fall: np.ndarray         # fall of the line over the columns, −b·(ln x_m − ln x_1)
    noise: np.ndarray        # the line's residual standard deviation (ln units)
    slope: np.ndarray        # the line's slope b = dz/d ln x


def fit_curves(losses: np.ndarray, d: CurveDesign, floor: float) -> CurveFits:
    """Fit both models to every row of ``losses`` (tokens × columns) read as
    z = ln(L + floor) (the Numba kernel ``_kernels._fit_rows``)."""
    from fit.tokens._kernels import _fit_rows

    losses = np.ascontiguousarray(losses)
    if losses.dtype not in (np.float32, np.float64):
        losses = losses.astype(np.float64)
    n, m = losses.shape
    delta, drop, slope, rss = (np.empty(n) for _ in range(4))
    gap = np.empty(n, np.int16)
    _fit_rows(losses, float(floor), d.bases, d.norms, delta, drop, gap, slope, rss)
    return CurveFits(delta_bic=delta, drop=drop, gap=gap, fall=-slope * d.span,
                     noise=np.sqrt(rss / (m - 2)), slope=slope)


def classify(fits: CurveFits, threshold: float, min_log_drop: float) -> np.ndarray:
    """0 flat, 1 sharp, 2 gradual (see the module docstring)."""
    sharp = (fits.delta_bic < -threshold) & (fits.drop >= min_log_drop)
    gradual = ~sharp & (fits.fall >= min_log_drop)
    return np.where(sharp, SHARP, np.where(gradual, GRADUAL, FLAT)).astype(np.int8)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The ΔBIC threshold and the false-alarm rate it gives on null (step-free) curves."""
    threshold: float
    target: float
    false_alarm: float       # share of null curves called sharp at ``threshold``
    false_alarm_se: float    # its binomial standard error
    n_null: int
    null: str                # what the null curves were

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def null_curves(d: CurveDesign, slopes, noises, rng) -> np.ndarray:
    """Power laws z = b·ln x + σ·ε, one per (slope, noise) pair (ε standard normal)."""
    slopes = np.asarray(slopes, float)[:, None]
    noises = np.asarray(noises, float)[:, None]
    return slopes * np.log(d.x)[None, :] + noises * rng.standard_normal((slopes.size, d.m))


def false_alarm_rate(z_null, d: CurveDesign, threshold, min_log_drop) -> float:
    """Share of the rows of ``z_null`` (curves without a step) classified sharp."""
    fits = fit_curves(np.exp(z_null), d, 0.0)
    return float(np.mean(classify(fits, threshold, min_log_drop) == SHARP))


def calibrate(d: CurveDesign, slopes, noises, *, target: float = 0.01,
              min_log_drop: float = 1.0, n_null: int = 20_000, seed=0) -> Calibration:
    """The smallest threshold (≥ 0) at which at most ``target`` of null curves are called
    sharp. Null curves: power laws whose (slope, noise) pairs are drawn, with replacement,
    from ``slopes`` and ``noises`` (fitted lines of a sample of the data's tokens)."""
    if not 0 < target < 1:
        raise InputError(f"false-alarm target must lie in (0, 1), got {target!r}")
    slopes, noises = np.asarray(slopes, float), np.asarray(noises, float)
    if slopes.size == 0:
        raise InputError("calibration needs at least one token")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, slopes.size, n_null)
    fits = fit_curves(np.exp(null_curves(d, slopes[pick], noises[pick], rng)), d, 0.0)
    candidates = np.sort(fits.delta_bic[fits.drop >= min_log_drop])
    k = int(np.floor(target * n_null))
    threshold = 0.0 if candidates.size <= k else max(0.0, float(-candidates[k]))
    rate = float(np.mean(classify(fits, threshold, min_log_drop) == SHARP))
    return Calibration(threshold, float(target), rate, float(np.sqrt(rate * (1 - rate) / n_null)),
                       int(n_null), "power laws with the slopes and residual scatter of "
                       "the data's own tokens, Gaussian noise in ln(L + floor)")
