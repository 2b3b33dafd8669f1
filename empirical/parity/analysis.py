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
``window[1]`` times ln 2 (the loss of chance guessing), i.e. off both plateaus.
"""
from __future__ import annotations

import math

import numpy as np

import fit as fitting

from .run import Run

LN2 = math.log(2.0)


def _power_fit(x, y, window: dict, theory: float, sign: float = 1.0) -> dict:
    """Fit y = A x^-e on the points given; ``sign=-1`` reports the slope d log y / d log x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[ok], y[ok]
    out = dict(exponent=None, conf_int=None, window=dict(window, n_points=int(len(x))),
               theory_exponent=float(theory), amplitude=None)
    if len(x) >= 3 and np.unique(x).size >= 2:
        window_used = dict(out["window"], x_min=float(x.min()), x_max=float(x.max()))
        res = fitting.power_law(x, y)
        lo, hi = res.conf_int()["alpha"]
        e = float(res.params["alpha"])
        out.update(exponent=sign * e, amplitude=float(res.params["A"]), window=window_used,
                   conf_int=sorted([sign * float(lo), sign * float(hi)]))
    else:
        out["note"] = "fewer than 3 points in the window: no fit"
    return out


def _in_window(y, window) -> np.ndarray:
    lo, hi = window
    return (y > lo * LN2) & (y < hi * LN2)


def _seed_mean(run: Run, key: str):
    """Average a (network × ...) metric over seeds: returns (keys (width, D), array)."""
    m = run.metrics
    keys = sorted({(int(w), int(d)) for w, d in zip(m["widths"], m["D"])},
                  key=lambda t: (t[1], t[0]))
    rows = [m[key][(m["widths"] == w) & (m["D"] == d)].mean(0) for w, d in keys]
    return keys, np.array(rows)


