"""Checks around a fit: the local exponent, an extrapolation test and model comparison."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.errors import InputError
import theory
from common.results import Result, jsonable
from fit.inputs import check_positive_array


def local_exponent(x, y, window=5, offset=0.0):
    """The sliding-window exponent of data: −slope of log(y − offset) on log x by least
    squares over each run of ``window`` consecutive points (sorted by x).

    Returns ``(x_mid, exponent)`` with x_mid the geometric mean of each window. A curve that
    has reached its asymptote shows a flat local exponent; a drifting one says the range is
    still pre-asymptotic (or that an irreducible loss, ``offset``, should be subtracted).
    (``theory.sliding_exponent`` with a default window of 5 and the fit's input checks.)
    """
    x, y = check_positive_array(x, "x"), np.asarray(y, dtype=float)
    if len(y) != len(x):
        raise InputError(f"y has {len(y)} values but x has {len(x)}")
    return theory.sliding_exponent(x, y, window=window, offset=offset)


@dataclass(frozen=True)
class Extrapolation(Result):
    """A fit on the smaller scales and its prediction of the held-out largest ones.

    ``params``: the training fit's parameters and ``mean_abs_rel_error`` (of the held-out
    predictions); ``conf_int`` gives the training fit's intervals.
    """
    form: str
    n_train: int
    x_train_max: float
    x_test: np.ndarray
    y_test: np.ndarray
    y_pred: np.ndarray
    rel_error: np.ndarray           # (pred − obs)/obs per held-out point
    mean_abs_rel_error: float
    fit: object                     # the FitResult on the training points
    x2_test: np.ndarray | None = None
    lower: np.ndarray | None = None     # band for a new observation at the fit's level
    upper: np.ndarray | None = None

    @property
    def covered(self) -> np.ndarray:
        """Whether each held-out observation lies in its band."""
        return (self.lower <= self.y_test) & (self.y_test <= self.upper)

    @property
    def rmsle(self) -> float:
        """Root mean squared log error of the held-out predictions."""
        return float(np.sqrt(np.mean(np.log(self.y_pred / self.y_test) ** 2)))

    def block(self) -> dict:
        """The ``holdout`` block of ``quanta fit --holdout K --json``: per held-out point
        ``x`` (``x2``), ``observed``, ``predicted``, ``lower``, ``upper`` (the band for a new
        observation), ``rel_error`` ((predicted − observed)/observed) and ``covered``; and
        ``rmsle``, ``mean_abs_rel_error``, ``n_train``, ``level``."""
        out = {"x": self.x_test, "observed": self.y_test, "predicted": self.y_pred,
               "lower": self.lower, "upper": self.upper, "rel_error": self.rel_error,
               "covered": self.covered, "rmsle": self.rmsle,
               "mean_abs_rel_error": self.mean_abs_rel_error, "n_train": self.n_train,
               "x_train_max": self.x_train_max, "level": self.fit.level,
               "interval": "observation"}
        if self.x2_test is not None:
            out["x2"] = self.x2_test
        return jsonable(out)

    @property
    def params(self) -> dict:
        return {**self.fit.params, "mean_abs_rel_error": float(self.mean_abs_rel_error)}

    def _bounds(self, level: float) -> dict:
        return self.fit._bounds(level)

    def to_dict(self) -> dict:
        return jsonable({"form": self.form, "n_train": self.n_train,
                         "x_train_max": self.x_train_max, "x_test": self.x_test,
                         "y_test": self.y_test, "y_pred": self.y_pred,
                         "rel_error": self.rel_error,
                         "mean_abs_rel_error": self.mean_abs_rel_error,
                         "x2_test": self.x2_test, "holdout": self.block(),
                         "fit": self.fit.to_dict()})

    def summary(self) -> str:
        key = "x" if self.x2_test is None else "x·x2"
        from fit.summary import holdout_lines

        lines = [f"extrapolation check: {self.form} fitted on {self.n_train} points "
                 f"({key} ≤ {self.x_train_max:.4g}), {len(self.x_test)} held out"]
        lines += holdout_lines(self.block())
        return "\n".join(lines)

    def plot(self, ax=None):
        """Training and held-out points with the training fit's prediction
        (``fit.plots.plot_extrapolation``)."""
        from fit.plots import plot_extrapolation

        return plot_extrapolation(self, ax=ax)


def extrapolation_check(form, x, y, *, x2=None, holdout=0.2, **options) -> Extrapolation:
    """Fit ``form`` on all but the largest scales and predict the held-out ones.

    ``holdout``: fraction (0 < h < 1) or number of points held out, those with the largest
    x (for joint forms, the largest x·x2, i.e. compute). Options go to :func:`fit.fit`. Each
    held-out point gets its relative error and the band in which a new observation should
    fall (:func:`fit.prediction.prediction_band`, ``interval="observation"``).
    """
    from fit.core import fit
    from fit.forms import fitted_spec
    from fit.inputs import EXTRA_POINTS, check_xy
    from fit.prediction import prediction_band

    # every point, the held-out ones too, is checked before the split
    x, y, x2, sigma = check_xy(x, y, x2=x2, sigma=options.pop("sigma", None), n_params=0)
    if sigma is not None:
        options["sigma"] = sigma
    n = len(x)
    n_out = int(round(holdout * n)) if 0 < holdout < 1 else int(holdout)
    if not 1 <= n_out < n:
        raise InputError(f"holdout must leave between 1 and {n - 1} points out, got {holdout!r}")
    need = fitted_spec(form, options).n_free + EXTRA_POINTS
    if n - n_out < need:
        raise InputError(f"--holdout {holdout:g} leaves {n - n_out} of {n} points; the {form} "
                         f"law needs at least {need}")
    key = x if x2 is None else x * np.asarray(x2, dtype=float)
    order = np.argsort(key, kind="stable")
    train, test = order[:n - n_out], order[n - n_out:]
    if sigma is not None:
        options["sigma"] = sigma[train]
    res = fit(form, x[train], y[train], x2=None if x2 is None else x2[train], **options)
    x2_test = None if x2 is None else x2[test]
    pred = res.predict(x[test], x2_test)
    lo, hi = prediction_band(res, x[test], x2_test, interval="observation")
    rel = (pred - y[test]) / y[test]
    check = Extrapolation(form, len(train), float(key[train].max()), x[test], y[test], pred,
                          rel, float(np.mean(np.abs(rel))), res, x2_test, lo, hi)
    res.holdout = check.block()
    return check


def _same(u, v) -> bool:
    """Equal arrays, or both absent."""
    return (u is None) == (v is None) and (u is None or np.array_equal(u, v))


def compare(results) -> str:
    """A text table of AIC and BIC (and their differences from the best) of fits to the same
    data; lower is better, differences above ~10 are decisive."""
    results = list(results)
    if not results:
        raise InputError("results: give at least one FitResult")
    n = {r.n_points for r in results}
    if len(n) > 1:
        raise InputError(f"results: fits to different numbers of points {sorted(n)} "
                         f"cannot be compared by AIC/BIC")
    first = results[0]
    for r in results[1:]:
        same = all(_same(getattr(r, a), getattr(first, a)) for a in ("x", "x2", "y", "sigma"))
        if not same:
            raise InputError("results: AIC/BIC compare fits to the same points with the same "
                             f"weights; {r.form!r} and {first.form!r} differ in their data")
    amin, bmin = min(r.aic for r in results), min(r.bic for r in results)
    lines = [f"{'form':>12} {'k':>3} {'AIC':>12} {'dAIC':>9} {'BIC':>12} {'dBIC':>9}"]
    for r in sorted(results, key=lambda r: r.aic):
        lines.append(f"{r.form:>12} {len(r.params):>3} {r.aic:12.3f} {r.aic - amin:9.3f} "
                     f"{r.bic:12.3f} {r.bic - bmin:9.3f}")
    return "\n".join(lines)
