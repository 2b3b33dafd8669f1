"""What a fit cannot tell by itself converging: the checks that keep its intervals honest.

- Bootstrap draws on a bound (an exponent at its search limit, E driven to zero): the data do
  not pin the parameter down, and the interval's end is the bound, not the data's.
- A fitted E above the smallest observed loss: the law cannot pass below E, so the points
  under it are misfitted (or E is not an irreducible loss).
- Data that increase with x fitted by a law that decreases: the exponent comes out negative
  (or on its bound at 0); it is reported with its sign, and said so.
- An ill-conditioned design (N and D that move together, E that the data cannot tell from
  the power law's tail): parameters whose changes offset each other; their values and
  intervals, bootstrap ones included, are flagged unreliable however narrow they look.

The failed refits are counted by the fit itself (``n_failed_bootstrap``, ``failed`` in the
JSON) and flagged above 5 %.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

#: E below this fraction of the smallest loss counts as zero (the offset vanished)
E_ZERO = 1e-6
#: the share of draws on a bound above which a warning is given
BOUND_SHARE = 0.01
#: Condition index of a fit's scaled design (:func:`conditioning`) above which the
#: parameters it leaves undetermined are flagged. Belsley, Kuh & Welsch (1980, Regression
#: Diagnostics, §3.3) read indexes of 30–100 as moderate to strong near-dependencies and
#: above 100 as strong ones that degrade the estimates. Measured on joint laws
#: (tests/test_fit_honesty.py): a 5 x 5 grid of N and D, 40 log-uniform (N, D) runs and
#: Chinchilla's 240 runs give 24–42; runs at D = 20 N with the ratio jittered by 20 % (corr of
#: log N and log D 0.995, where the former |corr| > 0.99 rule warned) 107–153 (chinchilla,
#: and max through its smooth twin, :func:`conditioning`), with the ratio jittered by 50 %
#: 44–57, exactly 20 N 1e4–1e16. One-variable offset laws over three decades give ~13,
#: over one ~90, bnsl 50–60.
ILL_CONDITIONED = 100.0
#: exponent → its prefactor (internal names) and the size it multiplies (0: x, 1: x2)
SLOPES = {"alpha": ("logA", 0), "beta": ("logB", 1)}


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
    index, weak = conditioning(res)
    res.info["condition_number"] = index
    res.info["ill_determined"] = weak
    if weak:
        out.append(_conditioning_warning(res, index, weak))
    E = res.params.get("E")
    if E is not None and "E" not in (res.config.get("fix") or {}) and E > res.y.min():
        out.append(f"fitted E = {E:.4g} is above the smallest observed loss "
                   f"({res.y.min():.4g}): the law cannot pass below E")
    out += _increasing(res)
    return out


def scaled_design(res) -> np.ndarray:
    """The design a fit's covariance s² (JᵀJ)⁻¹ and its refits rest on: the Jacobian J of
    the log law in the free parameters at the estimate (rows weighted by y/sigma with
    sigma), each column scaled to unit length (Belsley's scaling: the index does not depend
    on the units of a parameter). Each exponent is taken with its prefactor at the data's
    mean log size (log A' = log A − alpha·mean log x: a change of variables, which leaves
    what the data determine as it is); without it every power law's prefactor and exponent
    would look collinear because log x sits far from 0, a matter of units, not of data."""
    spec = res.spec
    X = res._design(res.x, res.x2)
    weight = np.ones(res.n_points) if res.sigma is None else res.y / res.sigma
    J = spec.model(res.theta[None], X)[1][0] * weight[:, None]
    p = len(spec.internal)
    chain = np.eye(p) if spec.chain is None else spec.chain
    for exponent, (prefactor, k) in SLOPES.items():
        if exponent not in spec.internal or prefactor not in spec.internal or k >= len(X):
            continue
        i, j = spec.internal.index(exponent), spec.internal.index(prefactor)
        if np.array_equal(chain[:, j], np.eye(p)[j]):      # the prefactor fitted alone
            centre = np.average(X[k], weights=weight ** 2)
            J = J + np.outer(centre * J[:, j], chain[i])   # the columns carrying the exponent
    J = J[:, spec.free]
    with np.errstate(invalid="ignore", divide="ignore"):
        return J / np.linalg.norm(J, axis=0)


def conditioning(res) -> tuple[float, list[str]]:
    """The condition number of :func:`scaled_design` and the free parameters it leaves
    undetermined: those with more than half their variance in directions whose condition
    index exceeds ``ILL_CONDITIONED`` (Belsley, Kuh & Welsch's variance-decomposition
    proportions; [] when none does); NaN and [] when the design is not finite.

    The ``max`` law is judged on its own design and on that of its smooth twin
    (``chinchilla``) at the same parameters, the larger index and the parameters either
    leaves undetermined: at each point the max's Jacobian sees only the branch that wins, so
    it cannot see that runs at one tokens-per-parameter ratio would let the branches trade
    N for D (at D = 20 N its own index stays under 60, its twin's exceeds 1e4)."""
    designs = [res] + ([replace(res, form="chinchilla")] if res.form == "max" else [])
    found = [_weak_directions(scaled_design(r), r.spec) for r in designs]
    weak = {name for _, names in found for name in names}
    return max(index for index, _ in found), [p for p in res.spec.public if p in weak]


def _weak_directions(Z, spec) -> tuple[float, list[str]]:
    """:func:`conditioning` of one scaled design Z (n, free parameters of ``spec``)."""
    if not np.all(np.isfinite(Z)):
        return float("nan"), []
    _, s, vt = np.linalg.svd(Z, full_matrices=False)
    s = np.maximum(s, np.finfo(float).eps * s[0])     # an exactly singular design: ~1e16
    phi = (vt.T / s) ** 2                            # parameter x direction
    share = phi / phi.sum(axis=1, keepdims=True)
    weak = share[:, s[0] / s > ILL_CONDITIONED].sum(axis=1) > 0.5
    return float(s[0] / s[-1]), [spec.public[i] for i, w in zip(spec.free, weak) if w]


def unreliable_intervals(res) -> list[str]:
    """The parameters whose intervals an ill-conditioned design makes unreliable (those
    :func:`conditioning` found undetermined) and, when one of them is an exponent or shape
    parameter, the derived quantities and ``alpha_implied`` (functions of those, not of the
    prefactors or E)."""
    from fit.derived import functions

    weak = list(res.info.get("ill_determined") or ())
    if any(name not in res.spec.log_params for name in weak):
        weak += list(functions(res.form)) + ["alpha_implied"]
    return weak


def _conditioning_warning(res, index: float, weak: list[str]) -> str:
    text = (f"ill-conditioned design (condition number {index:.3g} > {ILL_CONDITIONED:g}): "
            f"the data barely determine {', '.join(weak)} (changes in them that offset each "
            "other fit almost as well); their values and intervals, bootstrap and fit SE "
            "alike, are unreliable however narrow")
    if res.x2 is not None:
        corr = np.corrcoef(np.log(res.x), np.log(res.x2))[0, 1]
        text += (f"; corr(log N, log D) = {corr:.3f} (near ±1: runs at one tokens-per-"
                 "parameter ratio cannot separate N from D; fit L(N) or L(C))")
    return text


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
