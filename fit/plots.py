"""Plots of fits. Each takes data and ``ax=None``, draws there (a new figure only when ax is
None) and returns the Axes; nothing is saved or shown here."""
from __future__ import annotations

import numpy as np

from common.plotting import axes
from fit.forms import JOINT_FORMS


#: The size of a figure a plot function makes for itself (inches).
FIGSIZE = (5, 3.8)


def _bootstrap_theta(result):
    """Internal parameters of the bootstrap refits (B, p), or None."""
    if result.bootstrap_params is None:
        return None
    spec = result.spec
    cols = [np.log(result.bootstrap_params[k]) if k in spec.log_params
            else result.bootstrap_params[k] for k in spec.public]
    return np.column_stack(cols) if len(cols[0]) else None


def prediction_band(result, x, x2=None, level=None):
    """Pointwise bootstrap percentile band (low, high) of the fitted curve at x (None
    without a bootstrap)."""
    theta = _bootstrap_theta(result)
    if theta is None:
        return None
    level = result.level if level is None else level
    X = result._design(x, x2)
    pred = np.exp(result.spec.model(theta, X)[0])
    tail = 50 * (1 - level)
    return tuple(np.percentile(pred, [tail, 100 - tail], axis=0))


def plot_fit(result, ax=None, theory=None, n_grid=200, x2_values=None, units="nats"):
    """Data, fitted curve and its bootstrap band on log-log axes.

    ``theory``: optional (x, loss) of the quantization model's prediction, drawn beside the
    fit. Joint forms draw one curve per value of ``x2_values`` (default: five of the data's
    distinct x2, evenly spread) with the data coloured by x2.
    """
    ax = axes(ax, FIGSIZE)
    x = result.x
    grid = np.geomspace(x.min(), x.max(), n_grid)
    if result.form in JOINT_FORMS:
        import matplotlib as mpl
        d = result.x2
        u = np.unique(d)  # curves at x2 values the data has, so each row has its curve
        vals = u if u.size <= 5 else u[np.round(np.linspace(0, u.size - 1, 5)).astype(int)]
        vals = vals if x2_values is None else np.asarray(x2_values, dtype=float)
        norm = mpl.colors.LogNorm(d.min(), d.max())
        cmap = mpl.colormaps["viridis"]
        ax.scatter(x, result.y, c=cmap(norm(d)), s=12, label="data (colour: x2)")
        for v in vals:
            ax.plot(grid, result.predict(grid, np.full_like(grid, v)), color=cmap(norm(v)),
                    lw=1.2)
            band = prediction_band(result, grid, np.full_like(grid, v))
            if band is not None:
                ax.fill_between(grid, *band, color=cmap(norm(v)), alpha=0.2, lw=0)
        ax.plot([], [], color="k", label=f"{result.form} fit (lines: x2 = {', '.join(f'{v:.2g}' for v in vals)})")
    else:
        ax.scatter(x, result.y, s=14, color="C0", label="observed", zorder=3)
        name = "alpha2" if result.form == "broken" else "alpha"
        a, ci = result.params[name], result.conf_int()
        lab = f"{result.form} fit, {name} = {a:.3g}" + (
            " [{:.3g}, {:.3g}]".format(*ci.loc[name]) if name in ci.index else "")
        ax.plot(grid, result.predict(grid), color="C1", label=lab)
        band = prediction_band(result, grid)
        if band is not None:
            ax.fill_between(grid, *band, color="C1", alpha=0.25, lw=0,
                            label=f"{result.level:.0%} bootstrap band")
    if theory is not None:
        tx, ty = theory
        ax.plot(tx, ty, color="k", ls="--", lw=1, label="quantization model")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_xlabel(result))
    ax.set_ylabel(f"loss ({units})")
    ax.legend(fontsize=7)
    return ax


_VARIABLES = {"N": "parameters N", "D": "training samples D", "S": "steps S"}


def _xlabel(result) -> str:
    return _VARIABLES.get(result.config.get("variable"), "x")


