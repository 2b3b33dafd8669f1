"""Plots for QDG: rank-frequency of cluster sizes, estimated against true α, QDG on parity
over training. Each takes data and ``ax=None``, draws, and returns the Axes."""
from __future__ import annotations

import numpy as np

from common.errors import InputError
from common.plotting import axes


#: The size of a figure a plot function makes for itself (inches).
FIGSIZE = (5.5, 4.2)


def plot_rank_frequency(sizes_by_k: dict, alpha_true: float | None = None, alpha_hat=None,
                        ax=None, true_label: str = "planted clusters"):
    """Cluster size against rank (log-log) for each K, their envelope, the true sizes
    (key ``"true"``: planted clusters, or subtasks for a parity run) and the predicted
    slope −(α+1) through the largest size."""
    from fit.sizes import rank_curve

    from .estimators import envelope
    curves = {k: rank_curve(v) for k, v in sizes_by_k.items() if str(k) != "true"}
    if not curves:
        raise InputError("sizes_by_k: no clustering to plot (only 'true' sizes or none)")
    ax = axes(ax, FIGSIZE)
    for k, s in curves.items():
        ax.loglog(np.arange(1, len(s) + 1), s, lw=1, alpha=0.6, label=f"K={k}")
    env = envelope(list(curves.values()))
    r = np.arange(1, len(env) + 1)
    ax.loglog(r, env, "k-", lw=2, label="envelope")
    if "true" in sizes_by_k:
        t = np.asarray(sizes_by_k["true"], float)
        t = t[t > 0]
        ax.loglog(np.arange(1, len(t) + 1), t, "o", ms=3, mfc="none", color="gray",
                  label=true_label)
    if alpha_true is not None:
        ax.loglog(r, env[0] * r ** -(alpha_true + 1.0), "r--",
                  label=f"predicted slope −(α+1), α={alpha_true:g}")
    if alpha_hat is not None:
        ax.loglog(r, env[0] * r ** -(alpha_hat + 1.0), "b:", label=f"fitted α̂={alpha_hat:.2f}")
    ax.set_xlabel("rank of cluster")
    ax.set_ylabel("cluster size (samples)")
    ax.legend(fontsize=7)
    return ax


def plot_alpha_recovery(runs, estimator: str, k: int = 0, calibration: dict | None = None,
                        ax=None):
    """Estimated α̂ against true α (mean ± SD over reps) for each (dim, σ) setting of a bias
    study, with the prediction of an unbiased estimator (α̂ = α) and the calibration line."""
    ax = axes(ax, FIGSIZE)
    d = runs[(runs.estimator == estimator) & (runs.k == k)]
    for (dim, sigma), g in d.groupby(["dim", "sigma"]):
        m = g.groupby("alpha_true").alpha_hat.agg(["mean", "std"]).reset_index()
        ax.errorbar(m.alpha_true, m["mean"], yerr=m["std"], marker="o", ms=4, capsize=2,
                    label=f"d={dim}, σ={sigma:g}")
    lims = np.array([0.0, max(1.6, float(d.alpha_true.max()) + 0.1)])
    ax.plot(lims, lims, "k--", lw=1, label="predicted (unbiased): α̂ = α")
    if calibration is not None and calibration.get("c1") is not None:
        ax.plot(lims, calibration["c0"] + calibration["c1"] * lims, "r:", lw=1.5,
                label=f"calibration α̂ = {calibration['c0']:.2f} + {calibration['c1']:.2f}α")
    ax.set_xlabel("true α")
    ax.set_ylabel("estimated α̂")
    ax.set_title(f"{estimator}" + (f", K={k}" if k else ", all K"), fontsize=9)
    ax.legend(fontsize=6)
    return ax


def plot_bias(summary, ax=None):
    """Bias (mean α̂ − α) against true α for each estimator (averaged over settings)."""
    ax = axes(ax, FIGSIZE)
    # one colour per estimator, one marker and dash per K: more lines than a colour cycle
    estimators = list(dict.fromkeys(summary["estimator"]))
    ks = sorted({k for k in summary["k"] if k})
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("v", "-."), ("D", (0, (5, 1)))]
    for (est, k), g in summary.groupby(["estimator", "k"]):
        m = g.groupby("alpha_true").bias.mean()
        marker, dash = styles[ks.index(k) % len(styles)] if k else styles[0]
        ax.plot(m.index, m.values, marker=marker, ls=dash, ms=3,
                color=f"C{estimators.index(est) % 10}",
                label=f"{est}" + (f" K={k}" if k else ""))
    ax.axhline(0, color="k", lw=1, ls="--", label="unbiased (predicted)")
    ax.set_xlabel("true α")
    ax.set_ylabel("bias of α̂ (α̂ − α)")
    ax.legend(fontsize=6, ncol=2)
    return ax


def plot_parity_checkpoints(result: dict, ax=None):
    """ARI and NMI of QDG clusters against the true subtasks at each checkpoint (and, where
    the result has them, ARI against (subtask, label) pairs and of the margin gradients)."""
    ax = axes(ax, FIGSIZE)
    rows = [r for r in result["checkpoints"] if r.get("ari") is not None]
    steps = np.array([max(r["step"], 1) for r in rows])
    ax.semilogx(steps, [r["ari"] for r in rows], "o-", label="ARI (subtasks)")
    ax.semilogx(steps, [r["nmi"] for r in rows], "s-", label="NMI (subtasks)")
    def pair_ari(r):               # keys are ints in memory, strings after JSON
        by_k, k2 = r["ari_subtask_label_by_k"], 2 * r["n_subtasks_present"]
        return by_k.get(k2, by_k.get(str(k2), np.nan))
    ax.semilogx(steps, [pair_ari(r) for r in rows], "^--",
                label="ARI (subtask, label) at K = 2×subtasks")
    if all("ari_margin_by_k" in r for r in rows):   # label sign removed (margin gradients)
        def margin_ari(r):
            by_k, k = r["ari_margin_by_k"], r["k_eval"]
            return by_k.get(k, by_k.get(str(k), np.nan))
        ax.semilogx(steps, [margin_ari(r) for r in rows], "v:",
                    label="ARI (subtasks), margin gradients (label sign removed)")
    thr = result.get("loss_threshold")
    kept = "all samples" if thr is None else f"samples with loss < {thr:g} nats"
    ax.set_title(f"QDG on network {result['network']} (width {result['width']}), {kept}",
                 fontsize=9)
    ax.set_xlabel("training step")
    ax.set_ylabel("agreement with true subtasks")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    return ax
