"""Plots of fits. Each takes data and ``ax=None``, draws there (a new figure only when ax is
None) and returns the Axes; nothing is saved or shown here."""
from __future__ import annotations

import numpy as np

from common.plotting import axes, readable_log_ticks
from fit.forms import JOINT_FORMS, asymptotic_exponent
from fit.prediction import prediction_band


#: The size of a figure a plot function makes for itself (inches).
FIGSIZE = (5, 3.8)


def plot_fit(result, ax=None, theory=None, n_grid=200, x2_values=None, units="nats",
             x_range=None, x2_label="x2"):
    """Data, fitted curve and its bootstrap band on log-log axes.

    ``theory``: optional (x, loss) of the quantization model's prediction, drawn beside the
    fit. ``x_range``: (low, high) to extend the curve and its band over (an extrapolation);
    a fit with a ``holdout`` block is extended over its held-out points, drawn with the band
    a new observation should fall in. Joint forms draw the fitted surface along lines the
    data lie on (:func:`joint_lines`), coloured with a colour bar (``x2_label``: its name).
    """
    ax = axes(ax, FIGSIZE)
    x = result.x
    lo, hi = x.min(), x.max()
    if result.holdout is not None:
        lo, hi = min(lo, min(result.holdout["x"])), max(hi, max(result.holdout["x"]))
    if x_range is not None:
        lo, hi = min(lo, x_range[0]), max(hi, x_range[1])
    grid = np.geomspace(lo, hi, n_grid)
    if result.form in JOINT_FORMS:
        _plot_joint(result, ax, grid, x2_values, x2_label)
    else:
        _plot_one(result, ax, grid)
    if theory is not None:
        tx, ty = theory
        ax.plot(tx, ty, color="k", ls="--", lw=1, label="quantization model")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_xlabel(result))
    ax.set_ylabel(f"loss ({units})")
    readable_log_ticks(ax)
    legend_outside(ax)
    return ax


def legend_outside(ax, **kwargs):
    """The legend above the axes, clear of the data."""
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2,
              frameon=False, borderaxespad=0.0, **kwargs)


def _plot_one(result, ax, grid):
    """One variable: observed points, the fit with its band, held-out points if any."""
    ax.scatter(result.x, result.y, s=14, color="C0", label="observed", zorder=3)
    name = asymptotic_exponent(result.form)
    if name == "alpha_final":                   # bnsl: derived from the fitted exponents
        table = result.derived()
        a = table.loc[name, "value"]
    else:
        table, a = result.conf_int(), result.params[name]
    lab = f"{result.form} fit, {name} = {a:.3g}" + (
        " [{:.3g}, {:.3g}]".format(*table.loc[name, ["lower", "upper"]])
        if name in table.index else "")
    ax.plot(grid, result.predict(grid), color="C1", label=lab)
    how = "bootstrap" if result.bootstrap_params is not None else "fit-SE"
    ax.fill_between(grid, *prediction_band(result, grid), color="C1", alpha=0.25, lw=0,
                    label=f"{result.level:.0%} {how} band")
    hold = result.holdout
    if hold is not None:
        x, obs, pred = (np.asarray(hold[k], float) for k in ("x", "observed", "predicted"))
        err = [pred - np.asarray(hold["lower"], float), np.asarray(hold["upper"], float) - pred]
        ax.errorbar(x, pred, yerr=err, fmt="x", color="C3", capsize=2, zorder=4,
                    label=f"held out: predicted, {hold.get('level', result.level):.0%} band")
        ax.scatter(x, obs, facecolor="none", edgecolor="C3", zorder=4,
                   label="held out: observed")


def joint_lines(result, max_lines=8):
    """Where to draw a joint law: ("x2", values) at the data's own x2 when it takes at most
    ``max_lines`` values; ("compute", values of x·x2) when the data lie on at most 12
    iso-compute lines (an IsoFLOP grid); else ("x2 bins", the geometric means of five
    quantile bins of x2)."""
    d = result.x2
    levels = np.unique(d)
    if levels.size <= max_lines:
        return "x2", levels
    c = np.round(np.log10(result.x * d), 2)
    if np.unique(c).size <= 12:
        return "compute", np.unique(10.0 ** c)
    edges = np.quantile(np.log(d), np.linspace(0, 1, 6))
    return "x2 bins", np.exp(0.5 * (edges[:-1] + edges[1:]))


def _plot_joint(result, ax, grid, x2_values=None, x2_label="x2"):
    """The joint law along the lines of :func:`joint_lines` (or at ``x2_values``), each in
    its colour on a colour bar, over the points coloured the same way."""
    import matplotlib as mpl

    kind, vals = ("x2", np.asarray(x2_values, float)) if x2_values is not None else \
        joint_lines(result)
    key = result.x * result.x2 if kind == "compute" else result.x2
    norm = mpl.colors.LogNorm(min(key.min(), vals.min()), max(key.max(), vals.max()))
    cmap = mpl.colormaps["viridis"]
    ax.scatter(result.x, result.y, c=cmap(norm(key)), s=12, edgecolor="k", lw=0.2,
               label="observed", zorder=3)
    for v in vals:
        if kind != "compute":
            g, g2 = grid, np.full_like(grid, v)
        else:    # an iso-compute line over the sizes its points span, extended a little
            near = np.isclose(np.log10(key), np.log10(v), atol=0.006)
            xs = result.x[near] if near.any() else grid
            g = np.geomspace(xs.min() / 1.5, xs.max() * 1.5, 100)
            g2 = v / g
        ax.plot(g, result.predict(g, g2), color=cmap(norm(v)), lw=1.2)
        ax.fill_between(g, *prediction_band(result, g, g2), color=cmap(norm(v)), alpha=0.2,
                        lw=0)
    ax.plot([], [], color="k", label=f"{result.form} fit " + {
        "compute": "along iso-compute lines", "x2": "at the data's x2",
        "x2 bins": "at the middle of five x2 bins"}[kind])
    label = f"x·{x2_label} (C/6 for C = 6ND)" if kind == "compute" else x2_label
    ax.figure.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label)


