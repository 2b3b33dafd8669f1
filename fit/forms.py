"""The fitting forms and one batched optimiser shared by all nonlinear forms.

Every form is fitted on log axes: the residual of point i is
``r_i = s_i * (log y_i - log f(x_i; theta))`` with ``s_i = y_i / sigma_i`` when per-point
errors are given (``sigma/y`` is the error of ``log y``) and ``s_i = 1`` otherwise. Fitting log
residuals makes the exponents invariant to the units of x and y.

Internal parameters (``theta``) are the log prefactors and the exponents:

============  ===========================================  =================================
form          model                                        theta
============  ===========================================  =================================
power         A x^-alpha                                   (log A, alpha)
offset        E + A x^-alpha                               (log E, log A, alpha)
broken        A x^-alpha, bending smoothly to x^-alpha2    (log A, alpha, alpha2, log x_break)
chinchilla    E + A N^-alpha + B D^-beta                   (log E, log A, log B, alpha, beta)
max           E + max(A N^-alpha, B D^-beta)               (log E, log A, log B, alpha, beta)
============  ===========================================  =================================

The ``max`` form is the quantization model's own joint form: the loss is set by whichever of
parameters or data is the bottleneck (``theory.expected_loss_ND``; Michaud et al. 2023, §3).
The ``chinchilla`` form is Hoffmann et al. (2022) approach 3, fitted as they did: Huber loss
on log residuals with the log-sum-exp parametrisation.

:func:`solve_batch` minimises ``sum_i w_bi * rho(r_bi)`` for a whole batch ``b`` of problems at
once (grid starts, bootstrap resamples, jackknife leave-one-outs): a Levenberg–Marquardt
iteration on iteratively reweighted Gauss–Newton normal equations, with analytic Jacobians,
vectorised over the batch, and a convergence flag per problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from common.errors import InputError

FORMS = ("power", "offset", "broken", "chinchilla", "max")
JOINT_FORMS = ("chinchilla", "max")


@dataclass(frozen=True)
class FormSpec:
    """One fitting form: its public and internal parameter names and its log model."""
    name: str
    public: tuple[str, ...]          # names in FitResult.params, in order
    internal: tuple[str, ...]        # names of theta
    log_params: tuple[str, ...]      # public names fitted as logs (public = exp(internal))
    model: Callable | None           # (theta (B,p), X) -> (log f (B,n), jacobian (B,n,p))
    default_loss: str


def _lse2(z1, z2):
    """log(exp z1 + exp z2) and the two softmax weights, stably."""
    m = np.maximum(z1, z2)
    e1, e2 = np.exp(z1 - m), np.exp(z2 - m)
    s = e1 + e2
    return m + np.log(s), e1 / s, e2 / s


def _power(theta, X):
    u = X[0]
    a, alpha = theta[:, 0:1], theta[:, 1:2]
    pred = a - alpha * u
    jac = np.stack([np.ones_like(pred), -np.broadcast_to(u, pred.shape)], axis=-1)
    return pred, jac


def _offset(theta, X):
    u = X[0]
    e, a, alpha = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
    z = a - alpha * u
    pred, we, wz = _lse2(np.broadcast_to(e, z.shape), z)
    jac = np.stack([we, wz, -wz * u], axis=-1)
    return pred, jac


def _broken(theta, X, smooth):
    """log A - alpha u - (alpha2 - alpha) * smooth * softplus((u - ub)/smooth)."""
    u = X[0]
    a, al, al2, ub = (theta[:, i:i + 1] for i in range(4))
    t = (u - ub) / smooth
    sp = np.logaddexp(0.0, t) * smooth             # smooth hinge max(u - ub, 0)
    sig = 0.5 * (1.0 + np.tanh(0.5 * t))           # its derivative in u, stable
    d = al2 - al
    pred = a - al * u - d * sp
    jac = np.stack([np.ones_like(pred), -u + sp, -sp + 0 * u, d * sig], axis=-1)
    return pred, jac


def _chinchilla(theta, X):
    u, v = X
    e, a, b, al, be = (theta[:, i:i + 1] for i in range(5))
    z1, z2 = a - al * u, b - be * v
    ee = np.broadcast_to(e, z1.shape)
    m = np.maximum(np.maximum(z1, z2), ee)
    x0, x1, x2 = np.exp(ee - m), np.exp(z1 - m), np.exp(z2 - m)
    s = x0 + x1 + x2
    w0, w1, w2 = x0 / s, x1 / s, x2 / s
    pred = m + np.log(s)
    jac = np.stack([w0, w1, w2, -w1 * u, -w2 * v], axis=-1)
    return pred, jac


def _max(theta, X):
    u, v = X
    e, a, b, al, be = (theta[:, i:i + 1] for i in range(5))
    z1, z2 = a - al * u, b - be * v
    first = z1 >= z2
    z = np.where(first, z1, z2)
    pred, we, wz = _lse2(np.broadcast_to(e, z.shape), z)
    w1, w2 = wz * first, wz * ~first
    jac = np.stack([we, w1, w2, -w1 * u, -w2 * v], axis=-1)
    return pred, jac


def form_spec(name: str, smooth: float = 0.1) -> FormSpec:
    """The :class:`FormSpec` of ``name`` (``smooth``: width of the bend of ``broken``, in ln x)."""
    if name == "power":
        return FormSpec(name, ("A", "alpha"), ("logA", "alpha"), ("A",), _power, "l2")
    if name == "offset":
        return FormSpec(name, ("E", "A", "alpha"), ("logE", "logA", "alpha"), ("E", "A"),
                        _offset, "l2")
    if name == "broken":
        if not smooth > 0:
            raise InputError(f"smooth must be positive, got {smooth!r}")
        return FormSpec(name, ("A", "alpha", "alpha2", "x_break"),
                        ("logA", "alpha", "alpha2", "log_x_break"), ("A", "x_break"),
                        lambda th, X: _broken(th, X, smooth), "l2")
    if name in JOINT_FORMS:
        return FormSpec(name, ("E", "A", "B", "alpha", "beta"),
                        ("logE", "logA", "logB", "alpha", "beta"), ("E", "A", "B"),
                        _chinchilla if name == "chinchilla" else _max, "huber")
    raise InputError(f"form must be one of {', '.join(FORMS)}; got {name!r}")


def to_public(spec: FormSpec, theta: np.ndarray) -> dict[str, np.ndarray]:
    """Internal parameters (..., p) → public name → value (exp of the log ones)."""
    theta = np.asarray(theta, dtype=float)
    with np.errstate(over="ignore", under="ignore"):   # beyond float64: fit.fit flags it
        return {pub: (np.exp(theta[..., i]) if pub in spec.log_params else theta[..., i])
                for i, pub in enumerate(spec.public)}


def huber(r, delta):
    """Huber's rho: r²/2 inside ±delta, delta(|r| - delta/2) outside."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def objective(spec: FormSpec, theta, X, logy, scale=1.0, weights=None, loss="l2", delta=1e-3):
    """The fitted objective sum_i w_i rho(r_i) for each row of theta (B,p) → (B,)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    pred, _ = spec.model(theta, X)
    r = (logy - pred) * scale
    rho = 0.5 * r * r if loss == "l2" else huber(r, delta)
    w = 1.0 if weights is None else weights
    return np.sum(w * rho, axis=-1)


@dataclass(frozen=True)
class BatchSolution:
    """Result of :func:`solve_batch`: one row per problem."""
    theta: np.ndarray       # (B, p)
    objective: np.ndarray   # (B,)
    converged: np.ndarray   # (B,) bool
    n_iter: int


def solve_batch(spec: FormSpec, theta0, X, logy, *, scale=1.0, weights=None, loss="l2",
                delta=1e-3, lower=None, upper=None, maxiter=500, ftol=1e-12, xtol=1e-9,
                gtol=1e-10) -> BatchSolution:
    """Minimise ``sum_i w_bi rho(s_i (logy_bi - log f(x_i; theta_b)))`` for every b at once.

    Levenberg–Marquardt on Gauss–Newton normal equations; for the Huber loss the normal
    equations are iteratively reweighted (weight ``min(1, delta/|r|)``, whose fixed point is
    the Huber optimum). Steps are accepted per problem only when the objective decreases;
    bounds are enforced by projection. A problem has converged when an accepted step changes
    the objective by less than ``ftol`` (relative) and theta by less than ``xtol``, or the
    gradient is below ``gtol`` (relative); problems that reach ``maxiter`` or go non-finite
    are reported as not converged.
    """
    theta = np.array(np.atleast_2d(theta0), dtype=float)
    B, p = theta.shape
    logy = np.broadcast_to(np.asarray(logy, dtype=float), (B, np.shape(X[0])[-1]))
    w = np.ones_like(logy) if weights is None else np.broadcast_to(weights, logy.shape)
    scale = np.broadcast_to(np.asarray(scale, dtype=float), logy.shape)
    lo = np.full(p, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    hi = np.full(p, np.inf) if upper is None else np.asarray(upper, dtype=float)
    theta = np.clip(theta, lo, hi)

    def evaluate(th, rows):
        pred, jac = spec.model(th, X)
        sc, ww = scale[rows], w[rows]
        r = (logy[rows] - pred) * sc
        if loss == "l2":
            f = np.sum(ww * 0.5 * r * r, axis=-1)
            omega = ww
        else:
            a = np.abs(r)
            f = np.sum(ww * np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)),
                       axis=-1)
            omega = ww * np.minimum(1.0, delta / np.maximum(a, 1e-300))
        return f, r, jac * sc[..., None], omega

    f, r, J, omega = evaluate(theta, slice(None))
    r, J, omega = np.array(r), np.array(J), np.array(omega)
    lam = np.full(B, 1e-3)
    converged = np.zeros(B, dtype=bool)
    active = np.isfinite(f)
    eye = np.eye(p)
    it = 0
    for it in range(1, maxiter + 1):
        idx = np.flatnonzero(active & ~converged)
        if idx.size == 0:
            break
        Ji, om, ri = J[idx], omega[idx], r[idx]
        JtW = np.swapaxes(Ji * om[..., None], 1, 2)
        H = JtW @ Ji
        g = (JtW @ ri[..., None])[..., 0]                  # minus the gradient
        gnorm = np.max(np.abs(g), axis=1)
        small_g = gnorm <= gtol * np.maximum(f[idx], 1e-300) + 1e-300
        diag = np.einsum("bpp->bp", H)
        damp = lam[idx, None, None] * (diag[:, :, None] * eye + 1e-12 * eye)
        try:
            step = np.linalg.solve(H + damp, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H[0] + damp[0], g[0], rcond=None)[0][None]
        trial = np.clip(theta[idx] + step, lo, hi)
        f_new, r_new, J_new, om_new = evaluate(trial, idx)
        ok = np.isfinite(f_new) & (f_new <= f[idx]) & np.all(np.isfinite(trial), axis=1)
        acc = idx[ok]
        dx = np.max(np.abs(trial[ok] - theta[acc]), axis=1)
        df = f[acc] - f_new[ok]
        theta[acc], r[acc], J[acc], omega[acc] = trial[ok], r_new[ok], J_new[ok], om_new[ok]
        tiny_f = df <= ftol * np.maximum(f[acc], 1e-300)
        f[acc] = f_new[ok]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
        rej = idx[~ok]
        lam[rej] *= 4.0
        converged[acc] |= (tiny_f & (dx <= xtol * (1.0 + np.max(np.abs(theta[acc]), axis=1))))
        converged[acc] |= f[acc] <= 1e-28
        converged[idx[small_g]] = True
        # a problem whose damping has exploded cannot move: stationary to machine precision
        stuck = rej[lam[rej] > 1e14]
        converged[stuck] = True
    converged &= np.all(np.isfinite(theta), axis=1) & np.isfinite(f)
    return BatchSolution(theta, f, converged, it)
