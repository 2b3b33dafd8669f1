"""Plots of parity runs: observed against the quantization model's predicted slopes.

Each function takes data (and ``ax=None``: a new figure only then), draws, returns the Axes.
The predicted line has the theory's exponent and is anchored where the fit crosses the
geometric middle of its window (the model predicts slopes, not the prefactor).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import matplotlib.pyplot as plt

from common.plotting import axes

from .analysis import LN2, _seed_mean, _threshold_nats


def _ax(ax):
    return axes(ax, figsize=(5.2, 3.8))


def _tidy_log_axes(ax) -> None:
    """Turn off the minor-tick labels of a log axis that spans more than a decade: with
    a few decades matplotlib labels some minor ticks, and they overlap the major ones."""
    from matplotlib.ticker import NullFormatter
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() == "log" and 0 < lo and hi / lo > 10:
            axis.set_minor_formatter(NullFormatter())


def _floats(values) -> np.ndarray:
    """A list from the analysis JSON as floats, None (no value) as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _positive(y):
    return np.where(y > 0, y, np.nan)


def _fit_and_theory(ax, f: dict, sign: float = 1.0, data=None) -> None:
    """Draw the fitted power law over its window and the theory slope through its middle.

    Loss fits were made on loss + ε_K (``truncation_offset``, the finite-K form of the
    model), so both lines are drawn as A·x^-e − ε_K over the raw loss. Without a fit the
    theory slope is drawn through the geometric mean of the observed ``data`` (x, y)."""
    eps = f.get("truncation_offset") or 0.0
    t = sign * f["theory_exponent"]
    if f.get("exponent") is None:
        if data is None:
            return
        x, y = (np.asarray(v, float) for v in data)
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        if ok.sum() < 2:
            return
        xm, ym = np.exp(np.log(x[ok]).mean()), np.exp(np.log(y[ok] + eps).mean())
        xs = np.geomspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xs, _positive(ym * (xs / xm) ** (-t) - eps), "r--", lw=1.2,
                label=f"theory {f['theory_exponent']:+.2f} through the data (no fit)")
        return
    lo, hi = f["window"]["x_min"], f["window"]["x_max"]
    x = np.geomspace(lo, hi, 50)
    e = sign * f["exponent"]
    ci = f["conf_int"]
    shifted = " − ε_K" if eps else ""
    ax.plot(x, _positive(f["amplitude"] * x ** (-e) - eps), "k-", lw=1.2,
            label=f"fit{shifted}: {f['exponent']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]")
    xm = np.sqrt(lo * hi)
    ym = f["amplitude"] * xm ** (-e)
    ax.plot(x, _positive(ym * (x / xm) ** (-t) - eps), "r--", lw=1.2,
            label=f"theory{shifted}: {f['theory_exponent']:+.2f}")


def plot_loss_vs_N(n_params, loss, fitres: dict | None = None, ax=None):
    """Final test loss (nats) against parameters N; fit and theory slope −α."""
    ax = _ax(ax)
    n_params, loss = np.asarray(n_params, float), np.asarray(loss, float)
    dropped = np.zeros(len(loss), bool)
    if fitres and fitres.get("widths") is not None:
        dropped = _dropped(fitres["widths"], fitres)
    ax.loglog(n_params[~dropped], loss[~dropped], "o", color="C0",
              label="observed (final, seed mean)")
    if dropped.any():
        ax.loglog(n_params[dropped], loss[dropped], "o", mfc="none", color="C0",
                  label="observed, still learning at the end (not fitted)")
    if fitres:
        _fit_and_theory(ax, fitres, data=(n_params, loss))
    ax.axhline(LN2, color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="parameters N", ylabel="mean test loss (nats)", title="L(N)")
    ax.legend(fontsize=7)
    _tidy_log_axes(ax)
    return ax


def plot_loss_vs_S(steps, curves, widths, fitres: dict | None = None, ax=None):
    """Test loss (nats) against steps, one curve per width; fit and theory for the widest."""
    ax = _ax(ax)
    cmap = plt.get_cmap("viridis")
    s = np.asarray(steps)
    keep = s > 0
    for j, (w, c) in enumerate(zip(widths, curves)):
        ax.loglog(s[keep], np.asarray(c)[keep], color=cmap(j / max(1, len(widths) - 1)), lw=1,
                  label=f"width {w}" if j in (0, len(widths) - 1) else None)
    if fitres:
        i = int(np.argmax(widths))
        _fit_and_theory(ax, fitres, data=(s[keep], np.asarray(curves[i])[keep]))
    ax.set(xlabel="steps S", ylabel="mean test loss (nats)", title="L(S)")
    ax.legend(fontsize=7)
    _tidy_log_axes(ax)
    return ax


