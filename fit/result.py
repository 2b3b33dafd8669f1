"""The one result object every fit returns (after statsmodels' results and lmfit's ModelResult)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri, stdtrit

from common.errors import InputError
from common.results import Result, check_alpha_level, interval_table, jsonable
from fit.bootstrap import CI_METHODS, bca_interval, check_level, percentile_interval
from fit.forms import constrain, form_spec, to_public

FORMULAS = {
    "power": "L = A x^-alpha",
    "offset": "L = E + A x^-alpha",
    "broken": "L = A x^-alpha, bending to x^-alpha2 at x_break",
    "chinchilla": "L = E + A N^-alpha + B D^-beta",
    "max": "L = E + max(A N^-alpha, B D^-beta)",
    "bnsl": "L = E + A x^-alpha prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i)",
}


@dataclass
class FitResult(Result):
    """A fitted scaling law: the data, the estimates and their uncertainty (the result
    protocol of ``common.results``: ``params``, ``conf_int(alpha)``, ``summary()``,
    ``to_dict()``, ``plot()``).

    ``params``/``stderr``: public name → value (``A``, ``alpha`` [+ ``E``] for one variable;
    ``E, A, B, alpha, beta`` joint; ``broken`` adds ``alpha2`` and ``x_break``). ``stderr`` comes
    from the fit itself (least squares for ``power``, as statsmodels' OLS/WLS; the
    Gauss–Newton covariance ``s² (JᵀJ)⁻¹`` on log axes, carried to E, A, B by the delta
    method, for the others).
    ``bootstrap_params``: name → array of the converged bootstrap refits (None without a
    bootstrap); ``n_failed_bootstrap`` counts the refits that did not converge (or were
    undetermined: a pairs resample on too few distinct sizes); they are left out of the
    intervals, and the summary and JSON (``failed``) say how many.
    """
    form: str
    x: np.ndarray
    y: np.ndarray
    params: dict
    stderr: dict
    theta: np.ndarray
    cov_theta: np.ndarray
    aic: float
    bic: float
    llf: float
    objective: float
    n_points: int
    x2: np.ndarray | None = None
    sigma: np.ndarray | None = None
    loss: str = "l2"
    converged: bool = True
    n_failed_bootstrap: int = 0
    bootstrap_params: dict | None = None
    jackknife_params: dict | None = None
    level: float = 0.95
    ci_method: str = "percentile"
    warnings: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    #: the rows fitted, when read from a table (``fit.fit_table``): query, missing values
    #: dropped, group, row counts
    selection: dict = field(default_factory=dict)
    #: the extrapolation check's ``holdout`` block when the fit left its largest sizes out
    holdout: dict | None = None

    # ------------------------------------------------------------------ estimates
    @property
    def n_bootstrap(self) -> int:
        """Bootstrap resamples requested (converged ones are in ``bootstrap_params``)."""
        return int(self.config.get("bootstrap", 0))

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom: the points less the parameters estimated (the free
        ones: a fixed parameter is not estimated, a tied pair is one estimate)."""
        return self.n_points - self.spec.n_free

    def wald_quantile(self, level: float) -> float:
        """The two-sided quantile at ``level`` of every interval built from the fit's own
        covariance (Wald intervals, delta-method bands and derived quantities): Student's t
        with ``df_resid`` degrees of freedom for a least-squares fit (as statsmodels' OLS),
        the normal quantile for the Huber loss (an asymptotic covariance) or without a
        residual degree of freedom."""
        if self.loss == "l2" and self.df_resid > 0:
            return float(stdtrit(self.df_resid, 0.5 + level / 2))
        return float(ndtri(0.5 + level / 2))

    @property
    def spec(self):
        """The form's :class:`fit.forms.FormSpec`, with the fit's tied and fixed parameters."""
        shape = {"smooth": self.config.get("smooth") or 0.1,
                 "breaks": self.config.get("breaks") or 1}
        return constrain(form_spec(self.form, **shape), self.config.get("tie"),
                         self.config.get("fix"))

    def predict(self, x, x2=None, *, alpha=None, level=None, interval="observation"):
        """The fitted loss at sizes ``x`` (and ``x2`` for the joint forms): an array, or
        with ``alpha`` (or ``level`` = 1 − alpha) a DataFrame of ``x`` (``x2``),
        ``predicted``, ``lower`` and ``upper``: the band at that level
        (:func:`fit.prediction.prediction_band`): by default where a new measurement should
        fall (the residual scatter added); ``interval="curve"`` for the fitted law alone."""
        if alpha is None and level is None:
            X = self._design(x, x2)
            pred, _ = self.spec.model(self.theta[None, :], X)
            return np.exp(pred[0])
        from fit.prediction import prediction_frame

        level = 1.0 - check_alpha_level(alpha) if level is None else check_level(level)
        return prediction_frame(self, x, x2, level=level, interval=interval)

    def _design(self, x, x2=None):
        u = np.log(np.asarray(x, dtype=float))
        if self.x2 is not None:
            if x2 is None:
                raise InputError("x2: the joint forms need both x and x2 to predict")
            return (u, np.broadcast_to(np.log(np.asarray(x2, dtype=float)), u.shape))
        return (u,)

    @property
    def fitted(self) -> np.ndarray:
        return self.predict(self.x, self.x2)

    @property
    def resid(self) -> np.ndarray:
        """Residuals on log axes: log y - log fitted."""
        return np.log(self.y) - np.log(self.fitted)

    # ------------------------------------------------------------------ intervals
    @property
    def interval_method(self) -> str:
        """How ``conf_int`` makes intervals by default: the fit's ``ci_method`` with a
        bootstrap, "wald" without one (``ci_method`` in the JSON)."""
        return self.ci_method if self.bootstrap_params is not None else "wald"

    def conf_int(self, alpha: float | None = None, method: str | None = None, *,
                 level: float | None = None):
        """Confidence intervals at level 1 − ``alpha`` (default: the fit's ``level``) as a
        DataFrame indexed by parameter with columns ``lower`` and ``upper``.

        ``method``: "percentile" or "bca" (bootstrap intervals; default the fit's
        ``ci_method``) or "wald" (from ``stderr`` on the fitted (log) scale, t quantiles with
        the residual degrees of freedom for least-squares fits; the default without a
        bootstrap). ``level=`` is the deprecated spelling of ``1 - alpha``.
        """
        return interval_table(self._bounds(1.0 - self._alpha(alpha, level), method=method))

    def checked_method(self, method: str | None = None) -> str:
        """``method`` (default :attr:`interval_method`), refused in one line when it is not
        an interval method or needs draws this fit does not hold."""
        method = self.interval_method if method is None else method
        if method not in CI_METHODS + ("wald",):
            raise InputError(f"method must be one of {CI_METHODS + ('wald',)}, got {method!r}")
        if method != "wald" and self.bootstrap_params is None:
            raise InputError(f"method={method!r}: this fit has no bootstrap (run it with "
                             "bootstrap > 0) — use method='wald'")
        if method == "bca" and self.jackknife_params is None:
            raise InputError("method='bca' needs the jackknife, computed when the fit is "
                             "run with jackknife=True")
        return method

    def _bounds(self, level: float, method: str | None = None) -> dict:
        method = self.checked_method(method)
        if method == "wald":
            return self._wald_bounds(level)
        if method == "bca":
            return {name: bca_interval(samples, self.params[name],
                                       self.jackknife_params[name], level)
                    for name, samples in self.bootstrap_params.items()}
        return {name: percentile_interval(samples, level)
                for name, samples in self.bootstrap_params.items()}

    def wald_conf_int(self, alpha: float | None = None, *, level: float | None = None):
        """``conf_int(alpha, method="wald")``: intervals from the fit's own standard errors."""
        return interval_table(self._wald_bounds(1.0 - self._alpha(alpha, level)))

    def _wald_bounds(self, level: float) -> dict:
        se = np.sqrt(np.clip(np.diag(self.cov_theta), 0, None))
        q = self.wald_quantile(level)
        lo = to_public(self.spec, self.theta - q * se)
        hi = to_public(self.spec, self.theta + q * se)
        return {k: (float(lo[k]), float(hi[k])) for k in self.params}

    def bootstrap_stderr(self) -> dict | None:
        """Standard deviation of the bootstrap replicates (None without a bootstrap)."""
        if self.bootstrap_params is None:
            return None
        return {k: _spread(v, self.params[k]) for k, v in self.bootstrap_params.items()}

    # ------------------------------------------------------------------ reading
    def alpha_implied(self, variable: str | None = None) -> dict:
        """The quantization model's α implied by the fitted exponent(s) (see fit.consistency)."""
        from fit.consistency import implied_alpha

        return implied_alpha(self, variable=variable or self.config.get("variable"))

    def derived(self, alpha: float | None = None, method: str | None = None):
        """Quantities the fit implies (the compute-optimal split of a joint law, the final
        exponent of ``bnsl``; :mod:`fit.derived`) as a DataFrame of ``value``, ``lower``,
        ``upper`` at level 1 − ``alpha`` (default the fit's), intervals as the fit's."""
        from fit import derived

        return derived.table(self, 1.0 - self._alpha(alpha, None), method)

    @property
    def constraints(self) -> str:
        """The tied and fixed parameters in words ("" when every parameter was fitted)."""
        from fit.forms import constraint_text

        return constraint_text(self.spec, self.config.get("tie"), self.config.get("fix"))

    def summary(self) -> str:
        """A text report: the form, the fit statistics, each parameter with its errors (a
        table aligned whatever the magnitudes), derived quantities, the model's reading and
        the warnings."""
        from fit.summary import summary_text

        return summary_text(self)

    def to_dict(self, include_data: bool = False) -> dict:
        """JSON-ready summary: form, params, ci, stderr, n_points, aic, bic, failed (and
        n_failed_bootstrap), derived, alpha_implied, warnings, config (and the data with
        ``include_data``)."""
        from fit.summary import fit_document

        return fit_document(self, include_data)

    def plot(self, ax=None, **kwargs):
        """Data, fitted curve and bootstrap band on log-log axes (``fit.plots.plot_fit``)."""
        from fit.plots import plot_fit

        return plot_fit(self, ax=ax, **kwargs)


def _spread(samples, estimate) -> float:
    """Standard deviation of bootstrap replicates, taken relative to the estimate so that a
    parameter near float64's limits (a prefactor of 1e-300 or 1e290) neither underflows to
    0 nor overflows to inf."""
    v = np.asarray(samples, dtype=float)
    if len(v) < 2:
        return np.nan
    unit = abs(estimate) if np.isfinite(estimate) and estimate != 0 else 1.0
    return float(np.std(v / unit, ddof=1) * unit)
