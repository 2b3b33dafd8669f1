"""Figures of a :class:`~fit.tokens.result.TokenAnalysis` (each takes ``ax=None`` and returns
the Axes; only the command line saves files). Losses are in the matrix's unit (nats for
cross-entropies computed with natural logs).

Each figure is drawn from the analysis' JSON form (``to_dict()``, the keys of
docs/tokens.md), so a saved ``quanta tokens analyze --json`` file draws the same figures as
the live result (``quanta report`` does that): pass either.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from common.plotting import axes, readable_log_ticks


def as_doc(r) -> Mapping:
    """The analysis as its JSON form: a :class:`TokenAnalysis` is converted, a mapping
    (a loaded ``--json`` file) is taken as it is."""
    return r if isinstance(r, Mapping) else r.to_dict()


def fitted_law(form: str, params: Mapping, x) -> np.ndarray:
    """The mean-loss law ``form`` ('power', 'offset') with its saved public ``params``
    (``mean_loss_fits[form].params``) at ``x``, through ``fit.forms``' own model."""
    from fit.forms import form_spec, to_internal

    spec = form_spec(form)
    theta = to_internal(spec, params)
    pred, _ = spec.model(theta[None, :], (np.log(np.asarray(x, float)),))
    return np.exp(pred[0])


def _xlabel(d) -> str:
    return "N (parameters)" if d["axis"] == "sizes" else "S (steps)"