def plot_residuals(result, ax=None):
    """Log residuals (log y − log fitted) against x, with the Huber threshold if used.
    With ``sigma`` the fit weighs residual i by y_i/σ_i and the threshold applies to that
    weighted residual, so that is what is drawn."""
    ax = axes(ax, FIGSIZE)
    ax.axhline(0, color="k", lw=0.8)
    weighted = result.sigma is not None
    r = result.resid * (result.y / result.sigma if weighted else 1.0)
    ax.scatter(result.x, r, s=12)
    if result.loss == "huber":
        d = result.config["delta"]
        for s in (-d, d):
            ax.axhline(s, color="grey", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(_xlabel(result))
    ax.set_ylabel("weighted log residual (y/σ)(log y − log fit)" if weighted
                  else "log residual (log y − log fit)")
    return ax


def plot_local_exponent(x, y, window=5, offset=0.0, ax=None, expected=None, label=None):
    """The sliding-window exponent of the data, with the expected asymptote if given."""
    from fit.diagnostics import local_exponent

    ax = axes(ax, FIGSIZE)
    xm, ex = local_exponent(x, y, window=window, offset=offset)
    ax.plot(xm, ex, marker="o", ms=3, label=label or f"local exponent (window {window})")
    if expected is not None:
        ax.axhline(expected, color="k", ls="--", lw=1, label=f"predicted {expected:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("x")
    ax.set_ylabel("−d log L / d log x")
    ax.legend(fontsize=7)
    return ax


def plot_literature(points, ax=None, show_paper_swap=True):
    """Published α_D against α_N with the model's α_D = α_N/(α_N+1) (the paper's Figure 18).

    ``points``: :func:`fit.literature.figure18_points`. The pair Figure 18 drew swapped is
    shown where the paper put it as a hollow marker joined to its corrected position.
    """
    import theory

    ax = axes(ax, FIGSIZE)
    for i, (label, grp) in enumerate(points.groupby("label", sort=False)):
        ax.scatter(grp["alpha_N"], grp["alpha_D"], s=22, color=f"C{i}", label=label, zorder=3)
        if show_paper_swap:
            for rec in grp[grp["swapped_in_paper"]].to_dict("records"):
                ax.scatter(rec["paper_alpha_N"], rec["paper_alpha_D"], s=22, facecolor="none",
                           edgecolor=f"C{i}", zorder=3, label=f"{label} as drawn in the paper")
                ax.annotate("", xy=(rec["alpha_N"], rec["alpha_D"]),
                            xytext=(rec["paper_alpha_N"], rec["paper_alpha_D"]),
                            arrowprops=dict(arrowstyle="->", color=f"C{i}", lw=0.8))
    aN = np.geomspace(5e-3, 10, 300)
    ax.plot(aN, [theory.alpha_D(a) for a in aN], color="k",
            label=r"model: $\alpha_D = \alpha_N/(\alpha_N+1)$")
    ax.plot(aN, aN, color="grey", ls="--", label=r"$\alpha_D = \alpha_N$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(5e-3, 10)
    ax.set_ylim(5e-3, 10)
    ax.set_xlabel(r"parameter exponent $\alpha_N$")
    ax.set_ylabel(r"data exponent $\alpha_D$")
    ax.legend(fontsize=6, loc="upper left")
    return ax


def plot_rank_frequency(sizes, result=None, ax=None, label="observed"):
    """Sizes against rank on log-log axes, with the fitted slope over its rank window
    (for the envelope method pass the normalised envelope, what it fits)."""
    ax = axes(ax, FIGSIZE)
    s = np.sort(np.asarray(sizes, dtype=float))[::-1]
    s = s[s > 0]
    r = np.arange(1, len(s) + 1)
    ax.plot(r, s, marker=".", ls="none", ms=3, label=label)
    if result is not None:
        lo, hi = result.rank_window
        rr = np.geomspace(lo, hi, 50)
        a = result.rank_exponent
        c = np.exp(np.mean(np.log(s[lo - 1:hi]) + a * np.log(r[lo - 1:hi])))
        ax.plot(rr, c * rr ** -a, color="C1",
                label=f"{result.method}: slope −{a:.3g}, alpha = {result.alpha_hat:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("size")
    ax.legend(fontsize=7)
    return ax


def plot_power_law_ccdf(result, ax=None):
    """Empirical P(S ≥ s) of a :class:`fit.tails.PowerLawTail`'s samples (observed)
    against the fitted tail (ζ(γ, s)/ζ(γ, x_min), or (s/x_min)^(1-γ) for a continuous one)
    scaled by the tail's share (predicted), on log-log axes (Clauset, Shalizi & Newman 2009,
    Fig. 1)."""
    from common.errors import InputError
    from common.plotting import axes

    if result.samples is None:
        raise InputError("samples: this power-law tail was built without its data")
    ax = axes(ax)
    s = np.sort(np.asarray(result.samples, dtype=float))
    vals, first = np.unique(s, return_index=True)
    ax.loglog(vals, 1.0 - first / s.size, "o", ms=3, mfc="none", label="observed P(S ≥ s)")
    tail = vals[vals >= result.xmin]
    share = result.n_tail / result.n
    ax.loglog(tail, share * result.ccdf(tail), color="C1",
              label=f"power law, γ = {result.gamma:.3g}, x_min = {result.xmin:g}")
    ax.set_xlabel("size s (count)" if result.discrete else "size s")
    ax.set_ylabel("P(S ≥ s)")
    ax.legend(fontsize=7)
    return ax


def plot_consistency(result, ax=None):
    """A :class:`fit.consistency.Consistency`: the fitted (α_N, α_D) (observed) with its
    bootstrap draws and percentile intervals, against the model's α_D = α_N/(α_N+1)
    (predicted)."""
    import theory
    from common.plotting import axes

    ax = axes(ax)
    if result.draws is not None:
        ax.scatter(result.draws["alpha_N"], result.draws["alpha_D"], s=3, color="C0",
                   alpha=0.15, lw=0, label=f"bootstrap draws ({result.n_samples})")
    ci = result.conf_int()
    err = [[abs(result.params[k] - ci.loc[k, e]) for e in ("lower", "upper")]
           if k in ci.index else [0.0, 0.0] for k in ("alpha_N", "alpha_D")]
    ax.errorbar([result.alpha_N], [result.alpha_D], xerr=np.array(err[0])[:, None],
                yerr=np.array(err[1])[:, None], fmt="o", color="C3", capsize=3,
                label=f"fitted (α_N, α_D), {result.level:.0%} intervals")
    hi = max(2.0 * result.alpha_N, 1.0) if np.isfinite(result.alpha_N) else 1.0
    aN = np.linspace(1e-3, hi, 200)
    ax.plot(aN, [theory.alpha_D(a) for a in aN], color="k",
            label=r"model: $\alpha_D = \alpha_N/(\alpha_N+1)$")
    ax.set_xlabel(r"parameter exponent $\alpha_N$")
    ax.set_ylabel(r"data exponent $\alpha_D$")
    ax.legend(fontsize=7)
    return ax


def plot_extrapolation(result, ax=None):
    """A :class:`fit.diagnostics.Extrapolation`: the training points and the fit on them,
    carried to the held-out largest scales (predicted, with the bootstrap band where the
    fit has one), beside the held-out observations, on log-log axes."""
    from common.plotting import axes

    ax = axes(ax)
    res = result.fit
    ax.scatter(res.x, res.y, s=14, color="C0", label=f"training points ({result.n_train})")
    ax.scatter(result.x_test, result.y_test, s=22, color="C3", zorder=3,
               label="held out: observed")
    if result.x2_test is None:
        grid = np.geomspace(min(res.x.min(), result.x_test.min()),
                            max(res.x.max(), result.x_test.max()), 200)
        ax.plot(grid, res.predict(grid), color="C1", label=f"{res.form} fit, extended")
        band = prediction_band(res, grid)
        if band is not None:
            ax.fill_between(grid, *band, color="C1", alpha=0.25, lw=0,
                            label=f"{res.level:.0%} bootstrap band")
    else:
        ax.scatter(result.x_test, result.y_pred, marker="x", color="C1", zorder=3,
                   label=f"held out: predicted by the {res.form} fit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_xlabel(res))
    ax.set_ylabel("loss (nats)")
    ax.set_title(f"mean |relative error| of the held-out points: "
                 f"{result.mean_abs_rel_error:.2%}", fontsize=8)
    ax.legend(fontsize=7)
    return ax
