"""Figures of a :class:`~fit.tokens.result.TokenAnalysis` (each takes ``ax=None`` and returns
the Axes; only the command line saves files). Losses are in the matrix's unit (nats for
cross-entropies computed with natural logs)."""
from __future__ import annotations

import numpy as np

from common.plotting import axes


def _xlabel(r) -> str:
    return "N (parameters)" if r.axis == "sizes" else "S (steps)"


def _finish_loglog(ax, xlabel: str, ylabel: str):
    """Log-log axes, their labels and the legend; returns ax."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_mean_loss(r, ax=None):
    """Mean loss per column with its bootstrap interval (observed) and the fitted power law
    and offset form (predicted), log-log."""
    ax = axes(ax)
    ci = r.mean_loss_interval()
    err = np.abs(ci.T - r.mean_loss)
    ax.errorbar(r.x, r.mean_loss, yerr=err, fmt="o", ms=4, capsize=2, label="observed mean")
    grid = np.geomspace(r.x[0], r.x[-1], 200)
    for form, style in (("power", "--"), ("offset", "-")):
        res = r.fits[form]
        label = f"{form} fit, e = {res.params['alpha']:.3g}"
        ax.plot(grid, res.predict(grid), style, label=label)
    return _finish_loglog(ax, _xlabel(r), "mean loss per token")


def plot_distribution(r, ax=None, weighted: bool = False):
    """p(L) per column (or L·p(L) with ``weighted``: each loss's share of the mean), as the
    paper's Figure 3, one curve per model or checkpoint, darker for larger."""
    import matplotlib

    ax = axes(ax)
    edges = np.asarray(r.distribution["edges"])
    centres = np.sqrt(edges[1:] * edges[:-1])
    widths = np.diff(edges)
    cmap = matplotlib.colormaps["viridis"]
    for j, counts in enumerate(np.asarray(r.distribution["counts"], float)):
        density = counts / (r.n_tokens * widths)
        y = centres * density if weighted else np.where(counts > 0, density, np.nan)
        ax.plot(centres, y, color=cmap(j / max(1, len(r.x) - 1)), lw=1,
                label=f"{r.x[j]:.3g}")
    ax.set_xscale("log")
    if not weighted:
        ax.set_yscale("log")
    ax.set_xlabel("per-token loss L")
    ax.set_ylabel("L·p(L)" if weighted else "p(L)")
    ax.legend(fontsize=6, title=r.axis, title_fontsize=7)
    return ax


def plot_fraction_below(r, ax=None):
    """Fraction of tokens below the threshold per column (observed) and the quantization
    model's reading (predicted): 1 − (E + A·x^-e) with the mean loss's exponent e."""
    ax = axes(ax)
    d = r.distribution
    ax.plot(r.x, d["fraction_below"], "o", label="observed")
    if d["predicted_fraction_below"] is not None:
        ax.plot(r.x, d["predicted_fraction_below"], "-",
                label="predicted (mean loss's exponent)")
    ax.set_xscale("log")
    ax.set_xlabel(_xlabel(r))
    ax.set_ylabel(f"fraction of tokens with L < {d['threshold']:.3g}")
    ax.legend(fontsize=8)
    return ax


def plot_drops(r, ax=None):
    """Sharp drops per gap between neighbouring columns (observed) and the counts each
    fitted exponent predicts, P(gap) ∝ x_j^-e − x_{j+1}^-e (predicted)."""
    ax = axes(ax)
    lower, upper = np.asarray(r.drops["lower"]), np.asarray(r.drops["upper"])
    mid = np.sqrt(lower * upper)
    ax.plot(mid, r.drops["counts"], "o", label="observed sharp drops")
    for key, style in (("exponent_drops", "-"), ("exponent_offset", "--")):
        pred = r.drops["expected"].get(key)
        if pred is not None:
            ax.plot(mid, pred, style, label=f"predicted, e = {r.estimates[key]:.3g} "
                                            f"({key.split('_')[1]})")
    return _finish_loglog(ax, f"{_xlabel(r)} where the drop happens (gap midpoint)", "tokens")


def plot_examples(r, ax=None, n: int = 3):
    """A few sampled per-token curves of each kind: sharp (monogenic-like) in red,
    gradual (polygenic-like) in blue."""
    ax = axes(ax)
    for kind, color in (("sharp", "tab:red"), ("gradual", "tab:blue")):
        rows = r.examples.get(kind, {}).get("losses", [])
        for i, curve in enumerate(rows[:n]):
            ax.plot(r.x, curve, "-o", ms=3, color=color, alpha=0.8,
                    label=kind if i == 0 else None)
    return _finish_loglog(ax, _xlabel(r), "per-token loss")


def plot_heatmap(r, ax=None):
    """Losses of sampled tokens (rows, ordered by emergence) over the columns: the paper's
    Figure 11 for checkpoints."""
    ax = axes(ax)
    losses = np.asarray(r.heatmap["losses"], float)
    if losses.size == 0:
        ax.text(0.5, 0.5, "no token emerges inside the columns", ha="center",
                transform=ax.transAxes)
        return ax
    image = ax.imshow(np.log10(np.maximum(losses, 1e-6)), aspect="auto",
                      interpolation="nearest", cmap="magma")
    ticks = np.unique(np.linspace(0, len(r.x) - 1, min(4, len(r.x))).astype(int))
    ax.set_xticks(ticks, [f"{r.x[t]:.1e}" for t in ticks])
    ax.set_xlabel(_xlabel(r))
    ax.set_ylabel("tokens (sampled, by emergence)")
    ax.figure.colorbar(image, ax=ax, label="log10 loss")
    return ax


def plot_overview(r):
    """All six panels in one figure (what ``quanta tokens analyze --plot`` saves)."""
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(2, 3, figsize=(15, 8.5))
    plot_mean_loss(r, grid[0, 0])
    plot_distribution(r, grid[0, 1])
    plot_distribution(r, grid[0, 2], weighted=True)
    plot_fraction_below(r, grid[1, 0])
    plot_drops(r, grid[1, 1])
    (plot_heatmap if r.axis == "steps" else plot_examples)(r, grid[1, 2])
    fig.tight_layout()
    return fig
