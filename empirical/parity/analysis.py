"""From run directories to scaling exponents, read against the quantization model, by two
methods: ours (``method="quanta"``, the default) and the paper's (``method="paper"``).

**Ours.** Per run (one α): ``N`` (final loss against parameters; theory α), ``S`` (loss
against steps of the widest network; theory α/(α+1)), ``D`` (loss against training-set size,
the minimum over training as in the paper, and the final loss beside it; theory α/(α+1)),
``convergence`` (step at which each subtask's loss first drops below a threshold, against
its frequency; theory slope −1) and ``learned_vs_D`` (subtasks learned against D; theory
slope 1/(α+1)). Each regime holds ``exponent``, ``conf_int`` (95 %, Wald/t on the log-log
OLS of :func:`fit.power_law`), ``window``, ``theory_exponent`` and ``method``. Several runs
with different α give ``alpha_sweep`` (the paper's Figure 10).

Losses are in nats; the fit window keeps points whose loss lies between ``window[0]`` and
``window[1]`` times ln 2 (the loss of chance guessing), i.e. off both plateaus; for ``N`` it
also drops widths still learning at the end (final loss more than ``STILL_LEARNING`` below
the loss at half the steps: step-limited, not capacity-limited), and for ``D`` and
``learned_vs_D`` the training sets whose minimum loss is at the last evaluation and still
learning by the same test (step-limited, not data-limited).

Finite number of subtasks. With n_tasks = K subtasks the Zipf law is cut at K, so the model's
loss is L = A·x^-e − ε_K with ε_K = ln 2 · Σ_{i≥K} (i+offset)^-(α+1) / Σ_{i<K} (i+offset)^-(α+1)
(unlearned subtasks cost ln 2): inside the window, close to the cutoff, the raw slope is far
steeper than the model's exponent (at K = 500, α = 0.1 a model-exact L(N) fits 0.51). The
loss fits (``N``, ``S``, ``D``) therefore add ε_K back before fitting, as ``simulate`` does,
and report the raw slope beside it (``exponent_raw``, ``conf_int_raw``).

Seeds: losses are averaged over seeds; convergence steps and learned counts are found per
network first and then combined over seeds (median step, a seed that never converged counting
as never; mean count), so one slow seed does not set the step.

**The paper's** (ejmichaud/quantization-model, its Figure-2 notebooks, read for this): losses
in bits, no offset, ordinary least squares of log loss on log x, each exponent with a
percentile bootstrap over its points (:func:`fit.power_law` with pairs resampling):
``N`` over every width (final mean test loss; the bootstrap resamples widths); ``S`` over
``PAPER_STEP_WINDOW`` (500 ≤ step < 15 000) of one width's curve (time points);
``convergence``, the first evaluation at which a subtask's loss is below 0.1 bits against its
frequency (subtasks); ``D``, the minimum loss over evaluations per training-set size, from the
first size whose minimum is below 0.95 bits on (training-set sizes). The paper evaluated
every 100–200 steps on a linear grid; our runs evaluate on a log-spaced grid, so the same
step window holds fewer, evenly log-spaced points.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.results import Result, jsonable
import fit as fitting
import theory

from .run import Run
from .train import finished, network_name

LN2 = math.log(2.0)

#: a width whose final loss is more than this fraction below its loss at half the steps is
#: still learning (step-limited) and is left out of the L(N) fit (and likewise a training-set
#: size whose minimum is its final loss, from the L(D) and learned-vs-D fits)
STILL_LEARNING = 0.05

METHODS = ("quanta", "paper", "both")
#: every regime an analysis can hold, in report order
REGIMES = ("N", "S", "D", "convergence", "learned_vs_D")
#: the paper's step range of the L(S) fit, lo ≤ step < hi
PAPER_STEP_WINDOW = (500, 15_000)
#: the paper's convergence threshold (bits) and the loss (bits) below which its L(D) fit starts
PAPER_THRESHOLD_BITS = 0.1
PAPER_D_START_BITS = 0.95
#: bootstrap resamples of the paper method's intervals
PAPER_BOOTSTRAP = 1000


# ----------------------------------------------------------------------------- helpers
def _still_learning(curves: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, str]:
    """Which loss curves (rows, over ``steps``) end more than ``STILL_LEARNING`` below
    their value at half the steps, and the rule in words."""
    half = int(np.argmin(np.abs(steps - steps[-1] / 2)))
    rule = f"final loss more than {STILL_LEARNING:g} below the loss at step {int(steps[half])}"
    return curves[:, -1] < (1.0 - STILL_LEARNING) * curves[:, half], rule


def truncation_offset(task) -> float:
    """ε_K: the loss (in nats) that cutting the subtasks' Zipf law at n_tasks removes (see the
    module docstring)."""
    return LN2 * theory.truncation_offset(task.alpha, task.n_tasks, task.offset)


def _fit_interval(res, level: float) -> tuple[float, float]:
    """The interval of a power-law fit's exponent at ``level``."""
    lo, hi = res.conf_int(alpha=1.0 - level).loc["alpha"]
    return float(lo), float(hi)


