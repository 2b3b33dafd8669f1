"""Are fitted exponents consistent with the quantization model?

The model predicts α_N = α and α_D = α_S = α/(α+1) (``theory``), so a measured pair should
satisfy α_D − α_D(α_N) = 0, and each exponent implies an α (``theory.alpha_from_alpha_N``,
``theory.alpha_from_alpha_D``); the tilted variant (per-quantum loss gaps ∝ k^-γ) maps a pair to
(α, γ) by ``theory.alpha_gamma_from_exponents``. Intervals come from the bootstrap
distributions of the exponents: paired draws when both come from one joint fit; for two
separate fits, draw i of one with draw π(i) of the other for a fixed random permutation π,
so that fits bootstrapped with the same seed (same resample weights at the same index, hence
strongly correlated draws) still pair independent resamples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fit.bootstrap import check_level, percentile_interval
from fit.forms import JOINT_FORMS


#: seed of the permutation that pairs the draws of two separate fits (fixed: the same fits
#: give the same intervals)
PAIRING_SEED = 20231101


def _map(f, values) -> np.ndarray:
    """Apply a scalar theory function elementwise; values outside its domain become NaN."""
    out = np.empty(np.shape(values))
    for i, v in enumerate(np.ravel(values)):
        try:
            out.flat[i] = f(v)
        except ValueError:
            out.flat[i] = np.nan
    return out


def _scalar(f, v) -> float:
    try:
        return float(f(v))
    except ValueError:
        return float("nan")


def _exponent_of(result, name):
    """(value, bootstrap samples or None) of exponent ``name`` of a FitResult."""
    samples = None if result.bootstrap_params is None else result.bootstrap_params[name]
    return float(result.params[name]), samples


def _one_variable_exponent(result):
    """The asymptotic exponent of a one-variable fit (the large-x one for ``broken``)."""
    return "alpha2" if result.form == "broken" else "alpha"


def implied_alpha(result, variable=None, level=None) -> dict:
    """The α implied by a fit's exponent(s): reading → {"value", "ci"}.

    Joint forms: "N" from ``alpha`` (α = α_N) and "D" from ``beta`` (α = α_D/(1-α_D)).
    One variable: the reading for ``variable`` ("N", "D" or "S"), or both "N" and "D" when
    it is unknown. ``ci`` is the bootstrap percentile interval (None without a bootstrap).
    """
    import theory

    level = result.level if level is None else level
    if result.form in JOINT_FORMS:
        pairs = [("N", "alpha"), ("D", "beta")]
    else:
        name = _one_variable_exponent(result)
        readings = [variable] if variable else ["N", "D"]
        pairs = [(r, name) for r in readings]
    funcs = {"N": theory.alpha_from_alpha_N, "D": theory.alpha_from_alpha_D,
             "S": theory.alpha_from_alpha_D}
    out = {}
    for reading, name in pairs:
        value, samples = _exponent_of(result, name)
        f = funcs[reading]
        ci = None
        if samples is not None:
            ci = list(percentile_interval(_map(f, samples), level))
        out[reading] = {"exponent": name, "value": _scalar(f, value), "ci": ci}
    return out


@dataclass(frozen=True)
class Consistency:
    """Fitted (α_N, α_D) read against the quantization model; intervals at ``level``."""
    alpha_N: float
    alpha_D: float
    gap: float                    # α_D − α_D(α_N); the model says 0
    gap_ci: tuple | None
    alpha_from_N: float
    alpha_from_N_ci: tuple | None
    alpha_from_D: float
    alpha_from_D_ci: tuple | None
    alpha_tilted: float           # (α, γ) of the tilted variant
    gamma_tilted: float
    alpha_tilted_ci: tuple | None
    gamma_tilted_ci: tuple | None
    level: float
    n_samples: int
    paired: bool

    @property
    def consistent(self) -> bool | None:
        """Whether 0 lies inside the gap's interval (None without bootstrap samples)."""
        if self.gap_ci is None or not np.all(np.isfinite(self.gap_ci)):
            return None
        return bool(self.gap_ci[0] <= 0 <= self.gap_ci[1])

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["consistent"] = self.consistent
        return d

    def summary(self) -> str:
        def fmt(v, ci):
            return f"{v:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")
        return "\n".join([
            f"alpha_N = {self.alpha_N:.4g}, alpha_D = {self.alpha_D:.4g} "
            f"({self.n_samples} {'paired' if self.paired else 'independent'} bootstrap draws, "
            f"{self.level:.0%} intervals)",
            f"alpha_D - alpha_N/(alpha_N+1) = {fmt(self.gap, self.gap_ci)}  "
            f"(quantization model: 0; consistent: {self.consistent})",
            f"alpha implied by alpha_N: {fmt(self.alpha_from_N, self.alpha_from_N_ci)}",
            f"alpha implied by alpha_D: {fmt(self.alpha_from_D, self.alpha_from_D_ci)}",
            f"tilted variant: alpha = {fmt(self.alpha_tilted, self.alpha_tilted_ci)}, "
            f"gamma = {fmt(self.gamma_tilted, self.gamma_tilted_ci)}",
        ])