def plot_loss_vs_S_by_D(steps, curves, Ds, ax=None):
    """Test loss (nats) against steps, one curve per training-set size, each minimum marked:
    a size that stopped gaining from more steps turns up after its minimum (it overfits), and
    the L(D) fits read that minimum; one still falling at the last step was step-limited."""
    ax = _ax(ax)
    cmap = plt.get_cmap("viridis")
    s, curves = np.asarray(steps), np.asarray(curves, float)
    keep = s > 0
    for j, (D, c) in enumerate(zip(Ds, curves)):
        color = cmap(j / max(1, len(Ds) - 1))
        ax.loglog(s[keep], c[keep], color=color, lw=1,
                  label=f"D = {D:,}" if j in (0, len(Ds) - 1) else None)
        best = int(np.nanargmin(np.where(keep, c, np.nan)))
        ax.loglog(s[best], c[best], "o", ms=3.5, color=color,
                  label="minimum over training" if j == len(Ds) - 1 else None)
    ax.axhline(LN2, color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="steps S", ylabel="mean test loss (nats)",
           title="L(S) per training-set size D")
    ax.legend(fontsize=7)
    _tidy_log_axes(ax)
    return ax


def _dropped(x, fitres) -> np.ndarray:
    """Which of ``x`` the fit left out as still learning at the end."""
    gone = set(((fitres or {}).get("window") or {}).get("dropped_still_learning", []))
    return np.array([v in gone for v in x], dtype=bool)


def plot_loss_vs_D(D, loss_min, loss_final, fitres: dict | None = None, ax=None):
    """Test loss (nats) against training-set size: minimum over training (fitted, as the
    paper) and final; fit and theory slope −α/(α+1)."""
    ax = _ax(ax)
    D, loss_min = np.asarray(D, float), np.asarray(loss_min, float)
    gone = _dropped(D, fitres)
    ax.loglog(D[~gone], loss_min[~gone], "o", color="C0",
              label="observed: minimum over training")
    if gone.any():
        ax.loglog(D[gone], loss_min[gone], "o", mfc="none", color="C0",
                  label="minimum, still learning at the end (not fitted)")
    ax.loglog(D, loss_final, "x", color="C1", label="observed: final")
    if fitres:
        _fit_and_theory(ax, fitres, data=(D, loss_min))
    ax.set(xlabel="training samples D", ylabel="mean test loss (nats)", title="L(D)")
    ax.legend(fontsize=7)
    _tidy_log_axes(ax)
    return ax


def plot_convergence(frequencies, conv_steps, fitres: dict | None = None, ax=None):
    """Step at which each subtask's loss first falls below the threshold, against its
    frequency; fit and theory slope −1."""
    ax = _ax(ax)
    ok = np.isfinite(conv_steps)
    ax.loglog(np.asarray(frequencies)[ok], np.asarray(conv_steps)[ok], "o", color="C0",
              label="observed")
    if fitres:
        _fit_and_theory(ax, fitres, sign=-1.0,
                        data=(np.asarray(frequencies)[ok], np.asarray(conv_steps)[ok]))
        ax.set_title(f"convergence (loss < {fitres.get('threshold')} {fitres.get('unit')})")
    ax.set(xlabel="subtask frequency", ylabel="convergence step")
    ax.legend(fontsize=7)
    _tidy_log_axes(ax)
    return ax


def plot_learned_vs_D(D, learned, fitres: dict | None = None, ax=None):
    """Number of subtasks learned against D; fit and theory slope 1/(α+1)."""
    ax = _ax(ax)
    D, learned = np.asarray(D, float), np.asarray(learned, float)
    some = learned > 0
    gone = _dropped(D, fitres)
    ax.loglog(D[some & ~gone], learned[some & ~gone], "o", color="C0", label="observed")
    if (some & gone).any():
        ax.loglog(D[some & gone], learned[some & gone], "o", mfc="none", color="C0",
                  label="observed, still learning at the end (not fitted)")
    if (~some).any():
        ax.loglog(D[~some], np.full((~some).sum(), 0.5), "o", mfc="none", color="C0",
                  label="observed: none learned (drawn at 0.5)")
    if fitres:
        _fit_and_theory(ax, fitres, sign=-1.0, data=(D[some], learned[some]))
    ax.set(xlabel="training samples D", ylabel="subtasks learned", title="learned vs D")
    ax.legend(fontsize=7)
    _tidy_log_axes(ax)
    return ax