@dataclass
class _Fit:
    """A fitted exponent kept beside its JSON: the fit, the sign the exponent is reported
    with (−1: the slope d log y / d log x), for intervals at any level."""
    result: object
    sign: float

    def bounds(self, level: float) -> tuple[float, float]:
        lo, hi = _fit_interval(self.result, level)
        return tuple(sorted((self.sign * lo, self.sign * hi)))


def _power_fit(x, y, window: dict, theory: float, sign: float = 1.0,
               offset: float | None = None, method: str = "quanta",
               bootstrap: int = 0, seed=0) -> tuple[dict, _Fit | None]:
    """Fit y (+ ``offset``) = A x^-e on the points given; ``sign=-1`` reports the slope
    d log y / d log x. With ``offset`` (ε_K) the raw fit is reported beside it. With
    ``bootstrap`` resamples the interval is the percentile bootstrap over the points, else
    the t-interval of the OLS. Returns the JSON-ready dict and the fit."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[ok], y[ok]
    out = dict(exponent=None, conf_int=None, window=dict(window, n_points=int(len(x))),
               theory_exponent=float(theory), amplitude=None, method=method)
    if offset is not None:
        out.update(truncation_offset=float(offset), exponent_raw=None, conf_int_raw=None)
    if len(x) < 3 or np.unique(x).size < 2:
        out["note"] = "fewer than 3 points in the window: no fit"
        return out, None
    options = dict(bootstrap=bootstrap, seed=seed) if bootstrap else {}
    res = fitting.power_law(x, y if offset is None else y + offset, **options)
    kept = _Fit(res, sign)
    out.update(exponent=sign * float(res.params["alpha"]), amplitude=float(res.params["A"]),
               window=dict(out["window"], x_min=float(x.min()), x_max=float(x.max())),
               conf_int=list(kept.bounds(0.95)))
    if bootstrap:
        out["interval"] = f"95 % percentile bootstrap over the {len(x)} points ({bootstrap} " \
                          f"resamples, seed {seed})"
    if offset is not None:
        raw = _Fit(fitting.power_law(x, y), sign)
        out.update(exponent_raw=sign * float(raw.result.params["alpha"]),
                   conf_int_raw=list(raw.bounds(0.95)))
    return out, kept


def _in_window(y, window) -> np.ndarray:
    lo, hi = window
    return (y > lo * LN2) & (y < hi * LN2)


def _seed_keys(run: Run, keep=None):
    """The (width, D) of each network group that differs only in its seed, and each group's
    network indices (of the networks ``keep``, default all)."""
    m = run.metrics
    kept = np.ones(len(m["widths"]), bool) if keep is None else np.isin(
        np.arange(len(m["widths"])), keep)
    keys = sorted({(int(w), int(d)) for w, d in zip(m["widths"][kept], m["D"][kept])},
                  key=lambda t: (t[1], t[0]))
    return keys, [np.flatnonzero((m["widths"] == w) & (m["D"] == d) & kept) for w, d in keys]


def _seed_mean(run: Run, key: str, keep=None):
    """Average a (network × ...) metric over seeds: returns (keys (width, D), array)."""
    keys, groups = _seed_keys(run, keep)
    return keys, np.array([run.metrics[key][g].mean(0) for g in groups])


def unusable_networks(run: Run) -> list[dict]:
    """The networks whose evaluated test losses hold NaN, infinite or negative values (a
    diverged run, or a damaged file): each with its index, width, seed, D and why. The
    analysis leaves them out, with a warning naming them."""
    m = run.metrics
    n = int(m["n_evals"])
    loss, mean = m["test_loss"][:, :n], m["mean_test_loss"][:, :n]
    out = []
    for i in range(len(m["widths"])):
        finite = np.isfinite(loss[i]).all(axis=-1) & np.isfinite(mean[i])
        negative = (loss[i] < 0).any(axis=-1) | (mean[i] < 0)
        why = [f"{what} test losses at {int(bad.sum())} of {n} evaluations (first at step "
               f"{int(m['steps'][np.argmax(bad)])})"
               for what, bad in (("NaN or infinite", ~finite), ("negative", negative))
               if bad.any()]
        if why:
            out.append(dict(index=i, width=int(m["widths"][i]), seed=int(m["seeds"][i]),
                            D=int(m["D"][i]), reason="; ".join(why)))
    return out


def _usable(run: Run) -> tuple[np.ndarray, list[dict]]:
    """The indices of the networks to analyse, and the ones left out (warned about)."""
    bad = unusable_networks(run)
    keep = np.setdiff1d(np.arange(len(run.metrics["widths"])), [b["index"] for b in bad])
    if bad and not keep.size:
        raise InputError(f"{run.path / 'metrics.npz'}: no network has usable test losses "
                         f"({bad[0]['reason']}, and likewise the others): nothing to analyse "
                         "(the run diverged, or the file is damaged)")
    if bad:
        warnings.warn(f"{run.path}: left out {len(bad)} network(s) with unusable losses: "
                      + "; ".join(f"{network_name(b)}: {b['reason']}" for b in bad),
                      stacklevel=2)
    return keep, bad


def _seed_median(values: np.ndarray) -> np.ndarray:
    """Median over seeds (axis 0) of per-seed convergence steps, NaN (never) counting as
    later than any step: NaN where at least half the seeds never converged."""
    v = np.where(np.isnan(values), np.inf, values)
    med = np.median(v, axis=0)
    return np.where(np.isinf(med), np.nan, med)


def _threshold_nats(threshold: float, unit: str) -> float:
    if unit not in ("nats", "bits"):
        raise InputError(f"unit must be 'nats' or 'bits', got {unit!r}")
    nats = threshold * LN2 if unit == "bits" else threshold
    if not 0 < nats < LN2:
        raise InputError(f"threshold must lie between 0 and the chance loss ln 2 nats (1 bit), "
                         f"got {threshold} {unit}")
    return nats


def convergence_steps(test_loss: np.ndarray, steps: np.ndarray, threshold: float) -> np.ndarray:
    """First eval step at which each subtask's loss is below ``threshold`` (nats); NaN when
    never. ``test_loss``: eval step × subtask."""
    below = test_loss < threshold
    first = np.argmax(below, axis=0)
    out = steps[first].astype(float)
    out[~below.any(axis=0)] = np.nan
    return out


def _floats_or_none(values) -> list:
    return [None if not np.isfinite(v) else float(v) for v in values]


@dataclass
class _RunData:
    """One run's metrics as the fits read them: seed means, per-seed subtask losses."""
    run: Run
    steps: np.ndarray            # eval steps (the evaluations made so far)
    keys: list                   # (width, D) per network group
    groups: list                 # network indices per group
    widths: np.ndarray
    Ds: np.ndarray
    n_params: np.ndarray
    mean_loss: np.ndarray        # group × eval, nats, mean over seeds
    net_loss: np.ndarray         # network × eval × subtask, nats
    alpha: float
    eps: float | None            # ε_K (None for α ≤ 0)
    excluded: list               # networks left out: NaN, infinite or negative losses

    @property
    def online(self) -> bool:
        return bool(np.all(self.Ds == 0))

    @property
    def frequencies(self) -> np.ndarray:
        return self.run.task.frequencies

    def widest(self) -> int:
        return int(np.argmax(self.widths))

    def group_of_width(self, width: int | None) -> int:
        """The network group of ``width`` among the online groups (None: the widest)."""
        if width is None:
            return self.widest()
        hit = np.flatnonzero(self.widths == int(width))
        if not hit.size:
            raise InputError(f"width {width} is not in the run; its widths: "
                             f"{sorted(set(self.widths.tolist()))}")
        return int(hit[0])


