"""``fit.fit``: one entry point for every form, with bootstrap error bars and warnings."""
from __future__ import annotations

import itertools

import numpy as np

from common.errors import InputError
from fit.bootstrap import (BOOTSTRAP_METHODS, CI_METHODS, check_level, check_resamples,
                           jackknife_weights, pair_weights, residual_indices)
from fit.checks import honesty_warnings
from fit.inputs import check_xy
from fit.forms import (FORMS, JOINT_FORMS, constrain, form_spec, objective,
                       parse_constraints, solve_batch, to_public)
from fit.result import FitResult
from fit.single import fast_fit

#: Fewest points below which a fit is flagged (not refused).
FEW_POINTS = 8
#: Shortest x range, in decades, below which the exponent is flagged as poorly determined.
MIN_DECADES = 1.0
#: Default exponents of the starting grids.
START_EXPONENTS = (0.1, 0.3, 0.7, 1.5)


def fit(form, x, y, *, x2=None, sigma=None, bootstrap=0, level=0.95, seed=0,
        bootstrap_method="pairs", ci_method="percentile", loss=None, delta=1e-3, grid=None,
        bounds=None, smooth=0.1, jackknife=None, variable=None, maxiter=500, tie=None,
        fix=None, breaks=1) -> FitResult:
    """Fit a scaling law of ``form`` to sizes ``x`` (and ``x2``) and losses ``y``.

    form: "power" (A x^-alpha, OLS/WLS on log-log axes, closed form), "offset"
    (E + A x^-alpha), "broken" (two regimes joined by a smooth bend of width ``smooth`` in
    ln x), "chinchilla" (E + A N^-alpha + B D^-beta), "max" (E + max(A N^-alpha, B D^-beta),
    the quantization model's joint form, theory.expected_loss_ND) or "bnsl" (Caballero et
    al.'s broken neural scaling law with offset E and ``breaks`` breaks). All are fitted on
    log residuals, scaled by y/sigma when ``sigma`` (per-point errors of y) is given. ``tie``
    ("alpha=beta", or a list) fits one value for both; ``fix`` ({"E": 1.69}) holds values.

    loss: "l2" (default for one variable) or "huber" (default for the joint forms, Hoffmann et
    al. 2022 approach 3, threshold ``delta`` on log residuals). The nonlinear forms start from a
    grid (``grid``: internal name → values, e.g. ``{"logE": [...], "logA": [...], "logB": [...],
    "alpha": [...], "beta": [...]}``, all combinations; default a data-scaled grid) and keep
    the best converged start; ``bounds``: internal name → (low, high).

    bootstrap: number of resamples (0 = none), ``bootstrap_method`` "pairs" or "residuals",
    seeded by ``seed``; intervals are ``ci_method`` "percentile" or "bca" (BCa needs the
    jackknife, n leave-one-out refits, run when ``jackknife`` is True; the default None runs
    it only for BCa; ``conf_int(method="bca")`` on a fit without it says so). ``variable``:
    "N", "D", "S" or "C" (compute) (what x is), used for the quantization-model reading of a
    one-variable exponent.
    """
    spec, loss, bootstrap = _check_options(form, x2, loss, delta, bootstrap_method, ci_method,
                                           level, bootstrap, variable, smooth, breaks)
    spec = _constrained(spec, tie, fix)
    if ci_method == "bca" and jackknife is False:
        raise InputError("ci_method='bca' needs the jackknife; leave jackknife at None or True")
    if form == "power" and (grid is not None or bounds is not None):
        raise InputError("grid and bounds: the power form is a closed-form OLS/WLS fit with "
                         "neither; use form 'offset' or 'broken' for a bounded search")
    x, y, x2, sigma = check_xy(x, y, x2=x2, sigma=sigma, n_params=spec.n_free)
    _refuse_degenerate(x, y, x2)
    n, p = len(x), spec.n_free
    X = (np.log(x),) if x2 is None else (np.log(x), np.log(x2))
    logy = np.log(y)
    scale = np.ones(n) if sigma is None else y / sigma
    lower, upper = _bounds(form, X, logy, bounds, spec)
    opts = dict(loss=loss, delta=delta, lower=lower, upper=upper, maxiter=maxiter)

    if form == "power":
        theta, cov, llf, info = _power_wls(X[0], logy, scale)
        conv = True
    else:
        theta, cov, llf, info, conv = _fit_nonlinear(spec, X, logy, scale, grid, opts)
        theta = spec.tied(theta)
    obj_value = float(objective(spec, theta, X, logy, scale, None, loss, delta)[0])
    params = {k: float(v) for k, v in to_public(spec, theta).items()}
    cov = _singular_as_nan(cov, spec, _exact(obj_value, logy))
    stderr = _stderr(spec, params, cov)
    aic, bic = -2 * llf + 2 * p, -2 * llf + p * np.log(n)

    seed_repr = seed if seed is None or isinstance(seed, (int, np.integer)) else repr(seed)
    config = dict(form=form, bootstrap=bootstrap, level=level, seed=seed_repr,
                  bootstrap_method=bootstrap_method, ci_method=ci_method, loss=loss,
                  delta=delta if loss == "huber" else None, variable=variable,
                  smooth=smooth if form == "broken" else None,
                  breaks=breaks if form == "bnsl" else None, **_constraint_config(tie, fix),
                  grid=None if grid is None else {k: list(map(float, v)) for k, v in grid.items()},
                  weighted=sigma is not None)
    boot = jack = None
    n_failed = 0
    if bootstrap > 0:           # the jackknife by default only for BCa
        jackknife = ci_method == "bca" if jackknife is None else jackknife
        boot, jack, n_failed = _resample(spec, theta, X, logy, scale, bootstrap,
                                         bootstrap_method, seed, jackknife, opts)
    result = FitResult(form=form, x=x, y=y, x2=x2, sigma=sigma, params=params, stderr=stderr,
                       theta=np.asarray(theta, dtype=float), cov_theta=cov, aic=float(aic),
                       bic=float(bic), llf=float(llf), objective=obj_value, n_points=n,
                       loss=loss, converged=conv, n_failed_bootstrap=n_failed,
                       bootstrap_params=boot, jackknife_params=jack, level=level,
                       ci_method=ci_method, config=config, info=info)
    result.warnings.extend(_warnings(result, X, lower, upper, spec))
    result.warnings.extend(honesty_warnings(result, lower, upper))
    return result


