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
bnsl          E + A x^-alpha prod_i (1 + (x/d_i)^(1/f_i))  (log E, log A, alpha,
              ^(-c_i f_i)                                   [c_i, log d_i, log f_i] per break)
============  ===========================================  =================================

``bnsl`` is the broken neural scaling law of Caballero et al. (2023, eq. 1) with its offset E
and one or more breaks: at break i (location d_i, sharpness f_i in ln x) the exponent changes
by c_i, so far beyond the last break the loss falls as x^-(alpha + sum c_i). It is evaluated in
log space (softplus and log-sum-exp), so no power of x is ever formed and nothing overflows.
``broken`` is the older one-break law without offset and with a fixed sharpness ``smooth``;
it is kept for the fits that used it, and ``bnsl`` supersedes it.

A law with parameters tied (``alpha = beta``) or fixed (``E = 1.69``) is the same form with a
map from its free parameters to all of them (:func:`constrain`): the model sets the fixed and
tied values itself and its Jacobian has zero columns for them, so the optimiser leaves them
alone and the bootstrap, intervals and prediction work unchanged on the full parameter vector.

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

FORMS = ("power", "offset", "broken", "chinchilla", "max", "bnsl")
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
    #: d theta / d theta of the constraints (p, p): column k is zero unless parameter k is
    #: free, row i says which free parameter i follows (none: fixed, at ``offset[i]``);
    #: None when every parameter is free (see :func:`constrain`)
    chain: np.ndarray | None = None
    offset: np.ndarray | None = None

    @property
    def free(self) -> np.ndarray:
        """Indices of the parameters fitted (neither fixed nor tied to another)."""
        p = len(self.internal)
        return np.arange(p) if self.chain is None else np.flatnonzero(self.chain.any(axis=0))

    @property
    def n_free(self) -> int:
        return len(self.free)

    @property
    def free_map(self) -> np.ndarray:
        """(p, r): theta = free_map @ theta[free] + offset."""
        p = len(self.internal)
        return np.eye(p) if self.chain is None else self.chain[:, self.free]

    def tied(self, theta):
        """``theta`` (..., p) with the fixed and tied entries set to their values."""
        theta = np.asarray(theta, dtype=float)
        return theta if self.chain is None else theta @ self.chain.T + self.offset


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


def _bnsl(theta, X, breaks):
    """log(E + exp z), z = log A - alpha u - sum_i c_i f_i softplus((u - log d_i)/f_i)."""
    u = X[0]
    e, a, alpha = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
    z = a - alpha * u
    dz = [np.ones_like(z), -np.broadcast_to(u, z.shape)]
    for i in range(breaks):
        c, ld, lf = (theta[:, 3 + 3 * i + j:4 + 3 * i + j] for j in range(3))
        f = np.exp(lf)
        t = (u - ld) / f
        sp = np.logaddexp(0.0, t)
        sig = 0.5 * (1.0 + np.tanh(0.5 * t))
        z = z - c * f * sp
        # d/df [f sp(t)] = sp(t) - t sig(t); the log-sum-exp form keeps it finite
        dz += [-f * sp, c * sig, -c * f * (sp - t * sig)]
    pred, we, wz = _lse2(np.broadcast_to(e, z.shape), z)
    jac = np.stack([we] + [wz * d for d in dz], axis=-1)
    return pred, jac