def _run_data(run: Run) -> _RunData:
    m = run.metrics
    if not m:
        raise InputError(f"run {run.path} has no metrics.npz yet")
    n_evals = int(m["n_evals"])
    keep, excluded = _usable(run)
    keys, mean_loss = _seed_mean(run, "mean_test_loss", keep)
    _, groups = _seed_keys(run, keep)
    widths = np.array([k[0] for k in keys])
    alpha = run.config.task.alpha
    return _RunData(run=run, steps=m["steps"][:n_evals], keys=keys, groups=groups,
                    widths=widths, Ds=np.array([k[1] for k in keys]),
                    n_params=np.array([run.task.n_params(w, run.config.model.depth)
                                       for w in widths]),
                    mean_loss=mean_loss[:, :n_evals], net_loss=m["test_loss"][:, :n_evals],
                    alpha=alpha, eps=truncation_offset(run.task) if alpha > 0 else None,
                    excluded=excluded)


def _run_header(d: _RunData, method: str, loss_unit: str) -> dict:
    run = d.run
    out = dict(run=str(run.path), alpha=d.alpha, n_tasks=run.config.task.n_tasks,
               n_bits=run.config.task.n_bits, k=run.config.task.k,
               steps=int(d.steps[-1]), complete=finished(run.metrics),
               planned_steps=run.planned_steps, until_step=run.until_step,
               device=run.config.train.device, precision=run.config.train.precision,
               loss_unit=loss_unit, method=method, excluded_networks=d.excluded)
    if not out["complete"]:
        how = ("cut there with until_step" if run.until_step is not None
               else "paused or stopped there")
        out["incomplete"] = (f"evaluated to step {out['steps']} of {out['planned_steps']} "
                             f"({len(d.steps)} of {len(run.metrics['steps'])} evaluations, "
                             f"{how}): the exponents describe the run at step {out['steps']}, "
                             "not a finished run")
    if method == "quanta":
        out["truncation_offset"] = d.eps
        if d.eps is None:
            out["note"] = (f"α = {d.alpha:g} ≤ 0: the model predicts no power law (its loss "
                           "does not converge as K grows); the fits are raw slopes")
    return out


