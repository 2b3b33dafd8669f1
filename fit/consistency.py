"""Are fitted exponents consistent with the quantization model?

The model predicts α_N = α and α_D = α_S = α/(α+1) (``theory``), so a measured pair should
satisfy α_D − α_N/(α_N+1) = 0, and each exponent implies an α (α = α_N; α = α_D/(1 − α_D),
the inverses of ``theory.alpha_N``/``theory.alpha_D``, here continued beyond the model's range
so that no bootstrap draw is dropped: +∞ for α_D ≥ 1, and the raw value for α_N ≤ 0, each
draw's share outside the range reported); the tilted variant (per-quantum loss gaps ∝ k^-γ) maps a pair to
(α, γ) by ``theory.alpha_gamma_from_exponents``. Intervals come from the bootstrap
distributions of the exponents: paired draws when both come from one joint fit; for two
separate fits, draw i of one with draw π(i) of the other for a fixed random permutation π,
so that fits bootstrapped with the same seed (same resample weights at the same index, hence
strongly correlated draws) still pair independent resamples.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from common.errors import InputError
from common.results import Result, jsonable
from fit.bootstrap import check_level, percentile_interval
from fit.forms import JOINT_FORMS, asymptotic_exponent


#: seed of the permutation that pairs the draws of two separate fits (fixed: the same fits
#: give the same intervals)
PAIRING_SEED = 20231101


def _alpha_from_N(aN):
    """α = α_N (the model's reading, here kept for every value: α_N ≤ 0 is outside it)."""
    return np.asarray(aN, dtype=float)


def _alpha_from_D(aD):
    """α = α_D/(1 − α_D), the inverse of α_D = α/(α+1), continued as +∞ for α_D ≥ 1:
    nondecreasing in α_D, so percentiles map through it."""
    aD = np.asarray(aD, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(aD < 1.0, aD / (1.0 - aD), np.inf)


def _alpha_from_C(aC):
    """α = 2α_C/(1 − α_C), the inverse of the compute-optimal loss exponent
    α_C = α/(α+2) (L* − L∞ ∝ C^-α/(α+2), ``theory.compute_optimal``), continued as +∞ for
    α_C ≥ 1: nondecreasing, so percentiles map through it."""
    aC = np.asarray(aC, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(aC < 1.0, 2.0 * aC / (1.0 - aC), np.inf)


def _gap(aN, aD):
    """α_D − α_N/(α_N+1): 0 on the model (defined for α_N > −1)."""
    aN, aD = np.asarray(aN, dtype=float), np.asarray(aD, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(aN > -1.0, aD - aN / (aN + 1.0), np.nan)


def _mapped_interval(samples, f, level) -> tuple[float, float]:
    """The percentile interval of ``samples`` mapped through the nondecreasing ``f``: the
    interval of the mapped draws up to the interpolation between neighbouring draws, with
    every draw kept (a draw outside the model's range moves an end to ±∞ rather than being
    dropped)."""
    lo, hi = percentile_interval(samples, level)
    return tuple(float(v) for v in f(np.array([lo, hi])))


def _outside(samples, lower=0.0, upper=np.inf) -> float:
    """Fraction of the finite draws outside the model's range (lower, upper)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    return float(np.mean((s <= lower) | (s >= upper))) if s.size else float("nan")


def _exponent_of(result, name):
    """(value, bootstrap samples or None) of exponent ``name`` of a FitResult (a parameter,
    or a derived quantity such as ``bnsl``'s ``alpha_final``)."""
    if name not in result.params:
        from fit import derived

        draws = derived.draws(result)
        return derived.values(result)[name], None if draws is None else draws[name]
    samples = None if result.bootstrap_params is None else result.bootstrap_params[name]
    return float(result.params[name]), samples


def implied_alpha(result, variable=None, level=None) -> dict:
    """The α implied by a fit's exponent(s): reading → {"exponent", "value", "ci",
    "in_model", "outside_fraction"}.

    Joint forms: "N" from ``alpha`` (α = α_N) and "D" from ``beta`` (α = α_D/(1-α_D), +∞
    for α_D ≥ 1). One variable: the reading for ``variable`` ("N", "D", "S", or "C": the
    compute-optimal loss exponent α/(α+2), α = 2α_C/(1 − α_C)), or both "N" and "D" when
    it is unknown. ``ci`` is the bootstrap percentile interval mapped through
    the inverse (None without a bootstrap); ``in_model`` whether the exponent lies in the
    model's range, ``outside_fraction`` the share of the draws that do not.
    """
    level = result.level if level is None else level
    if result.form in JOINT_FORMS:
        pairs = [("N", "alpha"), ("D", "beta")]
    else:
        name = asymptotic_exponent(result.form)
        readings = [variable] if variable else ["N", "D"]
        pairs = [(r, name) for r in readings]
    funcs = {"N": (_alpha_from_N, np.inf), "D": (_alpha_from_D, 1.0),
             "S": (_alpha_from_D, 1.0), "C": (_alpha_from_C, 1.0)}
    out = {}
    for reading, name in pairs:
        value, samples = _exponent_of(result, name)
        f, upper = funcs[reading]
        ci = outside = None
        if samples is not None:
            ci = list(_mapped_interval(samples, f, level))
            outside = _outside(samples, upper=upper)
        out[reading] = {"exponent": name, "value": float(f(value)), "ci": ci,
                        "in_model": bool(0 < value < upper), "outside_fraction": outside}
    return out


@dataclass(frozen=True)
class Consistency(Result):
    """Fitted (α_N, α_D) read against the quantization model; intervals at ``level``.

    ``params``: ``alpha_N``, ``alpha_D``, ``gap``, ``alpha_from_N``, ``alpha_from_D``,
    ``alpha_tilted``, ``gamma_tilted``; ``conf_int(alpha)`` recomputes their percentile
    intervals at any level from ``draws`` (the paired bootstrap draws, not in ``to_dict``);
    the ``*_ci`` fields hold them at ``level``.
    """
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
    outside_fraction: float | None = None   # draws with α_N ≤ 0 or α_D ∉ (0, 1)
    tilted_outside_fraction: float | None = None   # draws without α_N > α_D > 0 (no CI if
                                                    # more than one tail's worth)
    draws: dict | None = field(default=None, repr=False, compare=False)

    @property
    def consistent(self) -> bool | None:
        """Whether 0 lies inside the gap's interval (None without bootstrap samples)."""
        if self.gap_ci is None or not np.all(np.isfinite(self.gap_ci)):
            return None
        return bool(self.gap_ci[0] <= 0 <= self.gap_ci[1])

    @property
    def params(self) -> dict:
        return {k: float(getattr(self, k)) for k in READINGS}

    def _bounds(self, level: float) -> dict:
        return {} if self.draws is None else _reading_intervals(self.draws, level)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "draws"}
        d["consistent"] = self.consistent
        return jsonable(d)

    def plot(self, ax=None):
        """The fitted (α_N, α_D) and its bootstrap draws against the model's curve
        α_D = α_N/(α_N+1) (``fit.plots.plot_consistency``)."""
        from fit.plots import plot_consistency

        return plot_consistency(self, ax=ax)

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
        ] + ([f"{self.outside_fraction:.1%} of the draws lie outside the model's range "
              "(alpha_N > 0, 0 < alpha_D < 1); they are kept in the intervals"]
             if self.outside_fraction else [])
          + ([f"no tilted interval: {self.tilted_outside_fraction:.1%} of the draws lack "
              "alpha_N > alpha_D > 0"]
             if self.n_samples and self.alpha_tilted_ci is None else []))


#: the estimates a :class:`Consistency` reports (its ``params``)
READINGS = ("alpha_N", "alpha_D", "gap", "alpha_from_N", "alpha_from_D", "alpha_tilted",
            "gamma_tilted")


def _reading_intervals(draws: dict, level: float) -> dict:
    """name → percentile interval at ``level`` of each reading, from the paired draws
    (``alpha_N``, ``alpha_D`` and the tilted ``alpha_tilted``, ``gamma_tilted``, NaN where
    a pair lacks α_N > α_D > 0). The α readings map the exponents' intervals through their
    nondecreasing inverses; the tilted pair gets None when more draws than one tail holds
    are outside its range (the interval of the rest would not be a 1 − alpha one)."""
    sN, sD = draws["alpha_N"], draws["alpha_D"]
    out = {"alpha_N": percentile_interval(sN, level), "alpha_D": percentile_interval(sD, level),
           "gap": percentile_interval(_gap(sN, sD), level),
           "alpha_from_N": _mapped_interval(sN, _alpha_from_N, level),
           "alpha_from_D": _mapped_interval(sD, _alpha_from_D, level)}
    tilted_ok = np.mean(~np.isfinite(draws["alpha_tilted"])) <= (1.0 - level) / 2
    for name in ("alpha_tilted", "gamma_tilted"):
        out[name] = percentile_interval(draws[name], level) if tilted_ok else None
    return out


def _as_exponent(arg, name):
    """A FitResult, a float, or (value, samples) → (value, samples or None). A joint fit
    gives its ``beta`` as ``alpha_D``; a one-variable fit whose ``variable`` is the other
    one is refused (the two fits were passed the wrong way round)."""
    from fit.result import FitResult

    if isinstance(arg, FitResult):
        if arg.form in JOINT_FORMS:
            if name == "alpha_N":
                raise InputError("alpha_N: a joint fit holds both exponents; pass it alone")
            return _exponent_of(arg, "beta")
        variable = arg.config.get("variable")
        wrong = {"alpha_N": ("D", "S", "C"), "alpha_D": ("N", "C")}[name]
        if variable in wrong:
            raise InputError(f"{name}: this fit is of L({variable}); pass L(N) as alpha_N and "
                             "L(D) or L(S) as alpha_D")
        return _exponent_of(arg, asymptotic_exponent(arg.form))
    if isinstance(arg, tuple) and len(arg) == 2:
        return float(arg[0]), None if arg[1] is None else np.asarray(arg[1], dtype=float)
    try:
        return float(arg), None
    except (TypeError, ValueError):
        raise InputError(f"{name}: give a FitResult, a number or (value, samples)") from None


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
            raise InputError("alpha_D: a joint fit already holds both exponents")
        (aN, sN), (aD, sD) = _exponent_of(alpha_N, "alpha"), _exponent_of(alpha_N, "beta")
        paired = True
    else:
        if alpha_D is None:
            raise InputError("alpha_D: give the data exponent (or a joint fit as alpha_N)")
        (aN, sN), (aD, sD) = _as_exponent(alpha_N, "alpha_N"), _as_exponent(alpha_D, "alpha_D")
    if sN is not None and sD is not None:
        m = min(len(sN), len(sD))
        sN, sD = np.asarray(sN[:m]), np.asarray(sD[:m])
        if not paired:
            sD = sD[np.random.default_rng(PAIRING_SEED).permutation(m)]
    else:
        sN = sD = None

    tilted = theory.alpha_gamma_from_exponents
    at, gt = _safe_pair(tilted, aN, aD)
    draws, ci = None, {}
    outside = tilted_outside = None
    if sN is not None:
        pairs = np.array([_safe_pair(tilted, n, d) for n, d in zip(sN, sD)]).reshape(-1, 2)
        draws = {"alpha_N": sN, "alpha_D": sD, "alpha_tilted": pairs[:, 0],
                 "gamma_tilted": pairs[:, 1]}
        ci = _reading_intervals(draws, level)
        tilted_outside = float(np.mean(~np.isfinite(pairs[:, 0])))
        outside = float(np.mean((sN <= 0) | (sD <= 0) | (sD >= 1)))
    return Consistency(
        alpha_N=aN, alpha_D=aD, gap=float(_gap(aN, aD)), gap_ci=ci.get("gap"),
        alpha_from_N=float(_alpha_from_N(aN)), alpha_from_N_ci=ci.get("alpha_from_N"),
        alpha_from_D=float(_alpha_from_D(aD)), alpha_from_D_ci=ci.get("alpha_from_D"),
        alpha_tilted=float(at), gamma_tilted=float(gt), alpha_tilted_ci=ci.get("alpha_tilted"),
        gamma_tilted_ci=ci.get("gamma_tilted"), level=level,
        n_samples=0 if sN is None else len(sN), paired=paired, outside_fraction=outside,
        tilted_outside_fraction=tilted_outside, draws=draws)


def _safe_pair(f, n, d):
    try:
        return f(n, d)
    except InputError:
        return (np.nan, np.nan)