#: axis labels of each regime's figure: x, y (the loss's unit is filled in)
REGIME_AXES = {"N": ("parameters N", "mean test loss ({unit})"),
               "S": ("steps S", "mean test loss ({unit})"),
               "D": ("training samples D", "minimum test loss ({unit})"),
               "convergence": ("subtask frequency", "convergence step"),
               "learned_vs_D": ("training samples D", "subtasks learned")}


def plot_regime(f: dict, regime: str, ax=None):
    """One regime of an analysis (either method), from its JSON: the observed points, the
    fit over its window and the theory slope through the fit's middle."""
    ax = _ax(ax)
    sign = -1.0 if regime in ("convergence", "learned_vs_D") else 1.0
    unit = "bits" if f.get("method") == "paper" else "nats"
    if "x_all" in f:      # the paper's L(D): the sizes before its starting point, open
        ax.loglog(f["x_all"], f["y_all"], "o", mfc="none", color="C0", label="not fitted")
    y = f["y"] if "y" in f else f["steps"]
    x, y = _floats(f["x"]), _floats(y)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    ax.loglog(x[ok], y[ok], "o", color="C0", ms=4, label=f"observed ({f.get('method')} method)")
    _fit_and_theory(ax, f, sign=sign, data=(x[ok], y[ok]))
    xlabel, ylabel = REGIME_AXES[regime]
    ax.set(xlabel=xlabel, ylabel=ylabel.format(unit=unit),
           title=f"{regime}: {f['window'].get('rule', '')}")
    ax.legend(fontsize=7)
    _tidy_log_axes(ax)
    return ax


def plot_method_comparison(rows, ax=None):
    """Each exponent by our method and the paper's with its interval, beside the theory
    (``rows``: :meth:`MethodComparison.rows`)."""
    ax = _ax(ax)
    for i, r in enumerate(rows):
        ax.plot([i - 0.3, i + 0.3], [r["theory"]] * 2, "r-", lw=2,
                label="theory" if i == 0 else None)
        for dx, name, col in ((-0.1, "quanta", "C0"), (0.1, "paper", "C1")):
            if r[name] is None:
                continue
            lo, hi = r[f"{name}_conf_int"]
            ax.errorbar(i + dx, r[name], yerr=[[r[name] - lo], [hi - r[name]]], fmt="o",
                        color=col, capsize=3,
                        label={"quanta": "ours (ε_K added, window)",
                               "paper": "paper's method (bits, OLS)"}[name] if i == 0 else None)
    ax.set_xticks(range(len(rows)), [f"{r['regime']}" if len({q['run'] for q in rows}) == 1
                                     else f"{r['run']}\n{r['regime']}" for r in rows])
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set(ylabel="exponent (convergence: slope)", title="exponents: theory, ours, the paper's")
    ax.legend(fontsize=7)
    return ax


def plot_heatmap(values, x, xlabel: str, ax=None, log_x: bool = True, predicted=None,
                 predicted_label: str = "predicted"):
    """Subtask (rows, most frequent on top) × ``x`` map of test loss in nats; ``predicted``
    (one number per column: how many of the most frequent subtasks the model says are
    learned there) is drawn as the boundary of the learned region."""
    ax = _ax(ax)
    v = np.asarray(values)
    im = ax.pcolormesh(np.arange(len(x) + 1), np.arange(v.shape[0] + 1), v, cmap="magma_r",
                       vmin=0, vmax=LN2, shading="flat")
    if predicted is not None:
        ax.step(np.arange(len(x) + 1), np.append(predicted, predicted[-1]), where="post",
                color="C0", lw=1.5, ls="--", label=predicted_label)
        ax.legend(fontsize=6, loc="lower left")
    ticks = np.unique(np.linspace(0, len(x) - 1, min(len(x), 6)).astype(int))
    ax.set_xticks(ticks + 0.5, [f"{x[t]:g}" for t in ticks], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, ylabel="subtask (by frequency rank)")
    ax.figure.colorbar(im, ax=ax, label="test loss (nats)")
    return ax


def _rows_of_columns(sweep) -> list[dict]:
    """The seed-mean N and S rows of an ``alpha_sweeps`` entry of the analysis JSON that
    holds only its columns (written before the entries carried ``rows``)."""
    rows = []
    for reg in ("N", "S"):
        for i, (a, e) in enumerate(zip(sweep["alpha"], sweep[reg])):
            if e is not None:
                lo, hi = sweep[f"{reg}_conf_int"][i]
                rows.append(dict(alpha=a, regime=reg, exponent=e, lower=lo, upper=hi,
                                 seed="mean", method=sweep.get("method", "quanta")))
    return rows