# ----------------------------------------------------------------------- our method
def _quanta_N(d: _RunData, window, rule: str) -> tuple[dict, _Fit | None]:
    """Final loss against parameters over the capacity-limited widths in the window."""
    final = d.mean_loss[:, -1]
    still, still_rule = _still_learning(d.mean_loss, d.steps)
    inside = _in_window(final, window)
    sel = inside & ~still
    f, kept = _power_fit(d.n_params[sel], final[sel],
                         dict(variable="parameters N", rule=rule, loss="final",
                              dropped_still_learning=d.widths[inside & still].tolist(),
                              still_learning=still_rule),
                         d.alpha, offset=d.eps)
    f.update(x=d.n_params.tolist(), y=final.tolist(), widths=d.widths.tolist())
    dropped = f["window"]["dropped_still_learning"]
    if f["exponent"] is None and dropped:
        f["note"] = (f"fewer than 3 converged widths in the window; {len(dropped)} still "
                     "learning at the end (step-limited) were left out")
    return f, kept


def _quanta_S(d: _RunData, window, rule: str) -> tuple[dict, _Fit | None]:
    """Loss against steps of the widest network, and each width's exponent beside it."""
    still, _ = _still_learning(d.mean_loss, d.steps)
    theory_S = d.alpha / (d.alpha + 1)
    i = d.widest()
    curve = d.mean_loss[i]
    sel = _in_window(curve, window) & (d.steps > 0)
    f, kept = _power_fit(d.steps[sel], curve[sel],
                         dict(variable="steps S", rule=rule, width=int(d.widths[i])),
                         theory_S, offset=d.eps)
    per_width = []
    for j, w in enumerate(d.widths):
        sj = _in_window(d.mean_loss[j], window) & (d.steps > 0)
        fj, _ = _power_fit(d.steps[sj], d.mean_loss[j][sj], dict(rule=rule), theory_S,
                           offset=d.eps)
        per_width.append(dict(width=int(w), exponent=fj["exponent"], conf_int=fj["conf_int"],
                              still_learning=bool(still[j])))
    f.update(per_width=per_width, x=d.steps.tolist(), y=curve.tolist())
    return f, kept


def _convergence_of_group(d: _RunData, group: int, thr: float) -> np.ndarray:
    """Per-subtask convergence step of one network group: per seed, then the median."""
    by_seed = np.array([convergence_steps(d.net_loss[g], d.steps, thr)
                        for g in d.groups[group]])
    return _seed_median(by_seed)


def _quanta_convergence(d: _RunData, thr: float, threshold: float,
                        unit: str) -> tuple[dict, _Fit | None]:
    """First step below the threshold against subtask frequency, widest network."""
    i = d.widest()
    conv = _convergence_of_group(d, i, thr)
    ok = np.isfinite(conv) & (conv > 0)
    f, kept = _power_fit(d.frequencies[ok], conv[ok],
                         dict(variable="subtask frequency", width=int(d.widths[i]),
                              rule=f"subtasks whose loss drops below {threshold:g} {unit} "
                                   "after step 0"), -1.0, sign=-1.0)
    f.update(threshold=threshold, unit=unit, n_converged=int(np.isfinite(conv).sum()),
             steps=_floats_or_none(conv), x=d.frequencies.tolist(),
             seeds=int(len(d.groups[i])), combined="median over seeds (never = later than any step)")
    return f, kept


def _implied_S(alpha: float, slope) -> float | None:
    """Subtask k learned at step ∝ p_k^-γ gives α_S = α/((α+1)γ): the S exponent a measured
    convergence slope −γ implies (γ = 1 is the model)."""
    if slope is None or slope >= 0 or alpha <= 0:
        return None
    return alpha / (alpha + 1) / -slope