def bnsl_names(breaks: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(public, internal) parameter names of a ``bnsl`` law with ``breaks`` breaks."""
    public, internal = ["E", "A", "alpha"], ["logE", "logA", "alpha"]
    for i in range(1, breaks + 1):
        public += [f"c{i}", f"d{i}", f"f{i}"]
        internal += [f"c{i}", f"log_d{i}", f"log_f{i}"]
    return tuple(public), tuple(internal)


def form_spec(name: str, smooth: float = 0.1, breaks: int = 1) -> FormSpec:
    """The :class:`FormSpec` of ``name`` (``smooth``: width of the bend of ``broken``, in ln x;
    ``breaks``: the number of breaks of ``bnsl``)."""
    if name == "bnsl":
        if isinstance(breaks, bool) or not isinstance(breaks, (int, np.integer)) \
                or not 1 <= breaks <= 5:
            raise InputError(f"breaks must be an integer from 1 to 5, got {breaks!r}")
        public, internal = bnsl_names(int(breaks))
        logs = ("E", "A") + tuple(p for p in public if p[0] in "df")
        return FormSpec(name, public, internal, logs,
                        lambda th, X: _bnsl(th, X, int(breaks)), "l2")
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
    """Internal parameters (..., p) → public name → value (exp of the log ones), the fixed
    and tied ones set by the constraints."""
    theta = spec.tied(theta)
    with np.errstate(over="ignore", under="ignore"):   # a runaway prefactor is +inf, said as such
        return {pub: (np.exp(theta[..., i]) if pub in spec.log_params else theta[..., i])
                for i, pub in enumerate(spec.public)}


def asymptotic_exponent(form: str) -> str:
    """The name of a one-variable form's large-x exponent (``alpha`` but for ``broken`` and
    ``bnsl``, whose exponent changes at their breaks)."""
    return {"broken": "alpha2", "bnsl": "alpha_final"}.get(form, "alpha")


def to_internal(spec: FormSpec, params) -> np.ndarray:
    """Public name → value (scalars, or arrays of draws) → internal parameters (..., p):
    the inverse of :func:`to_public`."""
    return np.stack([np.log(np.asarray(params[k], float)) if k in spec.log_params
                     else np.asarray(params[k], float) for k in spec.public], axis=-1)


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


def parse_constraints(tie=None, fix=None) -> tuple[list[tuple[str, ...]], dict[str, float]]:
    """``tie`` and ``fix`` as (groups of tied public names, name → fixed value).

    ``tie``: "alpha=beta" (or "A=B=...", several in a list), or a mapping name → the name it
    equals; ``fix``: a mapping name → value, or "E=1.69" strings.
    """
    if isinstance(tie, str):
        tie = [tie]
    if isinstance(tie, dict):
        tie = [f"{a}={b}" for a, b in tie.items()]
    groups = []
    for text in tie or ():
        names = tuple(n.strip() for n in str(text).split("="))
        if len(names) < 2 or not all(names) or len(set(names)) < len(names):
            raise InputError(f"tie: write 'alpha=beta' (two or more names), got {text!r}")
        groups.append(names)
    if isinstance(fix, str):
        fix = [fix]
    if fix is not None and not isinstance(fix, dict):
        pairs = [str(t).split("=") for t in fix]
        if any(len(p) != 2 for p in pairs):
            raise InputError(f"fix: write 'E=1.69', got {fix!r}")
        fix = {k.strip(): v.strip() for k, v in pairs}
    fixed = {}
    for name, value in (fix or {}).items():
        try:
            fixed[name] = float(value)
        except (TypeError, ValueError):
            raise InputError(f"fix: {name}={value!r} is not a number") from None
    return groups, fixed


def constrain(spec: FormSpec, tie=None, fix=None) -> FormSpec:
    """``spec`` with parameters tied (``tie="alpha=beta"``: one value for both, the first
    name's) or fixed (``fix={"E": 1.69}``, public values); ``spec`` itself without either."""
    groups, fixed = parse_constraints(tie, fix)
    if not groups and not fixed:
        return spec
    public = list(spec.public)
    for name in [n for g in groups for n in g] + list(fixed):
        if name not in public:
            raise InputError(f"tie/fix: {spec.name!r} has no parameter {name!r} "
                             f"(its parameters: {', '.join(public)})")
    tied_names = [n for g in groups for n in g]
    if len(set(tied_names)) < len(tied_names) or set(tied_names) & set(fixed):
        raise InputError("tie/fix: name each parameter in at most one tie or fix")
    p = len(public)
    leader_of = list(range(p))
    for g in groups:
        kinds = {n in spec.log_params for n in g}
        if len(kinds) > 1:
            raise InputError(f"tie {'='.join(g)}: a prefactor cannot equal an exponent")
        for n in g[1:]:
            leader_of[public.index(n)] = public.index(g[0])
    offset = np.zeros(p)
    for name, value in fixed.items():
        i = public.index(name)
        if name in spec.log_params and not value > 0:
            raise InputError(f"fix: {name} must be positive, got {value:g}")
        offset[i] = np.log(value) if name in spec.log_params else value
        leader_of[i] = -1
    chain = np.array([[1.0 if leader_of[i] == k else 0.0 for k in range(p)] for i in range(p)])
    base = spec.model
    out = FormSpec(spec.name, spec.public, spec.internal, spec.log_params, None,
                   spec.default_loss, chain, offset)

    def model(theta, X):
        pred, jac = base(out.tied(theta), X)
        return pred, jac @ chain
    object.__setattr__(out, "model", model)
    return out


def fitted_spec(form: str, options: dict) -> FormSpec:
    """The form ``fit.fit(form, ..., **options)`` fits: its ``smooth``, ``breaks``, ``tie``
    and ``fix`` applied (what the point-count checks count parameters of)."""
    return constrain(form_spec(form, smooth=options.get("smooth", 0.1),
                               breaks=options.get("breaks", 1)),
                     options.get("tie"), options.get("fix"))


def constraint_text(spec: FormSpec, tie=None, fix=None) -> str:
    """The constraints in words: "beta = alpha (tied); E = 1.69 (fixed)" ("" without)."""
    groups, fixed = parse_constraints(tie, fix)
    parts = [" = ".join(g[1:] + g[:1]) + " (tied)" for g in groups]
    parts += [f"{k} = {v:g} (fixed)" for k, v in fixed.items()]
    return "; ".join(parts)


def bnsl_starts(u, logy, breaks: int) -> np.ndarray:
    """Starting points of a ``bnsl`` law: E at fractions of the smallest loss; the breaks at
    evenly spaced quantiles of ln x (three placements); the exponents from least-squares
    slopes of log(y − E) between the breaks; two sharpnesses (an eighth and a half of the
    range of ln x per segment)."""
    y = np.exp(logy)
    span = np.ptp(u)
    rows = []
    for fe in (1e-3, 0.5, 0.9):
        z = np.log(y - fe * y.min())
        for shift in (-0.5, 0.0, 0.5):
            cuts = np.quantile(u, (np.arange(1, breaks + 1) + shift / 2) / (breaks + 1))
            slopes, icpt = _segment_slopes(u, z, cuts)
            changes = -np.diff(slopes)
            for width in (span / (8 * (breaks + 1)), span / (2 * (breaks + 1))):
                row = [np.log(fe * y.min()), icpt, -slopes[0]]
                for c, d in zip(changes, cuts):
                    row += [c, d, np.log(width)]
                rows.append(row)
    return np.array(rows)


def _segment_slopes(u, z, cuts):
    """Least-squares slopes of z on u between consecutive cuts (a segment with fewer than
    two distinct u takes its neighbour's) and the intercept of the first segment."""
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    slopes = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (u >= lo) & (u <= hi)
        if np.unique(u[inside]).size >= 2:
            slopes.append(np.polyfit(u[inside], z[inside], 1)[0])
        else:
            slopes.append(slopes[-1] if slopes else np.polyfit(u, z, 1)[0])
    first = u <= cuts[0] if np.any(u <= cuts[0]) else np.ones(u.size, bool)
    return np.array(slopes), float(np.mean(z[first] - slopes[0] * u[first]))