def _draw_convergence(ax, sweep, grid) -> None:
    """Minus the slope of convergence step against subtask frequency at each α, beside its
    theory 1 (a subtask is learned after a fixed number of its samples), and the α_S it
    implies, α/((α+1)γ)."""
    a = np.asarray(sweep["alpha"], float)
    ax.plot(grid, np.ones_like(grid), "C3--", lw=1, label="theory −slope of convergence = 1")
    e = -_floats(sweep["convergence"])
    ci = -np.array([[np.nan, np.nan] if c is None else c
                    for c in sweep["convergence_conf_int"]], float)
    lo, hi = np.minimum(ci[:, 0], ci[:, 1]), np.maximum(ci[:, 0], ci[:, 1])
    ax.errorbar(a, e, yerr=[e - lo, hi - e], fmt="o", color="C3", capsize=2,
                label="observed −slope of convergence step")
    if sweep.get("S_from_convergence"):
        ax.plot(a, _floats(sweep["S_from_convergence"]), "^", mfc="none", color="C1", ms=8,
                label="α/((α+1)γ), γ = −slope of convergence")


def plot_exponents_vs_alpha(sweep, ax=None):
    """Measured N, S and D exponents against α beside the model's α and α/(α+1) (Figures 10,
    11): the seed-mean run of each α with its 95 % interval, each seed alone as a small
    cross; our method filled, the paper's open. ``sweep``: :meth:`AlphaSweep.rows`, or an
    ``alpha_sweeps`` entry of the analysis JSON, whose convergence slopes are drawn too
    (theory 1 at every α)."""
    ax = _ax(ax)
    columns = sweep if isinstance(sweep, Mapping) else None
    rows = sweep if columns is None else (columns.get("rows") or _rows_of_columns(columns))
    a = np.array([r["alpha"] for r in rows] + list(columns["alpha"] if columns else []), float)
    grid = np.linspace(0.0, a.max() + 0.1, 100)
    regimes = [g for g in ("N", "S", "D") if any(r["regime"] == g for r in rows)]
    if "N" in regimes:
        ax.plot(grid, grid, "C0--", lw=1, label="theory α_N = α")
    if {"S", "D"} & set(regimes):
        ax.plot(grid, grid / (grid + 1), "k--", lw=1, label="theory α_S = α_D = α/(α+1)")
    colour = dict(N="C0", S="C1", D="C2")
    style = dict(quanta=("o", None, "ours"), paper=("s", "none", "paper's method"))
    for i, reg in enumerate(regimes):
        for j, (method, (marker, face, name)) in enumerate(style.items()):
            dx = 0.004 * (2 * i + j - len(regimes))
            mine = [r for r in rows if r["regime"] == reg and r["method"] == method]
            mean = [r for r in mine if r["seed"] == "mean"]
            if mean:
                x, y = np.array([r["alpha"] for r in mean]) + dx, np.array([r["exponent"] for r in mean])
                err = [y - [r["lower"] for r in mean], [r["upper"] for r in mean] - y]
                ax.errorbar(x, y, yerr=err, fmt=marker, mfc=face, color=colour[reg], capsize=2,
                            label=f"α_{reg}, {name}")
            seeds = [r for r in mine if r["seed"] != "mean"]
            if seeds:
                ax.plot([r["alpha"] + dx for r in seeds], [r["exponent"] for r in seeds], "x",
                        color=colour[reg], ms=4, alpha=0.6)
    if columns is not None and columns.get("convergence"):
        _draw_convergence(ax, columns, grid)
    ax.set(xlabel="α (frequencies ∝ k^-(α+1))", ylabel="measured exponent",
           title="exponents against α (×: one seed)")
    ax.set_xlim(0, a.max() + 0.1)
    # below the axes: the points fill the plot from corner to corner
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return ax


def _predicted_by_step(frequencies, conv_steps, steps):
    """Subtasks learned by each step if subtask k is learned at step c/p_k (the model's
    slope −1), c the geometric mean of step·p over the subtasks that converged; None if
    none did."""
    conv = _floats(conv_steps)
    ok = np.isfinite(conv) & (conv > 0)
    if not ok.any():
        return None
    c = np.exp(np.mean(np.log(conv[ok] * frequencies[ok])))
    return np.searchsorted(np.sort(c / frequencies), steps, side="right")