def power_law(x, y, **options) -> FitResult:
    """``fit("power", x, y, ...)``: L = A x^-alpha by OLS (WLS with ``sigma``) on log-log axes."""
    return fit("power", x, y, **options)


def offset_power_law(x, y, **options) -> FitResult:
    """``fit("offset", x, y, ...)``: L = E + A x^-alpha with an irreducible loss E."""
    return fit("offset", x, y, **options)


# ---------------------------------------------------------------------------- internals
def _constrained(spec, tie, fix):
    """The form with its tied and fixed parameters (:func:`fit.forms.constrain`)."""
    if spec.name == "power" and (tie or fix):
        raise InputError("tie/fix: the power form is a closed-form OLS fit; tie or fix "
                         "parameters of the offset, joint or bnsl forms")
    return constrain(spec, tie, fix)


def _constraint_config(tie, fix) -> dict:
    """tie and fix as saved in a fit's config (what ``fit.fit`` takes back)."""
    groups, fixed = parse_constraints(tie, fix)
    return {"tie": ["=".join(g) for g in groups] or None, "fix": fixed or None}


def _fit_nonlinear(spec, X, logy, scale, grid, opts, fast=True):
    """The linearised start and one local solve (``fit.single``) where the form has one and
    it passes its checks; else all grid starts as one batch, keeping the best converged one.
    Returns (theta, cov, llf, info, converged)."""
    found = fast_fit(spec, X, logy, scale, opts) if fast and grid is None else None
    if found is not None:
        theta, info, r, J = found
        cov = _covariance_of(J, r, opts["loss"], opts["delta"])
        return theta, cov, _gaussian_llf(r, scale), info, True
    starts = _starts(spec.name, X, logy, grid, spec)
    sol = solve_batch(spec, starts, X, logy, scale=scale, **opts)
    obj = np.where(sol.converged, sol.objective, np.inf)
    if not np.any(np.isfinite(obj)):
        obj = np.where(np.isfinite(sol.objective), sol.objective, np.inf)
    best = int(np.argmin(obj))
    theta = sol.theta[best]
    cov = _covariance(spec, theta, X, logy, scale, opts["loss"], opts["delta"])
    r = (logy - spec.model(theta[None], X)[0][0]) * scale
    info = {"start": "grid", "n_starts": len(starts),
            "n_starts_converged": int(sol.converged.sum()),
            "best_start": starts[best].tolist(), "theta": theta.tolist()}
    return theta, cov, _gaussian_llf(r, scale), info, bool(sol.converged[best])


