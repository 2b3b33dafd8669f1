"""From run directories to scaling exponents, read against the quantization model.

Per run (one α): ``N`` (final loss against parameters; theory α), ``S`` (loss against steps
of the widest network; theory α/(α+1)), ``D`` (loss against training-set size, the minimum
over training as in the paper, and the final loss beside it; theory α/(α+1)),
``convergence`` (step at which each subtask's loss first drops below a threshold, against
its frequency; theory slope −1) and ``learned_vs_D`` (subtasks learned against D; theory
slope 1/(α+1)). Each regime holds ``exponent``, ``conf_int`` (95 %, Wald/t on the log-log
OLS of :func:`fit.power_law`), ``window`` and ``theory_exponent``. Several runs with
different α give ``alpha_sweep`` (the paper's Figure 10).

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
"""
from __future__ import annotations

import math

import numpy as np

from common.errors import InputError
import fit as fitting
import theory

from .run import Run
from .train import finished

LN2 = math.log(2.0)

#: a width whose final loss is more than this fraction below its loss at half the steps is
#: still learning (step-limited) and is left out of the L(N) fit (and likewise a training-set
#: size whose minimum is its final loss, from the L(D) and learned-vs-D fits)
STILL_LEARNING = 0.05


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


def _power_fit(x, y, window: dict, theory: float, sign: float = 1.0,
               offset: float | None = None) -> dict:
    """Fit y (+ ``offset``) = A x^-e on the points given; ``sign=-1`` reports the slope
    d log y / d log x. With ``offset`` (ε_K) the raw fit is reported beside it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[ok], y[ok]
    out = dict(exponent=None, conf_int=None, window=dict(window, n_points=int(len(x))),
               theory_exponent=float(theory), amplitude=None)
    if offset is not None:
        out.update(truncation_offset=float(offset), exponent_raw=None, conf_int_raw=None)
    if len(x) >= 3 and np.unique(x).size >= 2:
        window_used = dict(out["window"], x_min=float(x.min()), x_max=float(x.max()))
        res = fitting.power_law(x, y if offset is None else y + offset)
        lo, hi = res.conf_int().loc["alpha"]
        e = float(res.params["alpha"])
        out.update(exponent=sign * e, amplitude=float(res.params["A"]), window=window_used,
                   conf_int=sorted([sign * float(lo), sign * float(hi)]))
        if offset is not None:
            raw = fitting.power_law(x, y)
            lo, hi = raw.conf_int().loc["alpha"]
            out.update(exponent_raw=sign * float(raw.params["alpha"]),
                       conf_int_raw=sorted([sign * float(lo), sign * float(hi)]))
    else:
        out["note"] = "fewer than 3 points in the window: no fit"
    return out


def _in_window(y, window) -> np.ndarray:
    lo, hi = window
    return (y > lo * LN2) & (y < hi * LN2)


def _seed_keys(run: Run):
    """The (width, D) of each network group that differs only in its seed, and each group's
    network indices."""
    m = run.metrics
    keys = sorted({(int(w), int(d)) for w, d in zip(m["widths"], m["D"])},
                  key=lambda t: (t[1], t[0]))
    return keys, [np.flatnonzero((m["widths"] == w) & (m["D"] == d)) for w, d in keys]


def _seed_mean(run: Run, key: str):
    """Average a (network × ...) metric over seeds: returns (keys (width, D), array)."""
    keys, groups = _seed_keys(run)
    return keys, np.array([run.metrics[key][g].mean(0) for g in groups])


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


def analyze_run(run: Run, threshold: float = 0.1, unit: str = "nats",
                window=(0.05, 0.9)) -> dict:
    """Exponents of one run directory (see the module docstring)."""
    m = run.metrics
    if not m:
        raise InputError(f"run {run.path} has no metrics.npz yet")
    window = tuple(float(v) for v in window)
    if not 0 <= window[0] < window[1]:
        raise InputError(f"window must satisfy 0 <= LO < HI, got {window}")
    thr = _threshold_nats(threshold, unit)
    alpha = run.config.task.alpha
    n_evals = int(m["n_evals"])
    steps = m["steps"][:n_evals]
    rule = f"loss between {window[0]:g} and {window[1]:g} × ln 2 nats"
    out = dict(run=str(run.path), alpha=alpha, n_tasks=run.config.task.n_tasks,
               n_bits=run.config.task.n_bits, k=run.config.task.k,
               steps=int(steps[-1]), complete=finished(m),
               device=run.config.train.device, precision=run.config.train.precision,
               loss_unit="nats")
    keys, mean_loss = _seed_mean(run, "mean_test_loss")
    mean_loss = mean_loss[:, :n_evals]
    _, groups = _seed_keys(run)
    net_loss = m["test_loss"][:, :n_evals]          # network × eval × subtask, per seed
    # the model's power laws (and ε_K, a convergent tail) need α > 0: raw fits otherwise
    eps = truncation_offset(run.task) if alpha > 0 else None
    out["truncation_offset"] = eps
    if eps is None:
        out["note"] = (f"α = {alpha:g} ≤ 0: the model predicts no power law (its loss does "
                       "not converge as K grows); the fits are raw slopes")
    widths = np.array([k[0] for k in keys])
    Ds = np.array([k[1] for k in keys])
    n_params = np.array([run.task.n_params(w, run.config.model.depth) for w in widths])
    freqs = run.task.frequencies
    online = np.all(Ds == 0)

    if online:
        final = mean_loss[:, -1]
        still, still_rule = _still_learning(mean_loss, steps)
        sel = _in_window(final, window) & ~still
        out["N"] = _power_fit(n_params[sel], final[sel],
                              dict(variable="parameters N", rule=rule, loss="final",
                                   dropped_still_learning=widths[_in_window(final, window)
                                                                 & still].tolist(),
                                   still_learning=still_rule),
                              alpha, offset=eps)
        out["N"].update(x=n_params.tolist(), y=final.tolist(), widths=widths.tolist())
        dropped = out["N"]["window"]["dropped_still_learning"]
        if out["N"]["exponent"] is None and dropped:
            out["N"]["note"] = (f"fewer than 3 converged widths in the window; {len(dropped)} "
                                "still learning at the end (step-limited) were left out")
        i = int(np.argmax(widths))
        curve = mean_loss[i]
        sel = _in_window(curve, window) & (steps > 0)
        out["S"] = _power_fit(steps[sel], curve[sel],
                              dict(variable="steps S", rule=rule, width=int(widths[i])),
                              alpha / (alpha + 1), offset=eps)
        per_width = []
        for j, w in enumerate(widths):
            sj = _in_window(mean_loss[j], window) & (steps > 0)
            f = _power_fit(steps[sj], mean_loss[j][sj], dict(rule=rule), alpha / (alpha + 1),
                           offset=eps)
            per_width.append(dict(width=int(w), exponent=f["exponent"], conf_int=f["conf_int"],
                                  still_learning=bool(still[j])))
        out["S"]["per_width"] = per_width
        by_seed = np.array([convergence_steps(net_loss[g], steps, thr) for g in groups[i]])
        conv = _seed_median(by_seed)
        ok = np.isfinite(conv) & (conv > 0)
        out["convergence"] = _power_fit(
            freqs[ok], conv[ok], dict(variable="subtask frequency", width=int(widths[i]),
                                      rule=f"subtasks whose loss drops below {threshold:g} "
                                           f"{unit} after step 0"), -1.0, sign=-1.0)
        out["convergence"].update(threshold=threshold, unit=unit,
                                  n_converged=int(np.isfinite(conv).sum()),
                                  steps=[None if not np.isfinite(c) else float(c) for c in conv],
                                  seeds=int(len(groups[i])),
                                  combined="median over seeds (never = later than any step)")
        # subtask k learned at step ∝ p_k^-γ gives α_S = α/((α+1)γ): the S exponent the
        # measured convergence slope implies (γ = 1 is the model)
        slope = out["convergence"]["exponent"]
        out["S"]["exponent_from_convergence"] = None if (
            slope is None or slope >= 0 or alpha <= 0) else alpha / (alpha + 1) / -slope
    else:
        best = np.nanargmin(mean_loss, axis=1)
        lmin = mean_loss[np.arange(len(keys)), best]
        final = mean_loss[:, -1]
        w = int(widths.max())
        at = widths == w
        still, still_rule = _still_learning(mean_loss, steps)
        still &= best == len(steps) - 1
        dropped = dict(dropped_still_learning=Ds[at & still].tolist(),
                       still_learning=f"minimum at the last step and {still_rule}")
        note = (f"fewer than 3 points; {int((at & still).sum())} training-set sizes still "
                "learning at the end (step-limited) were left out")
        sel = at & _in_window(lmin, window) & ~still
        out["D"] = _power_fit(Ds[sel], lmin[sel],
                              dict(variable="training-set size D", rule=rule, width=w,
                                   loss="minimum over training", **dropped),
                              alpha / (alpha + 1), offset=eps)
        sel_final = at & _in_window(final, window) & ~still
        fin = _power_fit(Ds[sel_final], final[sel_final], dict(rule=rule, loss="final"),
                         alpha / (alpha + 1), offset=eps)
        out["D"].update(loss="minimum over training (as the paper)", x=Ds[at].tolist(),
                        y=lmin[at].tolist(), y_final=final[at].tolist(),
                        exponent_final=fin["exponent"], conf_int_final=fin["conf_int"])
        # learned subtasks per network, at its own eval of minimum mean test loss, then the
        # mean over seeds
        nets_best = np.nanargmin(m["mean_test_loss"][:, :n_evals], axis=1)
        per_net = (net_loss[np.arange(len(nets_best)), nets_best] < thr).sum(1)
        learned = np.array([per_net[g].mean() for g in groups])
        selL = at & (learned > 0) & (learned < run.config.task.n_tasks) & ~still
        out["learned_vs_D"] = _power_fit(
            Ds[selL], learned[selL], dict(variable="training-set size D", width=w,
                                          rule="0 < learned subtasks < n_tasks", **dropped),
            1 / (alpha + 1), sign=-1.0)
        out["learned_vs_D"].update(threshold=threshold, unit=unit, x=Ds[at].tolist(),
                                   y=learned[at].tolist(),
                                   at="each network's eval step of minimum mean test loss, "
                                      "mean over seeds")
        for reg in ("D", "learned_vs_D"):
            if out[reg]["exponent"] is None and still[at].any():
                out[reg]["note"] = note
    return out


def sweep_signature(run: Run) -> dict:
    """What runs of one α sweep share: everything but α and the seeds (task, widths, depth,
    steps, batch, learning rate, precision)."""
    t, mo, tr = run.config.task, run.config.model, run.config.train
    return dict(n_tasks=t.n_tasks, n_bits=t.n_bits, k=t.k, offset=t.offset,
                widths=list(mo.widths), depth=mo.depth, steps=tr.steps, batch=tr.batch,
                lr=tr.lr, precision=tr.precision)


def analyze(runs, threshold: float = 0.1, unit: str = "nats", window=(0.05, 0.9)) -> dict:
    """Analyse one or several runs. Online runs that share a ``sweep_signature`` and cover
    at least two α form an α sweep (the paper's Figure 10): ``alpha_sweep`` is the one with
    the most α, ``alpha_sweeps`` lists every one; each names its runs and their shared
    configuration, so runs of different tasks or lengths are never mixed."""
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    per_run = [analyze_run(r, threshold, unit, window) for r in runs]
    out: dict = dict(runs=per_run, threshold=threshold, unit=unit, window=list(window))
    groups: dict = {}
    for run, r in zip(runs, per_run):
        if "N" in r:
            sig = sweep_signature(run)
            groups.setdefault(repr(sig), (sig, []))[1].append(r)
    sweeps = []
    for sig, members in groups.values():
        if len({r["alpha"] for r in members}) < 2:
            continue
        sweep = dict(config=sig, run=[], alpha=[], N=[], N_conf_int=[], S=[], S_conf_int=[],
                     theory_N=[], theory_S=[], convergence=[], convergence_conf_int=[],
                     S_from_convergence=[])
        for r in sorted(members, key=lambda r: (r["alpha"], r["run"])):
            sweep["run"].append(r["run"])
            sweep["alpha"].append(r["alpha"])
            for reg in ("N", "S", "convergence"):
                sweep[reg].append(r[reg]["exponent"])
                sweep[f"{reg}_conf_int"].append(r[reg]["conf_int"])
            for reg in ("N", "S"):
                sweep[f"theory_{reg}"].append(r[reg]["theory_exponent"])
            sweep["S_from_convergence"].append(r["S"].get("exponent_from_convergence"))
        sweeps.append(sweep)
    if sweeps:
        sweeps.sort(key=lambda sw: -len(set(sw["alpha"])))
        out["alpha_sweep"] = sweeps[0]
        out["alpha_sweeps"] = sweeps
    return out


def summary(result: dict) -> str:
    """A short text table of the fitted exponents against the theory."""
    lines = []
    for r in result["runs"]:
        lines.append(f"{r['run']}  (α = {r['alpha']:g}, {r['n_tasks']} subtasks, "
                     f"{r['steps']} steps{'' if r['complete'] else ', INCOMPLETE'})")
        if r.get("note"):
            lines.append(f"  note: {r['note']}")
        for reg in ("N", "S", "D", "convergence", "learned_vs_D"):
            if reg not in r:
                continue
            f = r[reg]
            if f["exponent"] is None:
                lines.append(f"  {reg:<13} no fit ({f.get('note', '')})")
                continue
            lo, hi = f["conf_int"]
            implied = f.get("exponent_from_convergence")
            lines.append(f"  {reg:<13} exponent {f['exponent']:+.3f}  [{lo:+.3f}, {hi:+.3f}]  "
                         f"theory {f['theory_exponent']:+.3f}  "
                         f"({f['window']['n_points']} points)"
                         + ("" if implied is None else
                            f"  from the convergence slope {implied:+.3f}"))
    return "\n".join(lines)
