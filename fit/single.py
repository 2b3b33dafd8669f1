"""One fit without the starting grid: a linearised start and one local solve.

The offset law ``log y = log(E + A x^-alpha)`` is linear in ``(log A, alpha)`` once E is
known: ``log(y - E) = log A - alpha log x``. So a short scan over E (a fraction of the
smallest loss), each point with ``(log A, alpha)`` from that weighted log-log regression,
gives a start in the right basin for the price of a few array operations; MINPACK's
Levenberg–Marquardt (``scipy.optimize.leastsq``, the solver behind ``curve_fit``) with the
analytic Jacobian then polishes it. The result is kept only if it passes the checks a grid
optimum passes (MINPACK reports convergence, every parameter finite and strictly inside its
bounds, the normal matrix positive definite, the gradient negligible); otherwise
:func:`fast_fit` returns None and ``fit.fit`` runs the grid. The tests hold the two paths to
the same objective (tests/test_fit_single.py).
"""
from __future__ import annotations

import numpy as np

#: fractions of the smallest loss scanned for E (0 is the pure power law)
E_FRACTIONS = np.concatenate([[0.0], np.linspace(0.05, 0.95, 19), [0.98, 0.99, 0.995, 0.999]])
#: forms with a linearised start
FAST_FORMS = ("offset",)


def fast_fit(spec, X, logy, scale, opts):
    """The optimum of ``spec`` from a linearised start, or None when the start fails its
    checks (the caller then searches the grid). Returns ``(theta, info, r, J)`` with the
    scaled residuals r and the Jacobian J (n, p) of the log model at the optimum."""
    if spec.name not in FAST_FORMS or opts["loss"] != "l2":
        return None
    lower, upper = opts["lower"], opts["upper"]
    start = _offset_start(spec, X, logy, scale, lower, upper)
    if start is None:
        return None
    model = _offset_residuals(X[0], logy, scale)
    theta, ok = _polish(model, start, opts["maxiter"])
    if not ok or not _passes_checks(model, theta, lower, upper):
        return None
    info = {"start": "linearised", "n_starts": 1, "n_starts_converged": 1,
            "best_start": start.tolist(), "theta": theta.tolist()}
    return theta, info, model(theta)["r"], -model(theta)["J"].T


def _offset_start(spec, X, logy, scale, lower, upper):
    """The best of the E scan: for each E, (log A, alpha) from the weighted regression of
    log(y - E) on log x; scored on the fitted objective itself. (Every E is below the
    smallest loss, so every logarithm is finite.)"""
    u = X[0]
    y = np.exp(logy)
    E = E_FRACTIONS * y.min()
    z = np.log(y - E[:, None])                              # (m, n)
    w = scale * scale
    s0, s1, s2 = w.sum(), w @ u, w @ (u * u)
    t0, t1 = z @ w, z @ (w * u)
    slope = (s0 * t1 - s1 * t0) / (s0 * s2 - s1 * s1)
    starts = np.empty((E.size, 3))
    starts[:, 0] = np.log(np.maximum(E, np.finfo(float).tiny))    # E = 0 has no log
    starts[:, 1] = (t0 - slope * s1) / s0
    starts[:, 2] = -slope
    starts[:, 0] = np.maximum(starts[:, 0], lower[0] + 1.0)
    np.clip(starts, lower, upper, out=starts)
    pred = np.logaddexp(starts[:, :1], starts[:, 1:2] - starts[:, 2:] * u)
    r = (logy - pred) * scale
    obj = np.einsum("ij,ij->i", r, r)
    obj[~np.isfinite(obj)] = np.inf
    best = int(np.argmin(obj))
    return starts[best] if np.isfinite(obj[best]) else None


def _offset_residuals(u, logy, scale):
    """Residuals and Jacobian (rows: parameters, as MINPACK's ``col_deriv``) of the offset
    law on scaled log axes, evaluated once per point MINPACK visits."""
    last = {"key": None}

    def model(th):
        key = th.tobytes()
        if last["key"] != key:
            pred = np.logaddexp(th[0], th[1] - th[2] * u)
            J = np.empty((3, u.size))
            np.exp(th[0] - pred, out=J[0])           # d pred / d log E
            np.subtract(1.0, J[0], out=J[1])         # d pred / d log A
            J[1] *= scale
            J[0] *= -scale
            np.multiply(J[1], u, out=J[2])
            np.negative(J[1], out=J[1])
            last.update(key=key, r=(logy - pred) * scale, J=J)
        return last
    return model


def _polish(model, theta0, maxiter):
    """MINPACK Levenberg–Marquardt from ``theta0`` on the residuals of ``model``."""
    from scipy.optimize import leastsq

    theta, _, info, _, ier = leastsq(lambda th: model(th)["r"], theta0,
                                     Dfun=lambda th: model(th)["J"], col_deriv=True,
                                     full_output=True, ftol=1e-12, xtol=1e-12, gtol=0.0,
                                     maxfev=max(100, 20 * maxiter))
    return np.asarray(theta, dtype=float), ier in (1, 2, 3, 4)


def _passes_checks(model, theta, lower, upper):
    """Finite, strictly inside the bounds, a positive-definite normal matrix and a gradient
    that is negligible against the curvature: a regular interior local minimum."""
    if not np.all(np.isfinite(theta)):
        return False
    margin = 1e-6 * (1.0 + np.abs(theta))
    if np.any(theta - lower <= margin) or np.any(upper - theta <= margin):
        return False
    m = model(theta)
    J, r = m["J"], m["r"]
    H = J @ J.T
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return False
    # the Newton step the gradient still asks for, against the parameters' scale
    step = np.linalg.solve(H, J @ r)
    return bool(np.all(np.abs(step) <= 1e-7 * (1.0 + np.abs(theta))))