def _quanta_D(d: _RunData, window, rule: str, thr: float, threshold: float,
              unit: str) -> dict[str, tuple[dict, _Fit | None]]:
    """Minimum (and final) loss against D, and the subtasks learned against D, at the widest
    width, without the training-set sizes still learning at the end."""
    m, n_evals = d.run.metrics, len(d.steps)
    best = np.nanargmin(d.mean_loss, axis=1)
    lmin = d.mean_loss[np.arange(len(d.keys)), best]
    final = d.mean_loss[:, -1]
    w = int(d.widths.max())
    at = d.widths == w
    still, still_rule = _still_learning(d.mean_loss, d.steps)
    still &= best == n_evals - 1
    dropped = dict(dropped_still_learning=d.Ds[at & still].tolist(),
                   still_learning=f"minimum at the last step and {still_rule}")
    theory_D = d.alpha / (d.alpha + 1)
    sel = at & _in_window(lmin, window) & ~still
    fD, keptD = _power_fit(d.Ds[sel], lmin[sel],
                           dict(variable="training-set size D", rule=rule, width=w,
                                loss="minimum over training", **dropped),
                           theory_D, offset=d.eps)
    sel_final = at & _in_window(final, window) & ~still
    fin, _ = _power_fit(d.Ds[sel_final], final[sel_final], dict(rule=rule, loss="final"),
                        theory_D, offset=d.eps)
    fD.update(loss="minimum over training (as the paper)", x=d.Ds[at].tolist(),
              y=lmin[at].tolist(), y_final=final[at].tolist(),
              best_step=d.steps[best[at]].tolist(), last_step=int(d.steps[-1]),
              exponent_final=fin["exponent"], conf_int_final=fin["conf_int"])
    # learned subtasks per network, at its own eval of minimum mean test loss, then the
    # mean over seeds
    mean = m["mean_test_loss"][:, :n_evals]
    learned = np.array([np.mean([(d.net_loss[i, np.argmin(mean[i])] < thr).sum() for i in g])
                        for g in d.groups])
    selL = at & (learned > 0) & (learned < d.run.config.task.n_tasks) & ~still
    fL, keptL = _power_fit(d.Ds[selL], learned[selL],
                           dict(variable="training-set size D", width=w,
                                rule="0 < learned subtasks < n_tasks", **dropped),
                           1 / (d.alpha + 1), sign=-1.0)
    fL.update(threshold=threshold, unit=unit, x=d.Ds[at].tolist(), y=learned[at].tolist(),
              at="each network's eval step of minimum mean test loss, mean over seeds")
    note = (f"fewer than 3 points; {int((at & still).sum())} training-set sizes still "
            "learning at the end (step-limited) were left out")
    for f in (fD, fL):
        if f["exponent"] is None and still[at].any():
            f["note"] = note
    return {"D": (fD, keptD), "learned_vs_D": (fL, keptL)}


def analyze_run(run: Run, threshold: float = 0.1, unit: str = "nats",
                window=(0.05, 0.9)) -> "RunAnalysis":
    """Exponents of one run directory by our method (see the module docstring)."""
    window = tuple(float(v) for v in window)
    if not 0 <= window[0] < window[1]:
        raise InputError(f"window must satisfy 0 <= LO < HI, got {window}")
    thr = _threshold_nats(threshold, unit)
    d = _run_data(run)
    out = _run_header(d, "quanta", "nats")
    rule = f"loss between {window[0]:g} and {window[1]:g} × ln 2 nats"
    if d.online:
        fits = {"N": _quanta_N(d, window, rule), "S": _quanta_S(d, window, rule),
                "convergence": _quanta_convergence(d, thr, threshold, unit)}
    else:
        fits = _quanta_D(d, window, rule, thr, threshold, unit)
    out.update({reg: f for reg, (f, _) in fits.items()})
    if "S" in out:
        out["S"]["exponent_from_convergence"] = _implied_S(d.alpha,
                                                           out["convergence"]["exponent"])
    return RunAnalysis(out, {reg: k for reg, (_, k) in fits.items() if k is not None})


# -------------------------------------------------------------------- the paper's method
def _paper_fit(x, y, window: dict, theory: float, bootstrap: int, seed,
               sign: float = 1.0) -> tuple[dict, _Fit | None]:
    """The paper's fit (OLS of log y on log x, no offset) with a bootstrap over the points;
    the points are kept for the plot."""
    f, kept = _power_fit(x, y, window, theory, sign=sign, method="paper",
                         bootstrap=bootstrap, seed=seed)
    f.update(x=np.asarray(x, float).tolist(), y=np.asarray(y, float).tolist())
    return f, kept


def _paper_N(d: _RunData, bootstrap: int, seed) -> tuple[dict, _Fit | None]:
    """Final mean test loss (bits) against parameters, every width."""
    final = d.mean_loss[:, -1] / LN2
    f, kept = _paper_fit(d.n_params, final,
                         dict(variable="parameters N", loss="final (bits)",
                              rule="every width", resampled="widths"),
                         d.alpha, bootstrap, seed)
    f["widths"] = d.widths.tolist()
    return f, kept