def _check_options(form, x2, loss, delta, bootstrap_method, ci_method, level, bootstrap,
                   variable, smooth, breaks=1):
    """Refuse bad options in one line; returns (spec, loss, bootstrap)."""
    if form not in FORMS:
        raise InputError(f"form must be one of {', '.join(FORMS)}; got {form!r}")
    joint = form in JOINT_FORMS
    if joint and x2 is None:
        raise InputError(f"x2: form {form!r} is a joint law L(N, D) and needs x2 (D)")
    if not joint and x2 is not None:
        raise InputError(f"x2 given but form {form!r} has one variable; use chinchilla or max")
    spec = form_spec(form, smooth=smooth, breaks=breaks)
    loss = spec.default_loss if loss is None else loss
    if loss not in ("l2", "huber"):
        raise InputError(f"loss must be 'l2' or 'huber', got {loss!r}")
    if form == "power" and loss != "l2":
        raise InputError("loss: the power form is an OLS/WLS fit; use loss='l2'")
    if not delta > 0:
        raise InputError(f"delta must be positive, got {delta!r}")
    if bootstrap_method not in BOOTSTRAP_METHODS:
        raise InputError(f"bootstrap_method must be one of {BOOTSTRAP_METHODS}, "
                         f"got {bootstrap_method!r}")
    if ci_method not in CI_METHODS:
        raise InputError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    check_level(level)
    bootstrap = check_resamples(bootstrap)
    if variable not in (None, "N", "D", "S", "C"):
        raise InputError(f"variable must be 'N', 'D', 'S' or 'C', got {variable!r}")
    return spec, loss, bootstrap


def _resample(spec, theta, X, logy, scale, bootstrap, method, seed, jackknife, opts):
    """Bootstrap refits (and the jackknife): (bootstrap params, jackknife params, n failed)."""
    n = len(logy)
    rng = np.random.default_rng(seed)
    if method == "pairs":
        W, Y = pair_weights(n, bootstrap, rng), logy
    else:
        pred = spec.model(theta[None], X)[0][0]
        r = (logy - pred) * scale
        r = r - r.mean()
        W, Y = None, pred + r[residual_indices(n, bootstrap, rng)] / scale
    # a refit on fewer distinct sizes than the law has parameters is undetermined: failed
    need = spec.n_free if len(X) == 1 else 2
    th, ok = _refit(spec, theta, X, Y, scale, W, bootstrap, opts)
    if W is not None:
        ok &= _distinct_sizes(X, W) >= need
    boot = dict(to_public(spec, th[ok]))
    jack = None
    if jackknife:
        Wj = jackknife_weights(n)
        thj, okj = _refit(spec, theta, X, logy, scale, Wj, n, opts)
        thj[~(okj & (_distinct_sizes(X, Wj) >= need))] = np.nan
        jack = to_public(spec, thj)
    return boot, jack, int(bootstrap - ok.sum())


def _refuse_degenerate(x, y, x2):
    """Data no scaling law can be read from: a constant loss, or the loss column equal to a
    size column (the same column given twice fits alpha = -1 exactly)."""
    if y.min() == y.max():
        raise InputError(f"y: every loss equals {y[0]:g}; a constant loss has no scaling "
                         "to fit")
    for name, u in (("x", x), ("x2", x2)):
        if u is not None and (u == y).all():
            raise InputError(f"y equals {name} in every row (the same column twice?); "
                             "give the loss as y")