def _predicted_count(x, counts, exponent: float, n_tasks: int, at):
    """Subtasks learned at each of ``at`` if their number grows like x^exponent (the model:
    ∝ N, or ∝ D^(1/(α+1))), the prefactor the geometric mean over the observed ``counts``
    strictly between 0 and n_tasks; None if there are none."""
    x, counts = np.asarray(x, float), np.asarray(counts, float)
    ok = (counts > 0) & (counts < n_tasks) & (x > 0)
    if not ok.any():
        return None
    c = np.exp(np.mean(np.log(counts[ok]) - exponent * np.log(x[ok])))
    return np.minimum(n_tasks, c * np.asarray(at, float) ** exponent)


def draw(name, plot, *args, **kwargs):
    """(name, Figure) of ``plot(*args, ax=<a new Axes>, **kwargs)``."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    plot(*args, ax=ax, **kwargs)
    return name, fig


def figures(runs, result):
    """Every figure for these runs and their analysis (either method), as (name, Figure)
    pairs, made one at a time (a generator: the caller saves and closes each before the
    next is drawn)."""
    multi = len(runs) > 1
    if result.get("method") == "paper":
        for run, r in zip(runs, result["runs"]):
            tag = f"_{run.path.name}" if multi else ""
            for reg in (reg for reg in REGIME_AXES if reg in r):
                yield draw(f"paper_{reg}{tag}", plot_regime, r[reg], reg)
        return
    threshold = _threshold_nats(result["threshold"], result["unit"])

    for run, r in zip(runs, result["runs"]):
        tag = f"_{run.path.name}" if multi else ""
        n_evals = int(run.metrics["n_evals"])
        steps = run.metrics["steps"][:n_evals]
        keys, mean_loss = _seed_mean(run, "mean_test_loss")
        _, task_loss = _seed_mean(run, "test_loss")
        mean_loss, task_loss = mean_loss[:, :n_evals], task_loss[:, :n_evals]
        widths = [k[0] for k in keys]
        if "N" in r:
            i = int(np.argmax(widths))
            conv = _floats(r["convergence"]["steps"])
            yield draw(f"loss_vs_N{tag}", plot_loss_vs_N, r["N"]["x"], r["N"]["y"], r["N"])
            yield draw(f"loss_vs_S{tag}", plot_loss_vs_S, steps, mean_loss, widths, r["S"])
            yield draw(f"convergence_vs_frequency{tag}", plot_convergence,
                       run.task.frequencies, conv, r["convergence"])
            final_learned = (task_loss[:, -1] < threshold).sum(axis=1)
            yield draw(f"emergence_width{tag}", plot_heatmap, task_loss[:, -1].T, widths,
                       f"width (at step {int(steps[-1])})",
                       predicted=_predicted_count(r["N"]["x"], final_learned, 1.0,
                                                  run.task.n_tasks, r["N"]["x"]),
                       predicted_label="model: learned ∝ parameters N")
            yield draw(f"emergence_steps{tag}", plot_heatmap, task_loss[i].T, steps,
                       f"step (width {widths[i]})",
                       predicted=_predicted_by_step(run.task.frequencies,
                                                    r["convergence"]["steps"], steps),
                       predicted_label="model: learned at step ∝ 1/frequency")
        if "D" in r:
            # the widest width only, as the D analysis
            at = np.flatnonzero(np.array(widths) == max(widths))
            Ds = [keys[j][1] for j in at]
            yield draw(f"loss_vs_D{tag}", plot_loss_vs_D, r["D"]["x"], r["D"]["y"],
                       r["D"]["y_final"], r["D"])
            yield draw(f"loss_vs_S_by_D{tag}", plot_loss_vs_S_by_D, steps, mean_loss[at], Ds)
            yield draw(f"learned_vs_D{tag}", plot_learned_vs_D, r["learned_vs_D"]["x"],
                       r["learned_vs_D"]["y"], r["learned_vs_D"])
            best = np.nanargmin(mean_loss[at], axis=1)
            yield draw(f"emergence_D{tag}", plot_heatmap, task_loss[at, best].T, Ds,
                       f"training samples D (width {max(widths)}, at the best step)",
                       predicted=_predicted_count(r["learned_vs_D"]["x"],
                                                  r["learned_vs_D"]["y"],
                                                  1.0 / (r["alpha"] + 1.0), run.task.n_tasks,
                                                  Ds),
                       predicted_label="model: learned ∝ D^(1/(α+1))")
    if "alpha_sweep" in result:
        yield draw("exponents_vs_alpha", plot_exponents_vs_alpha, result["alpha_sweep"])