def _paper_S(d: _RunData, group: int, step_window, bootstrap: int,
             seed) -> tuple[dict, _Fit | None]:
    """One width's mean test loss (bits) against steps, lo ≤ step < hi."""
    lo, hi = step_window
    sel = (d.steps >= lo) & (d.steps < hi)
    return _paper_fit(d.steps[sel], d.mean_loss[group][sel] / LN2,
                      dict(variable="steps S", width=int(d.widths[group]),
                           rule=f"{lo:g} <= step < {hi:g}", resampled="time points"),
                      d.alpha / (d.alpha + 1), bootstrap, seed)


def _paper_convergence(d: _RunData, group: int, threshold_bits: float, bootstrap: int,
                       seed) -> tuple[dict, _Fit | None]:
    """First evaluation with subtask loss below ``threshold_bits`` against frequency."""
    conv = _convergence_of_group(d, group, threshold_bits * LN2)
    ok = np.isfinite(conv) & (conv > 0)
    f, kept = _paper_fit(d.frequencies[ok], conv[ok],
                         dict(variable="subtask frequency", width=int(d.widths[group]),
                              rule=f"subtasks whose loss drops below {threshold_bits:g} bits "
                                   "after step 0", resampled="subtasks"),
                         -1.0, bootstrap, seed, sign=-1.0)
    f.update(threshold=threshold_bits, unit="bits", n_converged=int(np.isfinite(conv).sum()),
             steps=_floats_or_none(conv))
    return f, kept


def _paper_D(d: _RunData, start_bits: float, bootstrap: int,
             seed) -> tuple[dict, _Fit | None]:
    """Minimum test loss (bits) over evaluations against D (widest width), from the first
    training-set size whose minimum is below ``start_bits`` on."""
    at = np.flatnonzero(d.widths == d.widths.max())
    at = at[np.argsort(d.Ds[at])]
    best = np.nanargmin(d.mean_loss[at], axis=1)
    lmin = d.mean_loss[at, best] / LN2
    below = np.flatnonzero(lmin < start_bits)
    first = int(below[0]) if below.size else len(at)
    f, kept = _paper_fit(d.Ds[at][first:], lmin[first:],
                         dict(variable="training-set size D", width=int(d.widths.max()),
                              loss="minimum over evaluations (bits)",
                              rule=f"from the first D whose minimum is below {start_bits:g} "
                                   "bits", resampled="training-set sizes"),
                         d.alpha / (d.alpha + 1), bootstrap, seed)
    f.update(x_all=d.Ds[at].tolist(), y_all=lmin.tolist(), best_step=d.steps[best].tolist())
    return f, kept


def paper_run(run: Run, *, step_window=PAPER_STEP_WINDOW, width: int | None = None,
              threshold_bits: float = PAPER_THRESHOLD_BITS,
              d_start_bits: float = PAPER_D_START_BITS, bootstrap: int = PAPER_BOOTSTRAP,
              seed=0) -> "RunAnalysis":
    """Exponents of one run as the paper measured them (see the module docstring): ``width``
    is the network of the L(S) and convergence fits (default the widest), ``step_window``
    (lo, hi) the steps of the L(S) fit, ``bootstrap`` the resamples of every interval."""
    lo, hi = (float(v) for v in step_window)
    if not 0 <= lo < hi:
        raise InputError(f"step_window must satisfy 0 <= LO < HI, got {step_window}")
    _threshold_nats(threshold_bits, "bits")
    _threshold_nats(d_start_bits, "bits")
    if isinstance(bootstrap, bool) or int(bootstrap) < 1:
        raise InputError(f"bootstrap must be a positive number of resamples, got {bootstrap}")
    d = _run_data(run)
    out = _run_header(d, "paper", "bits")
    if d.online:
        g = d.group_of_width(width)
        fits = {"N": _paper_N(d, bootstrap, seed),
                "S": _paper_S(d, g, (lo, hi), bootstrap, seed),
                "convergence": _paper_convergence(d, g, threshold_bits, bootstrap, seed)}
    else:
        fits = {"D": _paper_D(d, d_start_bits, bootstrap, seed)}
    out.update({reg: f for reg, (f, _) in fits.items()})
    return RunAnalysis(out, {reg: k for reg, (_, k) in fits.items() if k is not None})


# ------------------------------------------------------------------------- results
def _regime_line(reg: str, f: dict) -> str:
    if f["exponent"] is None:
        return f"  {reg:<13} no fit ({f.get('note', '')})"
    lo, hi = f["conf_int"]
    implied = f.get("exponent_from_convergence")
    return (f"  {reg:<13} exponent {f['exponent']:+.3f}  [{lo:+.3f}, {hi:+.3f}]  "
            f"theory {f['theory_exponent']:+.3f}  ({f['window']['n_points']} points)"
            + ("" if implied is None else f"  from the convergence slope {implied:+.3f}"))