def _threshold_nats(threshold: float, unit: str) -> float:
    if unit not in ("nats", "bits"):
        raise ValueError(f"unit must be 'nats' or 'bits', got {unit!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    return threshold * LN2 if unit == "bits" else threshold


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
        raise ValueError(f"run {run.path} has no metrics.npz yet")
    window = tuple(float(v) for v in window)
    if not 0 <= window[0] < window[1]:
        raise ValueError(f"window must satisfy 0 <= LO < HI, got {window}")
    thr = _threshold_nats(threshold, unit)
    alpha = run.config.task.alpha
    n_evals = int(m["n_evals"])
    steps = m["steps"][:n_evals]
    rule = f"loss between {window[0]:g} and {window[1]:g} × ln 2 nats"
    out = dict(run=str(run.path), alpha=alpha, n_tasks=run.config.task.n_tasks,
               n_bits=run.config.task.n_bits, k=run.config.task.k,
               steps=int(steps[-1]), complete=bool(n_evals == len(m["steps"])),
               device=run.config.train.device, precision=run.config.train.precision,
               loss_unit="nats")
    keys, mean_loss = _seed_mean(run, "mean_test_loss")
    mean_loss = mean_loss[:, :n_evals]
    _, task_loss = _seed_mean(run, "test_loss")
    task_loss = task_loss[:, :n_evals]
    widths = np.array([k[0] for k in keys])
    Ds = np.array([k[1] for k in keys])
    n_params = np.array([run.task.n_params(w, run.config.model.depth) for w in widths])
    freqs = run.task.frequencies
    online = np.all(Ds == 0)

    if online:
        final = mean_loss[:, -1]
        sel = _in_window(final, window)
        out["N"] = _power_fit(n_params[sel], final[sel],
                              dict(variable="parameters N", rule=rule, loss="final"), alpha)
        out["N"].update(x=n_params.tolist(), y=final.tolist(), widths=widths.tolist())
        i = int(np.argmax(widths))
        curve = mean_loss[i]
        sel = _in_window(curve, window) & (steps > 0)
        out["S"] = _power_fit(steps[sel], curve[sel],
                              dict(variable="steps S", rule=rule, width=int(widths[i])),
                              alpha / (alpha + 1))
        per_width = []
        for j, w in enumerate(widths):
            sj = _in_window(mean_loss[j], window) & (steps > 0)
            f = _power_fit(steps[sj], mean_loss[j][sj], dict(rule=rule), alpha / (alpha + 1))
            per_width.append(dict(width=int(w), exponent=f["exponent"], conf_int=f["conf_int"]))
        out["S"]["per_width"] = per_width
        conv = convergence_steps(task_loss[i], steps, thr)
        ok = np.isfinite(conv) & (conv > 0)
        out["convergence"] = _power_fit(
            freqs[ok], conv[ok], dict(variable="subtask frequency", width=int(widths[i]),
                                      rule=f"subtasks whose loss drops below {threshold:g} "
                                           f"{unit} after step 0"), -1.0, sign=-1.0)
        out["convergence"].update(threshold=threshold, unit=unit,
                                  n_converged=int(np.isfinite(conv).sum()),
                                  steps=[None if not np.isfinite(c) else float(c) for c in conv])
    else:
        best = np.nanargmin(mean_loss, axis=1)
        lmin = mean_loss[np.arange(len(keys)), best]
        final = mean_loss[:, -1]
        w = int(widths.max())
        at = widths == w
        sel = at & _in_window(lmin, window)
        out["D"] = _power_fit(Ds[sel], lmin[sel],
                              dict(variable="training-set size D", rule=rule, width=w,
                                   loss="minimum over training"), alpha / (alpha + 1))
        fin = _power_fit(Ds[at & _in_window(final, window)], final[at & _in_window(final, window)],
                         dict(rule=rule, loss="final"), alpha / (alpha + 1))
        out["D"].update(loss="minimum over training (as the paper)", x=Ds[at].tolist(),
                        y=lmin[at].tolist(), y_final=final[at].tolist(),
                        exponent_final=fin["exponent"], conf_int_final=fin["conf_int"])
        learned = (task_loss[np.arange(len(keys)), best] < thr).sum(1)
        selL = at & (learned > 0) & (learned < run.config.task.n_tasks)
        out["learned_vs_D"] = _power_fit(
            Ds[selL], learned[selL], dict(variable="training-set size D", width=w,
                                          rule="0 < learned subtasks < n_tasks"),
            1 / (alpha + 1), sign=-1.0)
        out["learned_vs_D"].update(threshold=threshold, unit=unit, x=Ds[at].tolist(),
                                   y=learned[at].tolist(),
                                   at="eval step of minimum mean test loss")
    return out


def analyze(runs, threshold: float = 0.1, unit: str = "nats", window=(0.05, 0.9)) -> dict:
    """Analyse one or several runs; several α give the ``alpha_sweep`` summary."""
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    per_run = [analyze_run(r, threshold, unit, window) for r in runs]
    out: dict = dict(runs=per_run, threshold=threshold, unit=unit, window=list(window))
    online = [r for r in per_run if "N" in r]
    alphas = sorted({r["alpha"] for r in online})
    if len(alphas) >= 2:
        sweep = dict(alpha=[], N=[], N_conf_int=[], S=[], S_conf_int=[],
                     theory_N=[], theory_S=[])
        for r in sorted(online, key=lambda r: r["alpha"]):
            sweep["alpha"].append(r["alpha"])
            for reg in ("N", "S"):
                sweep[reg].append(r[reg]["exponent"])
                sweep[f"{reg}_conf_int"].append(r[reg]["conf_int"])
                sweep[f"theory_{reg}"].append(r[reg]["theory_exponent"])
        out["alpha_sweep"] = sweep
    return out


def summary(result: dict) -> str:
    """A short text table of the fitted exponents against the theory."""
    lines = []
    for r in result["runs"]:
        lines.append(f"{r['run']}  (α = {r['alpha']:g}, {r['n_tasks']} subtasks, "
                     f"{r['steps']} steps{'' if r['complete'] else ', INCOMPLETE'})")
        for reg in ("N", "S", "D", "convergence", "learned_vs_D"):
            if reg not in r:
                continue
            f = r[reg]
            if f["exponent"] is None:
                lines.append(f"  {reg:<13} no fit ({f.get('note', '')})")
                continue
            lo, hi = f["conf_int"]
            lines.append(f"  {reg:<13} exponent {f['exponent']:+.3f}  [{lo:+.3f}, {hi:+.3f}]  "
                         f"theory {f['theory_exponent']:+.3f}  "
                         f"({f['window']['n_points']} points)")
    return "\n".join(lines)