def _finish_loglog(ax, xlabel: str, ylabel: str):
    """Log-log axes, their labels and the legend; returns ax."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    readable_log_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_mean_loss(r, ax=None):
    """Mean loss per column with its bootstrap interval (observed) and the fitted power law
    and offset form (predicted), log-log."""
    d, ax = as_doc(r), axes(ax)
    x, mean = np.asarray(d["x"], float), np.asarray(d["mean_loss"], float)
    err = np.abs(np.asarray(d["mean_loss_ci"], float).T - mean)
    ax.errorbar(x, mean, yerr=err, fmt="o", ms=4, capsize=2, label="observed mean")
    grid = np.geomspace(x[0], x[-1], 200)
    for form, style in (("power", "--"), ("offset", "-")):
        params = d["mean_loss_fits"][form]["params"]
        ax.plot(grid, fitted_law(form, params, grid), style,
                label=f"{form} fit, e = {params['alpha']:.3g}")
    return _finish_loglog(ax, _xlabel(d), "mean loss per token")


def plot_distribution(r, ax=None, weighted: bool = False):
    """p(L) per column (or L·p(L) with ``weighted``: each loss's share of the mean), as the
    paper's Figure 3, one curve per model or checkpoint, lighter for larger; the losses
    axis spans the bins that hold tokens."""
    import matplotlib

    d, ax = as_doc(r), axes(ax)
    edges = np.asarray(d["distribution"]["edges"])
    centres = np.sqrt(edges[1:] * edges[:-1])
    widths = np.diff(edges)
    cmap = matplotlib.colormaps["viridis"]
    x = d["x"]
    hist = np.asarray(d["distribution"]["counts"], float)
    for j, counts in enumerate(hist):
        density = counts / (d["n_tokens"] * widths)
        y = centres * density if weighted else np.where(counts > 0, density, np.nan)
        ax.plot(centres, y, color=cmap(j / max(1, len(x) - 1)), lw=1, label=f"{x[j]:.3g}")
    ax.set_xscale("log")
    held = np.flatnonzero(hist.sum(0) > 0)
    if held.size:
        ax.set_xlim(edges[held[0]], edges[held[-1] + 1])
    if not weighted:
        ax.set_yscale("log")
    ax.set_xlabel("per-token loss L")
    ax.set_ylabel("L·p(L)" if weighted else "p(L)")
    ax.legend(fontsize=6, title=d["axis"], title_fontsize=7)
    return ax


def plot_fraction_below(r, ax=None):
    """Fraction of tokens below the threshold per column (observed) and the quantization
    model's reading (predicted): 1 − (E + A·x^-e) with the mean loss's exponent e."""
    doc, ax = as_doc(r), axes(ax)
    d = doc["distribution"]
    ax.plot(doc["x"], d["fraction_below"], "o", label="observed")
    if d["predicted_fraction_below"] is not None:
        ax.plot(doc["x"], d["predicted_fraction_below"], "-",
                label="predicted (mean loss's exponent)")
    ax.set_xscale("log")
    ax.set_xlabel(_xlabel(doc))
    ax.set_ylabel(f"fraction of tokens with L < {d['threshold']:.3g}")
    ax.legend(fontsize=8)
    return ax


def plot_drops(r, ax=None):
    """Sharp drops per gap between neighbouring columns (observed) and the counts each
    fitted exponent predicts, P(gap) ∝ x_j^-e − x_{j+1}^-e (predicted)."""
    d, ax = as_doc(r), axes(ax)
    drops = d["drops"]
    mid = np.sqrt(np.asarray(drops["lower"], float) * np.asarray(drops["upper"], float))
    ax.plot(mid, drops["counts"], "o", label="observed sharp drops")
    for key, style in (("exponent_drops", "-"), ("exponent_offset", "--")):
        pred = drops["expected"].get(key)
        if pred is not None:
            ax.plot(mid, pred, style, label=f"predicted, e = {d['estimates'][key]['value']:.3g} "
                                            f"({key.split('_')[1]})")
    return _finish_loglog(ax, f"{_xlabel(d)} where the drop happens (gap midpoint)", "tokens")


def plot_examples(r, ax=None, n: int = 3):
    """A few sampled per-token curves of each kind: sharp (monogenic-like) in red,
    gradual (polygenic-like) in blue."""
    d, ax = as_doc(r), axes(ax)
    for kind, color in (("sharp", "tab:red"), ("gradual", "tab:blue")):
        rows = d["examples"].get(kind, {}).get("losses", [])
        for i, curve in enumerate(rows[:n]):
            ax.plot(d["x"], curve, "-o", ms=3, color=color, alpha=0.8,
                    label=kind if i == 0 else None)
    return _finish_loglog(ax, _xlabel(d), "per-token loss")


def plot_heatmap(r, ax=None):
    """Losses of sampled tokens (rows, ordered by emergence) over the columns: the paper's
    Figure 11 for checkpoints."""
    d, ax = as_doc(r), axes(ax)
    losses = np.asarray(d["heatmap"]["losses"], float)
    if losses.size == 0:
        ax.text(0.5, 0.5, "no token emerges inside the columns", ha="center",
                transform=ax.transAxes)
        return ax
    image = ax.imshow(np.log10(np.maximum(losses, 1e-6)), aspect="auto",
                      interpolation="nearest", cmap="magma")
    x = d["x"]
    ticks = np.unique(np.linspace(0, len(x) - 1, min(4, len(x))).astype(int))
    ax.set_xticks(ticks, [f"{x[t]:.1e}" for t in ticks])
    ax.set_xlabel(_xlabel(d))
    ax.set_ylabel("tokens (sampled, by emergence)")
    ax.figure.colorbar(image, ax=ax, label="log10 loss")
    return ax


def plot_overview(r):
    """All six panels in one figure (what ``quanta tokens analyze --plot`` saves)."""
    import matplotlib.pyplot as plt

    d = as_doc(r)
    fig, grid = plt.subplots(2, 3, figsize=(15, 8.5))
    plot_mean_loss(d, grid[0, 0])
    plot_distribution(d, grid[0, 1])
    plot_distribution(d, grid[0, 2], weighted=True)
    plot_fraction_below(d, grid[1, 0])
    plot_drops(d, grid[1, 1])
    (plot_heatmap if d["axis"] == "steps" else plot_examples)(d, grid[1, 2])
    fig.tight_layout()
    return fig