def _run_summary(r: Mapping) -> list[str]:
    method = r.get("method", "quanta")
    lines = [f"{r['run']}  (α = {r['alpha']:g}, {r['n_tasks']} subtasks, {r['steps']} steps"
             f"{'' if r['complete'] else ', INCOMPLETE'}; {method} method, "
             f"{r.get('loss_unit', 'nats')})"]
    for key in ("incomplete", "note"):
        if r.get(key):
            lines.append(f"  {key}: {r[key]}")
    for n in r.get("excluded_networks") or []:
        lines.append(f"  warning: left out {network_name(n)}: {n['reason']}")
    lines += [_regime_line(reg, r[reg]) for reg in REGIMES if reg in r]
    return lines


class _DictResult(Result, Mapping):
    """A result that reads like its JSON (``r["N"]["exponent"]``): the keys of
    :meth:`to_dict`, which are the interface the JSON files and their readers rely on."""

    _data: dict

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_dict(self) -> dict:
        return jsonable(self._data)


class RunAnalysis(_DictResult):
    """The exponents of one run by one method (``method``: "quanta" or "paper").

    ``params``: regime → exponent (``N``, ``S``, ``D``, ``convergence`` (the slope, theory
    −1), ``learned_vs_D``), for the regimes with a fit; ``conf_int(alpha)``: their intervals
    at level 1 − alpha (t-intervals for ours, percentile bootstrap for the paper's); the
    mapping (and ``to_dict()``) holds the JSON of ``quanta parity analyze``."""

    def __init__(self, data: dict, fits: dict):
        self._data = data
        self._fits = fits

    @property
    def method(self) -> str:
        return self._data["method"]

    @property
    def params(self) -> dict:
        return {reg: self._data[reg]["exponent"] for reg in REGIMES
                if reg in self._data and self._data[reg]["exponent"] is not None}

    def _bounds(self, level: float, **kwargs):
        return {reg: self._fits[reg].bounds(level) for reg in REGIMES if reg in self._fits}

    def summary(self) -> str:
        return "\n".join(_run_summary(self))

    def plot(self, regime: str | None = None, ax=None):
        """The figure of one regime (default the first fitted of N, D): observed points,
        the fit and the theory slope."""
        from . import plots

        regime = regime or next((r for r in ("N", "D") if r in self._data), None)
        if regime not in self._data:
            raise InputError(f"regime must be one of {[r for r in REGIMES if r in self._data]}"
                             f", got {regime!r}")
        return plots.plot_regime(self._data[regime], regime, ax=ax)


def sweep_signature(run: Run) -> dict:
    """What runs of one α sweep share: everything but α and the seeds (task, widths, depth,
    steps, batch, learning rate, precision)."""
    t, mo, tr = run.config.task, run.config.model, run.config.train
    return dict(n_tasks=t.n_tasks, n_bits=t.n_bits, k=t.k, offset=t.offset,
                widths=list(mo.widths), depth=mo.depth, steps=tr.steps, batch=tr.batch,
                lr=tr.lr, precision=tr.precision)


def _label(r: Mapping) -> str:
    return Path(r["run"]).name


class ParityAnalysis(_DictResult):
    """The analysis of one or several runs by one method: ``runs`` (a :class:`RunAnalysis`
    each), the settings, and for our method ``alpha_sweep``/``alpha_sweeps``. ``params`` and
    ``conf_int`` name each exponent ``"<run folder>/<regime>"``."""

    def __init__(self, data: dict):
        self._data = data

    @property
    def method(self) -> str:
        return self._data["method"]

    @property
    def runs(self) -> list[RunAnalysis]:
        return self._data["runs"]

    @property
    def params(self) -> dict:
        return {f"{_label(r)}/{reg}": v for r in self.runs for reg, v in r.params.items()}

    def _bounds(self, level: float, **kwargs):
        return {f"{_label(r)}/{reg}": b for r in self.runs
                for reg, b in r._bounds(level).items()}

    def summary(self) -> str:
        return summary(self)

    def plot(self, ax=None):
        """The exponents against α when the runs form an α sweep, else the first run's
        figure."""
        from . import plots

        if "alpha_sweep" in self._data:
            return plots.plot_exponents_vs_alpha(self._data["alpha_sweep"], ax=ax)
        return self.runs[0].plot(ax=ax)


def _table_row(label: str, reg: str, ours: Mapping | None, paper: Mapping | None) -> dict:
    f = ours or paper
    row = dict(run=label, regime=reg, theory=f["theory_exponent"])
    for name, g in (("quanta", ours), ("paper", paper)):
        row[name] = None if g is None else g["exponent"]
        row[f"{name}_conf_int"] = None if g is None else g["conf_int"]
    row["quanta_raw"] = None if ours is None else ours.get("exponent_raw")
    return row


