"""What a fit cannot tell by itself converging: the checks that keep its intervals honest.

- Bootstrap draws on a bound (an exponent at its search limit, E driven to zero): the data do
  not pin the parameter down, and the interval's end is the bound, not the data's.
- A fitted E above the smallest observed loss: the law cannot pass below E, so the points
  under it are misfitted (or E is not an irreducible loss).
- Data that increase with x fitted by a law that decreases: the exponent comes out negative
  (or on its bound at 0); it is reported with its sign, and said so.

The failed refits are counted by the fit itself (``n_failed_bootstrap``, ``failed`` in the
JSON) and flagged above 5 %.
"""
from __future__ import annotations

import numpy as np

#: E below this fraction of the smallest loss counts as zero (the offset vanished)
E_ZERO = 1e-6
#: the share of draws on a bound above which a warning is given
BOUND_SHARE = 0.01


def draws_on_bound(res, lower, upper) -> dict[str, int]:
    """Free parameter → number of bootstrap draws at its lower or upper bound (for E: below
    ``E_ZERO`` times the smallest loss)."""
    if not res.bootstrap_params:
        return {}
    spec = res.spec
    out = {}
    for i in spec.free:
        name, internal = spec.public[i], spec.internal[i]
        draws = np.asarray(res.bootstrap_params[name], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):   # an E that underflowed to 0
            t = np.log(draws) if name in spec.log_params else draws
            tol = 1e-6 * (1 + np.abs(t))
            hit = (np.abs(t - lower[i]) < tol) | (np.abs(t - upper[i]) < tol)
        if internal == "logE":
            hit |= draws < E_ZERO * res.y.min()
        if hit.any():
            out[name] = int(hit.sum())
    return out


def honesty_warnings(res, lower, upper) -> list[str]:
    """The warnings of this module's checks for a fitted :class:`fit.FitResult` (and saves
    the draws on a bound in ``res.info["draws_on_bound"]``)."""
    out = []
    on_bound = draws_on_bound(res, lower, upper)
    res.info["draws_on_bound"] = on_bound
    kept = len(next(iter(res.bootstrap_params.values()))) if res.bootstrap_params else 0
    for name, count in on_bound.items():
        if count > BOUND_SHARE * kept:
            what = "E is ~0 (the offset vanished)" if name == "E" else f"{name} is on a bound"
            out.append(f"{what} in {count} of {kept} bootstrap draws: the data do not pin "
                       f"{name} down; its interval ends at the bound, not at the data")
    E = res.params.get("E")
    if E is not None and "E" not in (res.config.get("fix") or {}) and E > res.y.min():
        out.append(f"fitted E = {E:.4g} is above the smallest observed loss "
                   f"({res.y.min():.4g}): the law cannot pass below E")
    out += _increasing(res)
    return out


def _increasing(res) -> list[str]:
    """A one-variable fit to data that increase with x: the exponent's sign said plainly."""
    if res.x2 is not None or len(np.unique(res.y)) < 2:
        return []
    rho = spearman(res.x, res.y)
    alpha = res.params.get("alpha")
    if not (rho > 0 or (alpha is not None and alpha < 0)):
        return []
    text = f"y increases with x (Spearman rho = {rho:.2f})"
    if alpha is not None:
        text += (f" and the fitted alpha = {alpha:.4g} " +
                 (f"< 0, i.e. y grows as x^{-alpha:.4g}" if alpha < 0 else "(on its bound?)"))
    return [text + ": a loss law decreases; if y is a size that grows with x (N_opt against "
            "compute), its growth exponent is -alpha"]


def spearman(x, y) -> float:
    """Spearman's rank correlation, ties given their mean rank (as scipy.stats.spearmanr;
    written out so that a fit does not load scipy.stats)."""
    def ranks(v):
        _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        return (ends - (counts - 1) / 2.0)[inverse]      # 1-based mean rank of each tie
    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])
