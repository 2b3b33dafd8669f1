"""Plots of a ``SimulationResult``: simulated (observed) against theory (predicted)."""
from __future__ import annotations

import numpy as np

import theory
from common.errors import InputError
from common.plotting import axes
from simulate.core import constant_losses

_XLABEL = {"D": "D (training samples)", "S": "S (steps)", "N": "N (parameters)"}


def asymptote(result) -> np.ndarray | None:
    """theory's large-x form of L − L∞ at result.x, less ε_K (the loss the cut at K
    removes, ``truncation_offset``: the finite-K form that the fit also uses), plus L∞;
    NaN where that is not positive, None without a closed form."""
    cfg = result.config
    if not constant_losses(cfg) or cfg.get("N") is not None or cfg.get("noisy"):
        return None
    alpha, tau, a, b = cfg["alpha"], cfg["tau"], cfg["a"], cfg["b"]
    x = result.x
    if cfg["regime"] == "D":
        form = theory.loss_D_asymptote(x, alpha, tau=tau, a=a, b=b)
    elif cfg["regime"] == "S":
        form = theory.loss_S_asymptote(x, alpha, cfg["batch"], tau=tau, rule=cfg["rule"],
                                       a=a, b=b)
    else:
        form = theory.loss_n_asymptote(theory.capacity(x, cfg["C"]), alpha, a=a, b=b)
    form = np.asarray(form, float) - result.truncation_offset()
    return np.where(form > 0, form + cfg["loss_infinity"], np.nan)


def plot_loss(result, ax=None):
    """Simulated mean loss ± 2 standard errors against theory's exact expectation and its
    asymptote, on log-log axes (loss in nats: the per-quantum losses' unit)."""
    ax = axes(ax)
    cfg = result.config
    x = result.x
    what = (f"mean ± 2 SE, {cfg['reps']} realizations" if cfg["reps"] > 1
            else "one realization")
    ax.errorbar(x, result.mean, yerr=2 * np.nan_to_num(result.sem), fmt="o", ms=3,
                capsize=2, label=f"simulated ({what})")
    ax.plot(x, result.theory, "-", label="theory: exact expectation")
    form = asymptote(result)
    if form is not None:
        ax.plot(x, form, "--", color="gray", label="theory: asymptote (finite-K form)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    positive = result.mean[result.mean > 0]
    if positive.size:  # past the finite-K cutoff the exact loss plunges; keep the data in view
        ax.set_ylim(positive.min() / 5, positive.max() * 3)
    ax.set_xlabel(_XLABEL[cfg["regime"]])
    ax.set_ylabel("loss (nats)")
    ax.set_title(f"regime {cfg['regime']}: α = {cfg['alpha']:g}, τ = {cfg['tau']}, "
                 f"K = {cfg['K']:,}")
    ax.legend(fontsize="small")
    return ax


def _local_slopes(x, y):
    """−d log y / d log x between neighbouring points (geometric midpoints), over the
    distinct x in increasing order (a grid may come unsorted or with repeats) where y > 0
    (past the finite-K cutoff the loss can reach 0): what can be drawn of
    ``theory.sliding_exponent``."""
    x, first = np.unique(np.asarray(x, float), return_index=True)
    y = np.asarray(y, float)[first]
    ok = y > 0
    if ok.sum() < 2:
        return np.empty(0), np.empty(0)
    return theory.sliding_exponent(x[ok], y[ok], window=2)


def plot_local_exponent(result, ax=None):
    """Local exponent −d log(L − L∞ + ε_K)/d log x of the simulation and of theory, with
    the predicted asymptotic exponent and the fitted one over the asymptotic window."""
    ax = axes(ax)
    shift = result.truncation_offset() - result.config["loss_infinity"]
    xm, sim = _local_slopes(result.x, result.mean + shift)
    ax.plot(xm, sim, "o", ms=3, label="simulated")
    xt, th = _local_slopes(result.x, result.theory + shift)
    ax.plot(xt, th, "-", label="theory: exact")
    ax.axhline(result.theory_exponent, color="gray", ls="--",
               label=f"predicted {result.theory_exponent:.4f}")
    lo, hi = result.asymptotic_window()
    lo, hi = max(lo, result.x.min()), min(hi, result.x.max())
    if lo < hi:  # the window can miss the grid
        ax.axvspan(lo, hi, color="0.9", zorder=0)
    try:
        fitted = result.exponent()
        ax.axhline(fitted, color="C3", ls=":", label=f"fitted in window {fitted:.4f}")
    except InputError:  # fewer than 3 grid points in the window: no fitted line
        pass
    ax.set_xscale("log")
    ax.set_xlabel(_XLABEL[result.config["regime"]])
    ax.set_ylabel("local exponent")
    ax.legend(fontsize="small")
    return ax