def plot_compute(result, ax=None, n_grid=200, C_range=None):
    """A joint law against compute C = 6ND: the observed losses and the fitted law's
    compute-optimal frontier L(N_opt(C), D_opt(C)) (:func:`fit.derived.compute_optimal`) with
    its bootstrap band, over the data's compute (or ``C_range``)."""
    from fit.derived import compute_optimal

    ax = axes(ax, FIGSIZE)
    C = 6 * result.x * result.x2
    lo, hi = (C.min(), C.max()) if C_range is None else C_range
    grid = np.geomspace(lo, hi, n_grid)
    ax.scatter(C, result.y, s=12, color="C0", label="observed", zorder=3)
    N, D = compute_optimal(result.form, result.params, grid)
    ax.plot(grid, result.predict(N, D), color="C1",
            label=f"compute-optimal frontier of the {result.form} fit")
    if result.bootstrap_params is not None:
        from fit.prediction import _bootstrap_theta

        Nb, Db = compute_optimal(result.form, result.bootstrap_params, grid)
        logp = result.spec.model(_bootstrap_theta(result), (np.log(Nb), np.log(Db)))[0]
        keep = np.all(np.isfinite(logp), axis=1)
        tail = 50 * (1 - result.level)
        band = np.percentile(np.exp(logp[keep]), [tail, 100 - tail], axis=0)
        ax.fill_between(grid, *band, color="C1", alpha=0.25, lw=0,
                        label=f"{result.level:.0%} bootstrap band")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C = 6ND (FLOP)")
    ax.set_ylabel("loss")
    readable_log_ticks(ax)
    legend_outside(ax)
    return ax


_VARIABLES = {"N": "parameters N", "D": "training samples D", "S": "steps S",
              "C": "compute C (FLOP)"}


def _xlabel(result) -> str:
    return _VARIABLES.get(result.config.get("variable"), "x")


def plot_residuals(result, ax=None, color=None):
    """Log residuals (log y − log fitted) against x, with the Huber threshold if used.
    With ``sigma`` the fit weighs residual i by y_i/σ_i and the threshold applies to that
    weighted residual, so that is what is drawn."""
    ax = axes(ax, FIGSIZE)
    ax.axhline(0, color="k", lw=0.8)
    weighted = result.sigma is not None
    r = result.resid * (result.y / result.sigma if weighted else 1.0)
    ax.scatter(result.x, r, s=12, color=color)
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
    from common.plotting import axes, readable_log_ticks

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
    from common.plotting import axes, readable_log_ticks

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
    carried to the held-out largest scales (predicted, with the band a new observation
    should fall in), beside the held-out observations, on log-log axes."""
    res = result.fit
    if result.x2_test is None:
        ax = plot_fit(res, ax=ax)       # the fit carries its holdout block: drawn there
    else:
        ax = axes(ax, FIGSIZE)
        ax.scatter(res.x, res.y, s=14, color="C0", label=f"training points ({result.n_train})")
        err = [result.y_pred - result.lower, result.upper - result.y_pred]
        ax.errorbar(result.x_test, result.y_pred, yerr=err, fmt="x", color="C3", capsize=2,
                    label=f"held out: predicted, {res.level:.0%} band")
        ax.scatter(result.x_test, result.y_test, facecolor="none", edgecolor="C3", zorder=3,
                   label="held out: observed")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(_xlabel(res))
        ax.set_ylabel("loss (nats)")
        readable_log_ticks(ax)
        legend_outside(ax)
    ax.set_xlabel(ax.get_xlabel() + f"\nheld out: mean |relative error| "
                  f"{result.mean_abs_rel_error:.2%}, RMSLE {result.rmsle:.3g}")
    return ax


def plot_groups(groups, ax=None):
    """A :class:`fit.table.GroupFits` on one pair of axes, a colour per group: for one
    variable each group's points and fitted curve; for a joint law each group's observed
    loss against its fitted loss (the diagonal: a perfect fit)."""
    ax = axes(ax, FIGSIZE)
    joint = False
    for i, (name, res) in enumerate(groups.fits.items()):
        color = f"C{i % 10}"
        if res.x2 is None:
            grid = np.geomspace(res.x.min(), res.x.max(), 100)
            ax.scatter(res.x, res.y, s=12, color=color, zorder=3)
            ax.plot(grid, res.predict(grid), color=color, label=f"{groups.group_by} = {name}")
        else:
            joint = True
            ax.scatter(res.fitted, res.y, s=12, color=color, label=f"{groups.group_by} = {name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if joint:
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, label="observed = fitted")
        ax.set_xlabel("fitted loss")
        ax.set_ylabel("observed loss")
    else:
        ax.set_xlabel(_xlabel(next(iter(groups.fits.values()))))
        ax.set_ylabel("loss")
    readable_log_ticks(ax)
    legend_outside(ax)
    return ax