def _distinct_sizes(X, W) -> np.ndarray:
    """The fewest distinct values any variable of X takes among each resample's points
    (rows of the count weights W)."""
    rows, cols = np.nonzero(W > 0)
    counts = []
    for u in X:
        levels, level_of = np.unique(u, return_inverse=True)
        present = np.zeros((W.shape[0], levels.size), dtype=bool)
        present[rows, level_of[cols]] = True
        counts.append(present.sum(1))
    return np.min(counts, axis=0)


def _power_wls(u, logy, scale):
    """log y = log A - alpha log x by least squares, weighted by (y/sigma)² when given:
    the estimates, covariance s² (XᵀWX)⁻¹, log-likelihood and R² that statsmodels' OLS/WLS
    report (tests/test_fit_forms.py holds them to it), without importing statsmodels."""
    design = np.column_stack([np.ones_like(u), -u])
    theta, *_ = np.linalg.lstsq(design * scale[:, None], logy * scale, rcond=None)
    r = (logy - design @ theta) * scale
    dof = max(len(u) - 2, 1)
    try:
        cov = (r @ r / dof) * np.linalg.inv((design * scale[:, None] ** 2).T @ design)
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.nan)
    w = scale ** 2
    centred = logy - (w @ logy) / w.sum()
    tss = float(w @ (centred * centred))
    rsq = 1.0 - float(r @ r) / tss if tss > 0 else np.nan
    weighted = not np.all(scale == 1)
    return theta, cov, _gaussian_llf(r, scale), {"least_squares": "WLS" if weighted else "OLS",
                                                 "rsquared": rsq}