def _as_exponent(arg, name):
    """A FitResult, a float, or (value, samples) → (value, samples or None)."""
    from fit.result import FitResult

    if isinstance(arg, FitResult):
        return _exponent_of(arg, _one_variable_exponent(arg))
    if isinstance(arg, tuple) and len(arg) == 2:
        return float(arg[0]), None if arg[1] is None else np.asarray(arg[1], dtype=float)
    try:
        return float(arg), None
    except (TypeError, ValueError):
        raise ValueError(f"{name}: give a FitResult, a number or (value, samples)") from None


def consistency(alpha_N, alpha_D=None, level=0.95) -> Consistency:
    """Read a measured (α_N, α_D) against the quantization model.

    ``alpha_N``: a joint FitResult (then ``alpha_D`` is None and its ``alpha``, ``beta`` are
    used with paired bootstrap draws), or a one-variable FitResult of L(N), a number, or
    ``(value, bootstrap samples)``; ``alpha_D`` likewise for L(D) (or L(S)).
    """
    import theory

    from fit.result import FitResult

    check_level(level)
    paired = False
    if isinstance(alpha_N, FitResult) and alpha_N.form in JOINT_FORMS:
        if alpha_D is not None:
            raise ValueError("alpha_D: a joint fit already holds both exponents")
        (aN, sN), (aD, sD) = _exponent_of(alpha_N, "alpha"), _exponent_of(alpha_N, "beta")
        paired = True
    else:
        if alpha_D is None:
            raise ValueError("alpha_D: give the data exponent (or a joint fit as alpha_N)")
        (aN, sN), (aD, sD) = _as_exponent(alpha_N, "alpha_N"), _as_exponent(alpha_D, "alpha_D")
    if sN is not None and sD is not None:
        m = min(len(sN), len(sD))
        sN, sD = np.asarray(sN[:m]), np.asarray(sD[:m])
        if not paired:
            sD = sD[np.random.default_rng(PAIRING_SEED).permutation(m)]
    else:
        sN = sD = None

    def ci(values):
        return None if sN is None else percentile_interval(values, level)

    gap_of = lambda n, d: d - _map(theory.alpha_D, n)                      # noqa: E731
    gap = float(gap_of(np.array([aN]), np.array([aD]))[0])
    tilted = lambda n, d: theory.alpha_gamma_from_exponents(n, d)          # noqa: E731
    try:
        at, gt = tilted(aN, aD)
    except ValueError:
        at = gt = float("nan")
    at_ci = gt_ci = None
    if sN is not None:
        pairs = np.array([_safe_pair(tilted, n, d) for n, d in zip(sN, sD)]).reshape(-1, 2)
        at_ci, gt_ci = ci(pairs[:, 0]), ci(pairs[:, 1])
    return Consistency(
        alpha_N=aN, alpha_D=aD, gap=gap, gap_ci=None if sN is None else ci(gap_of(sN, sD)),
        alpha_from_N=_scalar(theory.alpha_from_alpha_N, aN),
        alpha_from_N_ci=None if sN is None else ci(_map(theory.alpha_from_alpha_N, sN)),
        alpha_from_D=_scalar(theory.alpha_from_alpha_D, aD),
        alpha_from_D_ci=None if sD is None else ci(_map(theory.alpha_from_alpha_D, sD)),
        alpha_tilted=float(at), gamma_tilted=float(gt), alpha_tilted_ci=at_ci,
        gamma_tilted_ci=gt_ci, level=level, n_samples=0 if sN is None else len(sN),
        paired=paired)


def _safe_pair(f, n, d):
    try:
        return f(n, d)
    except ValueError:
        return (np.nan, np.nan)