class MethodComparison(Result):
    """Our method and the paper's on the same runs (``method="both"``): ``quanta`` and
    ``paper`` (a :class:`ParityAnalysis` each) and ``table()``, one row per run and regime
    with theory, both exponents and their intervals. ``params``/``conf_int`` name each
    exponent ``"<method>:<run folder>/<regime>"``."""

    def __init__(self, quanta: ParityAnalysis, paper: ParityAnalysis):
        self.quanta, self.paper = quanta, paper

    @property
    def params(self) -> dict:
        return {f"{m}:{k}": v for m in ("quanta", "paper")
                for k, v in getattr(self, m).params.items()}

    def _bounds(self, level: float, **kwargs):
        return {f"{m}:{k}": b for m in ("quanta", "paper")
                for k, b in getattr(self, m)._bounds(level).items()}

    def rows(self) -> list[dict]:
        out = []
        for ours, paper in zip(self.quanta.runs, self.paper.runs):
            out += [_table_row(_label(ours), reg, ours.get(reg), paper.get(reg))
                    for reg in REGIMES if reg in ours or reg in paper]
        return out

    def table(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def summary(self) -> str:
        def cell(v, ci):
            return "—" if v is None else f"{v:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"

        lines = [f"{'run':<16} {'regime':<12} {'theory':>7}  {'ours (quanta)':<26}  "
                 f"{'paper':<26}"]
        for r in self.rows():
            lines.append(f"{r['run']:<16} {r['regime']:<12} {r['theory']:>+7.3f}  "
                         f"{cell(r['quanta'], r['quanta_conf_int']):<26}  "
                         f"{cell(r['paper'], r['paper_conf_int']):<26}")
        lines += [f"{_label(r)}: INCOMPLETE, {r['incomplete']}" for r in self.quanta.runs
                  if r.get("incomplete")]
        lines += [f"{_label(run)}: warning: left out {network_name(n)}: {n['reason']}"
                  for run in self.quanta.runs for n in run.get("excluded_networks") or []]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return jsonable(dict(method="both", quanta=self.quanta.to_dict(),
                             paper=self.paper.to_dict(), table=self.rows()))

    def plot(self, ax=None):
        """Each regime's exponent by both methods with its interval, beside the theory."""
        from . import plots

        return plots.plot_method_comparison(self.rows(), ax=ax)


def _paper_settings(options: dict) -> dict:
    """The paper method's settings: the defaults, updated by ``options`` (names checked)."""
    settings = dict(step_window=list(PAPER_STEP_WINDOW), width=None,
                    threshold_bits=PAPER_THRESHOLD_BITS, d_start_bits=PAPER_D_START_BITS,
                    bootstrap=PAPER_BOOTSTRAP, seed=0)
    unknown = sorted(set(options) - set(settings))
    if unknown:
        raise InputError(f"unknown options of the paper method: {unknown}; "
                         f"known: {sorted(settings)}")
    settings.update(options)
    settings["step_window"] = [float(v) for v in settings["step_window"]]
    return settings


def analyze(runs, threshold: float = 0.1, unit: str = "nats", window=(0.05, 0.9),
            method: str = "quanta", **paper_options):
    """Analyse one or several runs by ``method``: "quanta" (ours, the default), "paper"
    (``paper_options`` go to :func:`paper_run`: ``step_window``, ``width``,
    ``threshold_bits``, ``d_start_bits``, ``bootstrap``, ``seed``) or "both"
    (:class:`MethodComparison`). Online runs that share a ``sweep_signature`` and cover at
    least two α form an α sweep (the paper's Figure 10): ``alpha_sweep`` is the one with the
    most α, ``alpha_sweeps`` lists every one (:func:`alpha_sweep.sweeps`); each names its runs
    and their shared configuration, so runs of different tasks or lengths are never mixed."""
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    if method == "both":
        return MethodComparison(analyze(runs, threshold, unit, window),
                                analyze(runs, method="paper", **paper_options))
    if method == "paper":
        settings = _paper_settings(paper_options)
        per_run = [paper_run(r, **settings) for r in runs]
    else:
        if paper_options:
            raise InputError(f"options {sorted(paper_options)} belong to method='paper'")
        per_run = [analyze_run(r, threshold, unit, window) for r in runs]
        settings = dict(threshold=threshold, unit=unit, window=list(window))
    out: dict = dict(method=method, runs=per_run, **settings)
    from .alpha_sweep import sweeps as alpha_sweeps  # it builds on this module

    sweeps = alpha_sweeps(runs, per_run)
    if sweeps:
        out["alpha_sweep"] = sweeps[0]
        out["alpha_sweeps"] = sweeps
    return ParityAnalysis(out)


def summary(result) -> str:
    """A short text table of the fitted exponents against the theory."""
    return "\n".join(line for r in result["runs"] for line in _run_summary(r))