def _wls_batch(u, Y, W, scale):
    """Closed-form weighted least squares of log y on (1, -log x) for every resample."""
    Wt = (np.ones_like(Y) if W is None else W) * scale ** 2
    Y = np.broadcast_to(Y, Wt.shape)
    s0, s1, s2 = Wt.sum(1), (Wt * u).sum(1), (Wt * u * u).sum(1)
    t0, t1 = (Wt * Y).sum(1), (Wt * Y * u).sum(1)
    det = s0 * s2 - s1 * s1
    ok = det > 1e-12 * np.maximum(s0 * s2, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (s0 * t1 - s1 * t0) / det            # d log y / d log x
        icpt = (t0 - slope * s1) / s0
    theta = np.column_stack([icpt, -slope])
    return theta, ok & np.all(np.isfinite(theta), axis=1)


def _refit(spec, theta, X, Y, scale, W, count, opts):
    """Refit ``count`` weighted/resampled problems at once, warm-started at ``theta``."""
    if spec.name == "power":
        return _wls_batch(X[0], np.atleast_2d(Y), W, scale)
    # chunks of at most ~2e6 residuals keep the batched Jacobians small (B x n x p)
    n = len(X[0])
    step = max(1, int(2e6 // n))
    Y = np.atleast_2d(Y)
    thetas, oks = [], []
    for lo in range(0, count, step):
        hi = min(count, lo + step)
        sol = solve_batch(spec, np.tile(theta, (hi - lo, 1)), X,
                          Y if Y.shape[0] == 1 else Y[lo:hi], scale=scale,
                          weights=None if W is None else W[lo:hi], **opts)
        thetas.append(sol.theta)
        oks.append(sol.converged)
    return np.concatenate(thetas), np.concatenate(oks)


def _gaussian_llf(r, scale):
    """Gaussian log-likelihood of the (scaled) log residuals, as statsmodels' OLS/WLS."""
    n = len(r)
    rss = max(float(np.sum(r * r)), 1e-300)
    return -0.5 * n * (np.log(2 * np.pi * rss / n) + 1) + float(np.sum(np.log(scale)))


def _covariance(spec, theta, X, logy, scale, loss, delta):
    """Asymptotic covariance of theta: s² (JᵀJ)⁻¹ (least squares) or, for the Huber loss,
    Huber's (1981, §7.6) [Σψ²/(n-p)] / [mean ψ']² (JᵀJ)⁻¹ (rough: prefer the bootstrap)."""
    pred, J = spec.model(theta[None], X)
    J = J[0][:, spec.free] * scale[:, None]        # the free parameters' columns
    M = spec.free_map                              # tied and fixed: from the free ones
    return M @ _covariance_of(J, (logy - pred[0]) * scale, loss, delta) @ M.T


def _covariance_of(J, r, loss, delta):
    """:func:`_covariance` of the free parameters from the scaled Jacobian J (n, p) of their
    columns and the residuals r at the optimum."""
    n, p = J.shape
    dof = max(n - p, 1)
    if loss == "l2":
        s2 = np.sum(r * r) / dof
    else:
        # Huber's (1981) asymptotic form; the p residuals the fit interpolates are not
        # counted among those inside ±delta (they sit there by construction).
        psi = np.clip(r, -delta, delta)
        inside = max(int(np.sum(np.abs(r) <= delta)) - p, 1) / dof
        s2 = np.sum(psi * psi) / dof / inside ** 2
    try:
        return s2 * np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        return np.full((p, p), np.nan)


def _bounds(form, X, logy, user, spec):
    """Default bounds on theta (exponents, log E, break point), overridden by ``user``."""
    p = len(spec.internal)
    lo, hi = np.full(p, -np.inf), np.full(p, np.inf)
    for i, name in enumerate(spec.internal):
        if name in ("alpha", "beta"):
            lo[i], hi[i] = (-10.0, 10.0) if form in ("broken", "power", "bnsl") else (0.0, 10.0)
        elif name == "alpha2" or (name[0] == "c" and name[1:].isdigit()):
            lo[i], hi[i] = -10.0, 10.0
        elif name == "logE":
            lo[i], hi[i] = logy.min() - 50.0, logy.max()
        elif name == "log_x_break" or name.startswith("log_d"):
            lo[i], hi[i] = X[0].min(), X[0].max()
        elif name.startswith("log_f"):
            lo[i], hi[i] = np.log(1e-2), np.log(np.ptp(X[0]))
    for name, (a, b) in (user or {}).items():
        if name not in spec.internal:
            raise InputError(f"bounds: unknown parameter {name!r} (one of {spec.internal})")
        i = spec.internal.index(name)
        lo[i], hi[i] = a, b
    return lo, hi


def _starts(form, X, logy, grid, spec):
    """Starting points: the user's grid (all combinations) or a grid scaled to the data."""
    if form == "bnsl" and grid is None:
        from fit.forms import bnsl_starts
        return bnsl_starts(X[0], logy, (len(spec.internal) - 3) // 3)
    if grid is not None:
        missing = [k for k in spec.internal if k not in grid]
        if missing:
            raise InputError(f"grid: give values for {', '.join(spec.internal)} "
                             f"(missing {', '.join(missing)})")
        return np.array(list(itertools.product(*(np.atleast_1d(grid[k]).astype(float)
                                                 for k in spec.internal))))
    u = X[0]
    y = np.exp(logy)
    ymin, ymed, umed = y.min(), np.median(y), np.median(u)
    if form == "offset":
        rows = []
        for fe, al in itertools.product((1e-4, 0.3, 0.6, 0.9), (0.05,) + START_EXPONENTS):
            E = fe * ymin
            rows.append((np.log(E), np.log(ymed - E) + al * umed, al))
        return np.array(rows)
    if form == "broken":
        rows = []
        for q in np.linspace(0.15, 0.85, 8):
            ub = np.quantile(u, q)
            left, right = u <= ub, u > ub
            if left.sum() < 2 or right.sum() < 2 or np.ptp(u[left]) == 0 or np.ptp(u[right]) == 0:
                continue
            s1, c1 = np.polyfit(u[left], logy[left], 1)
            s2, _ = np.polyfit(u[right], logy[right], 1)
            rows.append((c1, -s1, -s2, ub))
        s, c = np.polyfit(u, logy, 1)
        rows.append((c, -s, -s, umed))
        return np.array(rows)
    vmed = np.median(X[1])
    rows = []
    for fe, al, be in itertools.product((1e-3, 0.5, 0.9), START_EXPONENTS, START_EXPONENTS):
        E = fe * ymin
        half = np.log((ymed - E) / 2)
        rows.append((np.log(E), half + al * umed, half + be * vmed, al, be))
    return np.array(rows)


def _warnings(res, X, lower, upper, spec):
    """Conditions that do not stop a fit but limit what it can say."""
    out = []
    names = ("x", "x2")
    for name, u in zip(names, X):
        decades = np.ptp(u) / np.log(10)
        if decades < MIN_DECADES:
            out.append(f"{name} spans only {decades:.2g} decades (< {MIN_DECADES:g}); "
                       f"the exponent is poorly determined")
    if res.n_points < FEW_POINTS:
        out.append(f"only {res.n_points} points; intervals rest on few points")
    if not res.converged:
        out.append("the fit did not converge from any starting point")
    if not np.all(np.isfinite(np.diag(res.cov_theta))):
        out.append("the covariance is singular (standard errors not finite or not "
                   "positive): the data do not pin down every parameter")
    out.extend(_numeric_warnings(res, spec))
    for i, name in enumerate(spec.internal):
        if i in spec.free:                  # fixed and tied ones are not fitted
            t = res.theta[i]
            if np.isfinite(lower[i]) and abs(t - lower[i]) < 1e-6 * (1 + abs(t)) or \
                    np.isfinite(upper[i]) and abs(t - upper[i]) < 1e-6 * (1 + abs(t)):
                pub = spec.public[i]
                out.append(f"{pub} sits on its bound ({res.params[pub]:.4g}); "
                           f"the form may not suit the data")
    if res.n_bootstrap and res.bootstrap_params is not None:
        out.extend(_interval_warnings(res))
    if res.n_bootstrap and res.n_failed_bootstrap > 0.05 * res.n_bootstrap:
        out.append(f"{res.n_failed_bootstrap} of {res.n_bootstrap} bootstrap refits failed; "
                   f"the intervals describe the rest")
    return out


def _numeric_warnings(res, spec):
    """An exact fit (zero residuals: intervals of zero width) and public parameters that
    float64 cannot hold (exp of the fitted log beyond ±709: a matter of units)."""
    out = []
    if _exact(res.objective, np.log(res.y)):
        out.append("the law passes through every point (zero residuals): standard errors "
                   "and intervals are zero, not a measure of uncertainty")
    for i, pub in enumerate(spec.public):
        value = res.params[pub]
        if pub in spec.log_params and np.isfinite(res.theta[i]) and \
                (value == 0 or not np.isfinite(value)):
            out.append(f"{pub} = exp({res.theta[i]:.6g}) is outside float64's range; the "
                       f"exponents are unaffected (express x or y in other units to read {pub})")
    return out


def _stderr(spec, params, cov) -> dict:
    """Public name → standard error (delta method, SE(exp t) = exp(t) SE(t), for the
    parameters fitted as logs)."""
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return {pub: float(params[pub] * se[i] if pub in spec.log_params else se[i])
            for i, pub in enumerate(spec.public)}


def _exact(objective, logy) -> bool:
    """Whether the law passes through every point (the objective is zero to rounding)."""
    return objective <= 1e-24 * len(logy) * (1.0 + np.max(np.abs(logy))) ** 2


def _singular_as_nan(cov, spec, exact):
    """``cov`` with the rows and columns of free parameters whose variance is not positive
    set to NaN: inverting a (numerically) singular JᵀJ can return zero or negative variances,
    which would print as a standard error of 0 and a zero-width interval. Fixed parameters
    (variance 0 by construction) and an exact fit (zero residuals, warned apart) keep theirs."""
    var = np.diag(cov)
    bad = np.zeros(len(var), dtype=bool)
    bad[spec.free] = ~(var[spec.free] > 0)
    if exact or not bad.any():
        return cov
    cov = np.array(cov, dtype=float)
    affected = spec.free_map @ bad[spec.free].astype(float) > 0    # with those tied to them
    cov[affected, :] = np.nan
    cov[:, affected] = np.nan
    return cov


def _interval_warnings(res):
    """A bootstrap interval that excludes its own estimate: too few resamples (BCa's
    corrections rest on the tails of the replicates) or a strongly biased statistic."""
    out = []
    for name, (lo, hi) in res._bounds(res.level).items():
        value = res.params[name]
        if np.isfinite(lo) and np.isfinite(hi) and not lo <= value <= hi:
            out.append(f"the {res.ci_method} interval of {name} [{lo:.4g}, {hi:.4g}] excludes "
                       f"the estimate {value:.4g}: too few resamples ({res.n_bootstrap}) or a "
                       "biased statistic")
    return out
