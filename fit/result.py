"""The one result object every fit returns (after statsmodels' results and lmfit's ModelResult)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri, stdtrit

from common.errors import InputError
from common.results import Result, interval_table, jsonable
from fit.bootstrap import CI_METHODS, bca_interval, percentile_interval
from fit.forms import form_spec, to_public

FORMULAS = {
    "power": "L = A x^-alpha",
    "offset": "L = E + A x^-alpha",
    "broken": "L = A x^-alpha, bending to x^-alpha2 at x_break",
    "chinchilla": "L = E + A N^-alpha + B D^-beta",
    "max": "L = E + max(A N^-alpha, B D^-beta)",
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
    bootstrap); ``n_failed_bootstrap`` counts the refits that did not converge.
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

    # ------------------------------------------------------------------ estimates
    @property
    def n_bootstrap(self) -> int:
        """Bootstrap resamples requested (converged ones are in ``bootstrap_params``)."""
        return int(self.config.get("bootstrap", 0))

    @property
    def df_resid(self) -> int:
        return self.n_points - len(self.theta)

    @property
    def spec(self):
        return form_spec(self.form, **({"smooth": self.config["smooth"]}
                                       if self.form == "broken" else {}))

    def predict(self, x, x2=None) -> np.ndarray:
        """The fitted loss at sizes ``x`` (and ``x2`` for the joint forms)."""
        X = self._design(x, x2)
        pred, _ = self.spec.model(self.theta[None, :], X)
        return np.exp(pred[0])

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

    def _bounds(self, level: float, method: str | None = None) -> dict:
        boot = self.bootstrap_params is not None
        method = (self.ci_method if boot else "wald") if method is None else method
        if method not in CI_METHODS + ("wald",):
            raise InputError(f"method must be one of {CI_METHODS + ('wald',)}, got {method!r}")
        if method == "wald":
            return self._wald_bounds(level)
        if not boot:
            raise InputError(f"method={method!r}: this fit has no bootstrap (run it with "
                             "bootstrap > 0) — use method='wald'")
        if method == "bca" and self.jackknife_params is None:
            raise InputError("method='bca' needs the jackknife, computed when the fit is "
                             "run with jackknife=True")
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
        if self.loss == "l2" and self.df_resid > 0:
            q = stdtrit(self.df_resid, 0.5 + level / 2)      # Student's t quantile
        else:
            q = ndtri(0.5 + level / 2)
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

    def summary(self) -> str:
        """A text table: the form, the fit statistics and each parameter with its errors."""
        level = self.level
        ci = self._bounds(level)
        wald = self._wald_bounds(level)
        bse = self.bootstrap_stderr()
        lines = [f"Scaling-law fit: {self.form}    {FORMULAS[self.form]}",
                 f"points: {self.n_points}   loss: {self.loss}"
                 + (f" (delta={self.config.get('delta')})" if self.loss == "huber" else "")
                 + f"   objective: {self.objective:.6g}   converged: {self.converged}",
                 f"AIC: {self.aic:.4f}   BIC: {self.bic:.4f}   log-likelihood: {self.llf:.4f}"
                 "   (Gaussian, log residuals)"]
        if self.bootstrap_params is not None:
            lines.append(f"bootstrap: {self.n_bootstrap} {self.config.get('bootstrap_method')} "
                         f"resamples, {self.n_failed_bootstrap} failed refits, "
                         f"{self.ci_method} intervals, seed {self.config.get('seed')}")
        head = (f"{'':>8} {'value':>12} {'std err':>10} {'boot se':>10} "
                f"{f'[{level:.0%} CI':>12} {'':>11}  {'fit-SE CI':>22}")
        lines += ["-" * len(head), head, "-" * len(head)]
        for k, v in self.params.items():
            b = f"{bse[k]:10.4g}" if bse else f"{'-':>10}"
            lines.append(f"{k:>8} {v:12.6g} {self.stderr[k]:10.4g} {b} "
                         f"{ci[k][0]:12.6g} {ci[k][1]:11.6g}  "
                         f"[{wald[k][0]:.4g}, {wald[k][1]:.4g}]")
        lines.append("-" * len(head))
        reading = self.alpha_implied()
        if reading:
            parts = [f"{k}: {v['value']:.4g}" + (f" [{v['ci'][0]:.4g}, {v['ci'][1]:.4g}]"
                                               if v.get("ci") else "")
                     for k, v in reading.items()]
            lines.append("quantization model, alpha implied by " + "; ".join(parts))
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def to_dict(self, include_data: bool = False) -> dict:
        """JSON-ready summary: form, params, ci, stderr, n_points, aic, bic, n_failed_bootstrap,
        alpha_implied, warnings, config (and the data with ``include_data``)."""
        ci = self._bounds(self.level)
        out = {
            "form": self.form,
            "params": {k: float(v) for k, v in self.params.items()},
            "ci": {k: [float(a), float(b)] for k, (a, b) in ci.items()},
            "stderr": {k: float(v) for k, v in self.stderr.items()},
            "bootstrap_stderr": self.bootstrap_stderr(),
            "level": self.level,
            "ci_method": self.ci_method if self.bootstrap_params is not None else "wald",
            "n_points": self.n_points,
            "aic": self.aic,
            "bic": self.bic,
            "llf": self.llf,
            "loss": self.loss,
            "objective": self.objective,
            "converged": self.converged,
            "n_bootstrap": self.n_bootstrap,
            "n_failed_bootstrap": self.n_failed_bootstrap,
            "alpha_implied": {k: v for k, v in self.alpha_implied().items()},
            "warnings": list(self.warnings),
            "config": dict(self.config),
        }
        if include_data:
            out["data"] = {"x": self.x.tolist(), "y": self.y.tolist(),
                           "x2": None if self.x2 is None else self.x2.tolist()}
        return jsonable(out)

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
