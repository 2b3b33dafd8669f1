"""Plots of the theory's predictions: exact curves with their asymptotes, and local
exponents against the asymptotic exponent. Each function draws on ``ax`` (a new figure
only when ``ax`` is None) and returns the Axes; saving is the command line's job."""
from __future__ import annotations

import numpy as np

import theory
from common.plotting import axes


#: The size of a figure a plot function makes for itself (inches).
FIGSIZE = (5, 4)


def plot_loss(x, loss, asymptote=None, *, xlabel="size", label="exact", ax=None,
              asymptote_label="asymptote"):
    """Exact expected loss (solid) and, if given, its asymptote (dashed), log-log."""
    ax = axes(ax, FIGSIZE)
    line, = ax.loglog(x, loss, label=label)
    if asymptote is not None:
        ax.loglog(x, asymptote, ls="--", color=line.get_color(), alpha=0.7,
                  label=f"{label}: {asymptote_label}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("L − L∞ (nats)")
    ax.legend(fontsize="small")
    return ax


def plot_local_exponent(x, exponent, target=None, *, xlabel="size", label="local", ax=None):
    """−d log(L − L∞)/d log x of a prediction, with the asymptotic exponent dotted."""
    ax = axes(ax, FIGSIZE)
    line, = ax.semilogx(x, exponent, label=label)
    if target is not None:
        ax.axhline(target, ls=":", color=line.get_color(), label=f"{label}: asymptotic {target:.3g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("local exponent −dlog L/dlog x")
    ax.legend(fontsize="small")
    return ax


def plot_predictions(alpha, tau=1, K=None, batch=20_000, axes=None):
    """A 2×2 panel: L(n), E[L(D)], E[L(S)] (both step rules) with asymptotes, and the
    local exponents of all three against α and α/(α+1). Loss is the unlearned mass
    (a = 0, b = 1). With finite K the grids stop a decade past the cutoff (n = K,
    D = τ/p_K), where the loss falls to 0, and the asymptotes are the K = ∞ ones.
    Returns the array of Axes."""
    new = axes is None
    if new:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(2, 2, figsize=(10, 8))
    axes = np.asarray(axes).reshape(-1)
    n_max, D_max = 8.0, 15.0
    if K is not None:
        n_max = min(n_max, np.log10(K))
        D_max = min(D_max, np.log10(10.0 * theory.finite_K_cutoff(alpha, K, tau)))
    n = np.logspace(0, n_max, 60)
    D = np.logspace(0, D_max, 80)
    S = np.logspace(0, max(1.0, D_max - np.log10(batch)), 30)
    asym = "asymptote" if K is None else "asymptote (K = ∞)"
    plot_loss(n, theory.loss_n(n, alpha, K), theory.loss_n_asymptote(n, alpha),
              xlabel="quanta learned n", label="L(n)", ax=axes[0], asymptote_label=asym)
    plot_loss(D, theory.expected_loss_D(D, alpha, tau, K), theory.loss_D_asymptote(D, alpha, tau),
              xlabel="samples D", label=f"E[L(D)], τ={tau}", ax=axes[1], asymptote_label=asym)
    for rule in ("samples", "steps"):
        plot_loss(S, theory.expected_loss_S(S, alpha, batch, tau, rule, K),
                  theory.loss_S_asymptote(S, alpha, batch, tau, rule=rule),
                  xlabel=f"steps S (batch {batch})", label=f"E[L(S)], {rule} rule", ax=axes[2],
                  asymptote_label=asym)
    if tau == 1:
        axes[2].set_title("τ = 1: one occurrence, so the two rules coincide", fontsize="small")
    aD = theory.alpha_D(alpha)
    where = "size (n, D or S)"
    plot_local_exponent(n, theory.local_exponent(lambda x: theory.loss_n(x, alpha, K), n),
                        alpha, xlabel=where, label="L(n)", ax=axes[3])
    plot_local_exponent(D, theory.local_exponent(lambda x: theory.expected_loss_D(x, alpha, tau, K), D),
                        aD, xlabel=where, label="E[L(D)]", ax=axes[3])
    plot_local_exponent(S, theory.local_exponent(
        lambda x: theory.expected_loss_S(x, alpha, batch, tau, "samples", K), S),
        None, xlabel=where, label="E[L(S)], samples rule", ax=axes[3])
    if K is not None:  # past the cutoff the local exponent diverges as the loss falls to 0
        axes[3].set_ylim(0, max(1.0, 2.0 * alpha))
    for ax in axes[:3]:
        bottom, top = ax.get_ylim()
        ax.set_ylim(max(bottom, top * 1e-12), top)
    kname = "∞" if K is None else str(K)
    axes[0].figure.suptitle(f"Quantization model: α = {alpha:g}, τ = {tau}, K = {kname}")
    if new:
        axes[0].figure.tight_layout(rect=(0, 0, 1, 0.96))
    return axes


def plot_compute_optimal(opt, compute=None, ax=None):
    """A :class:`theory.ComputeOptimal`: N*(c) and D*(c) (left axis) and L*(c) − L∞ (right
    axis) against compute c = 6 N D, on log-log axes (default c from 10^6 to 10^24)."""
    from common.plotting import axes

    ax = axes(ax)
    c = np.logspace(6, 24, 50) if compute is None else np.asarray(compute, dtype=float)
    ax.loglog(c, opt.N(c), label=f"N* ∝ c^{opt.N_exponent:.3g} (parameters)")
    ax.loglog(c, opt.D(c), label=f"D* ∝ c^{opt.D_exponent:.3g} (samples)")
    ax.set_xlabel("compute c = 6 N D")
    ax.set_ylabel("compute-optimal N*, D*")
    right = ax.twinx()
    right.loglog(c, opt.L(c) - opt.L_inf, color="C2", ls="--",
                 label=f"L* − L∞ ∝ c^-{opt.L_exponent:.3g}")
    right.set_ylabel("L* − L∞ (nats)")
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize="small")
    ax.set_title(f"Compute-optimal allocation: α = {opt.alpha:g}, τ = {opt.tau}")
    return ax
