"""``quanta fit``: fit a scaling law to a table (``curve``, the default), compare published
exponents with the model (``literature``), or estimate a rank-frequency exponent (``sizes``).

    quanta fit [curve] DATA.csv --x N [--x2 D] --y loss [--form power|offset|chinchilla|broken|max]
               [--bootstrap 1000] [--level 0.95] [--seed 0] [--json FILE] [--plot FILE]
    quanta fit literature [--plot FILE] [--json FILE]
    quanta fit sizes SIZES.csv [--method mle|ols|envelope] [--column COL] [--gof [--sims N]]

Each action has only its own flags (argparse refuses the others); ``quanta fit DATA …``
is ``quanta fit curve DATA …`` (a file named like an action: ``quanta fit curve sizes …``
or ``./sizes``). One function per action: ``run_curve``, ``run_literature``, ``run_sizes``.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from common.errors import CorruptFileError, InputError
from quanta.io import (CommandError, add_output_args, count, declare_paths, fraction, save_figure,
                       say, seed, write_json)

#: ``quanta fit``'s actions; ``quanta fit DATA …`` means ``quanta fit curve DATA …``
ACTIONS = ("curve", "literature", "sizes")
DEFAULT_ACTION = "curve"


def _bootstrap_options() -> argparse.ArgumentParser:
    """--bootstrap, --level, --seed: the interval flags that curve and sizes share."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--bootstrap", type=count(0), default=1000,
                   help="resamples (default 1000; 0 = none)")
    p.add_argument("--level", type=fraction, default=0.95,
                   help="confidence level (default 0.95)")
    p.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default 0)")
    return p


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="fit scaling laws with bootstrap intervals; published exponents; sizes",
        usage="quanta fit [-h] {curve,literature,sizes} ...\n"
              "       quanta fit DATA --x X --y Y ...   (= quanta fit curve DATA ...)",
        description="Fit a scaling law to a table (curve, the default: 'quanta fit DATA ...' "
                    "is 'quanta fit curve DATA ...'), compare the published exponents with the "
                    "model (literature: the paper's Figure 18), or estimate a rank-frequency "
                    "exponent from sizes.",
        epilog="example: quanta fit losses.csv --x N --y loss --json fit.json")
    sub = p.add_subparsers(dest="fit_command", required=True, metavar="ACTION",
                           prog="quanta fit")
    shared = _bootstrap_options()
    _add_curve(sub, shared)
    _add_literature(sub)
    _add_sizes(sub, shared)


def _add_curve(sub, shared) -> None:
    c = sub.add_parser("curve", parents=[shared], help="fit a scaling law to a table (default)",
                       description="Fit a scaling law to DATA (CSV or parquet with named "
                                   "columns), with bootstrap intervals.",
                       epilog="example: quanta fit curve losses.csv --x N --y loss --plot fit.png")
    c.add_argument("data", metavar="DATA", help="CSV or parquet file with named columns")
    c.add_argument("--x", required=True, help="column of the size variable (e.g. N, D or S)")
    c.add_argument("--x2", help="column of the second size variable (joint forms)")
    c.add_argument("--y", required=True, help="column of the loss")
    c.add_argument("--sigma", help="column of per-point errors of the loss (weighted fit)")
    c.add_argument("--form", default=None,
                   choices=("power", "offset", "chinchilla", "broken", "max"),
                   help="power (default; chinchilla with --x2), offset, chinchilla, broken, max")
    c.add_argument("--bootstrap-method", default="pairs", choices=("pairs", "residuals"))
    c.add_argument("--ci", default="percentile", choices=("percentile", "bca"),
                   help="bootstrap interval (default percentile)")
    c.add_argument("--delta", type=float, default=1e-3, help="Huber threshold (joint forms)")
    c.add_argument("--variable", choices=("N", "D", "S"),
                   help="what x is, for the quantization-model reading (default: from --x)")
    add_output_args(c)
    declare_paths(c, inputs=("data",))
    c.set_defaults(func=run_curve)


def _add_literature(sub) -> None:
    lit = sub.add_parser("literature", help="published exponents against the model (Fig. 18)",
                         description="The published (alpha_N, alpha_D) pairs of the paper's "
                                     "Figure 18 against the model's alpha_D = "
                                     "alpha_N/(alpha_N+1).")
    add_output_args(lit)
    lit.set_defaults(func=run_literature)


def _add_sizes(sub, shared) -> None:
    z = sub.add_parser("sizes", parents=[shared], help="rank-frequency exponent of sizes",
                       description="Estimate alpha from sizes (cluster sizes, word counts): "
                                   "their rank-frequency slope is -(alpha+1).",
                       epilog="example: quanta fit sizes counts.csv --method mle --json -")
    z.add_argument("file", metavar="SIZES", help="CSV/parquet (a column of sizes) or .txt")
    z.add_argument("--method", default="mle", choices=("mle", "ols", "envelope"),
                   help="estimator (default mle)")
    z.add_argument("--column", help="column of sizes (default: the first column; for "
                                    "envelope, every column is one clustering)")
    z.add_argument("--rank-window", type=int, nargs=2, metavar=("FIRST", "LAST"),
                   help="(ols/envelope) ranks used")
    _add_gof_args(z)
    add_output_args(z)
    declare_paths(z, inputs=("file",))
    z.set_defaults(func=run_sizes)


def run_curve(args) -> int:
    """``quanta fit curve``: a scaling law fitted to two (or three) columns of a table."""
    import fit
    from fit.forms import form_spec
    from fit.inputs import check_xy, load_xy

    form = args.form or ("chinchilla" if args.x2 else "power")
    if args.variable and form in fit.JOINT_FORMS:
        raise CommandError(f"--variable: the joint form {form!r} reads N from --x and D from "
                           "--x2")
    cols = load_xy(args.data, args.x, args.y, x2=args.x2, sigma=args.sigma)
    variable = args.variable or (args.x.upper() if args.x.upper() in ("N", "D", "S") else None)
    names = (args.x, args.y, args.x2 or "x2", args.sigma or "sigma")
    check_xy(cols[args.x], cols[args.y], x2=cols.get(args.x2), sigma=cols.get(args.sigma),
             n_params=len(form_spec(form).public), names=names)
    res = fit.fit(form, cols[args.x], cols[args.y], x2=cols.get(args.x2),
                  sigma=cols.get(args.sigma), bootstrap=args.bootstrap, level=args.level,
                  seed=args.seed, bootstrap_method=args.bootstrap_method, ci_method=args.ci,
                  delta=args.delta, variable=None if form in fit.JOINT_FORMS else variable)
    say(res.summary(), args.json)
    out = res.to_dict()
    out["columns"] = {"x": args.x, "x2": args.x2, "y": args.y, "sigma": args.sigma}
    out["source"] = str(args.data)
    write_json(out, args.json)
    if args.plot:
        save_figure(_curve_figure(res, args.x, args.y), args.plot)
    return 0


def _curve_figure(res, xlabel: str, ylabel: str):
    """The fit with its band beside its residuals, axes named after the columns."""
    import matplotlib.pyplot as plt

    from fit.plots import plot_fit, plot_residuals
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    plot_fit(res, ax=a1)
    a1.set_xlabel(xlabel)
    a1.set_ylabel(ylabel)
    plot_residuals(res, ax=a2)
    a2.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def run_literature(args) -> int:
    """``quanta fit literature``: the paper's Figure 18, corrected."""
    from fit.literature import figure18_points, figure18_summary

    points = figure18_points()
    summary = figure18_summary(points)
    lines = [f"{'paper':<24} {'rows':>8} {'alpha_N':>8} {'alpha_D':>8} {'model':>8} {'gap':>8}"]
    for r in summary["points"]:
        rows = f"{r['row_N']}/{r['row_D']}"
        flag = "  (swapped in the paper's figure)" if r["swapped_in_paper"] else ""
        lines.append(f"{r['label']:<24} {rows:>8} {r['alpha_N']:8.3g} {r['alpha_D']:8.3g} "
                     f"{r['alpha_D_model']:8.3g} {r['gap']:8.3g}{flag}")
    lines.append(f"model: alpha_D = alpha_N/(alpha_N+1); median gap {summary['median_gap']:.3g}")
    say("\n".join(lines), args.json)
    write_json(summary, args.json)
    if args.plot:
        save_figure(_literature_figure(points), args.plot)
    return 0


def _literature_figure(points):
    import matplotlib.pyplot as plt
    from fit.plots import plot_literature
    fig, ax = plt.subplots(figsize=(5, 4.5))
    plot_literature(points, ax=ax)
    ax.set_title("Published exponents vs the quantization model (Fig. 18)", fontsize=9)
    return fig


def _read_sizes(path, column):
    """One column of sizes: a .txt of numbers, or a column (default the first) of a table."""
    from fit.inputs import column_values, read_table

    path = Path(path)
    if path.suffix.lower() == ".txt" and column is None:
        if not path.exists():
            raise InputError(f"no such file: {path}")
        try:
            with warnings.catch_warnings():  # an empty file: the estimator says so, once
                warnings.simplefilter("ignore", UserWarning)
                return np.loadtxt(path, ndmin=1)
        except ValueError as err:
            raise CorruptFileError(f"{path}: not a readable list of sizes "
                                   f"({str(err).splitlines()[0]})") from None
    table = read_table(path, [column] if column else None)
    return column_values(table, column or table.columns[0])


def _load_sizes(args):
    """The sizes ``quanta fit sizes`` reads: one clustering, or (envelope, no --column, a
    table) one per column, the envelope being taken over all of them."""
    if args.method == "envelope" and args.column is None and \
            Path(args.file).suffix.lower() != ".txt":
        from fit.inputs import column_values, read_table
        table = read_table(args.file)
        return [v[np.isfinite(v)] for v in (column_values(table, c) for c in table.columns)]
    return _read_sizes(args.file, args.column)


def run_sizes(args) -> int:
    """``quanta fit sizes``: α from the rank-frequency slope of sizes."""
    from fit.sizes import rank_frequency_exponent

    if args.gof:
        _check_gof_args(args)
    sizes = _load_sizes(args)
    res = rank_frequency_exponent(sizes, method=args.method, rank_window=args.rank_window,
                                  bootstrap=args.bootstrap, level=args.level, seed=args.seed)
    out = {**res.to_dict(), "source": str(args.file)}
    say(res.summary(), args.json)
    if args.gof:
        out["gof"] = _run_gof(sizes, args)
    write_json(out, args.json)
    if args.plot:
        save_figure(_sizes_figure(sizes, res, args.method), args.plot)
    return 0


def _add_gof_args(z) -> None:
    """--gof and --sims of ``quanta fit sizes``."""
    z.add_argument("--gof", action="store_true",
                   help="is a power law plausible? Clauset et al.'s goodness-of-fit p-value "
                        "and likelihood ratios against the exponential, stretched "
                        "exponential, log-normal and power law with cutoff")
    z.add_argument("--sims", type=int, default=1000,
                   help="synthetic data sets of --gof (default 1000: p to about ±0.016; "
                        "2500 for ±0.01), seeded by --seed")


def _check_gof_args(args) -> None:
    if args.method == "envelope":
        raise CommandError("--gof: tests the tail of one set of sizes; not with --method "
                           "envelope")
    if args.sims < 1:
        raise CommandError(f"--sims must be >= 1, got {args.sims}")


def _run_gof(sizes, args) -> dict:
    """The goodness-of-fit test of the sizes' power-law tail (discrete if every size is an
    integer), reported and as JSON."""
    from fit.gof import power_law_gof

    s = np.asarray(sizes, dtype=float)
    gof = power_law_gof(s[s > 0], sims=args.sims, seed=args.seed)
    say(gof.summary(), args.json)
    return gof.to_dict()


def _sizes_figure(sizes, res, method: str):
    """Rank against size, observed beside the fitted slope (the normalised envelope of the
    clusterings for ``envelope``)."""
    import matplotlib.pyplot as plt

    from fit.plots import plot_rank_frequency
    fig, ax = plt.subplots(figsize=(5, 4))
    if method == "envelope":
        from fit.sizes import envelope
        curves = [sizes] if np.ndim(sizes[0]) == 0 else list(sizes)
        plot_rank_frequency(envelope(curves, normalize=True), res, ax=ax,
                            label="envelope of the clusterings (normalised)")
    else:
        plot_rank_frequency(sizes, res, ax=ax)
    return fig


def demo(out_dir: Path) -> list[Path]:
    """Fit the simulated L(D), L(S), L(N) curves at α = 0.4 (power law with bootstrap
    intervals, against the predicted exponents) and draw the Figure-18 comparison."""
    import matplotlib.pyplot as plt

    import fit
    import simulate
    from fit.consistency import consistency
    from fit.literature import figure18_points, figure18_summary
    from fit.plots import plot_fit

    out_dir = Path(out_dir)
    alpha, K = 0.4, 100_000
    setups = {"D": dict(reps=100, seed=0), "S": dict(batch=10, reps=100, seed=1),
              "N": dict(reps=1, seed=2)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    fits, summary = {}, {"alpha": alpha, "K": K, "regimes": {}}
    for ax, (regime, kw) in zip(axes, setups.items()):
        # grid: simulate's asymptotic window (above the pre-asymptotic start, a decade
        # below the finite-K cutoff); the loss cut off at K (epsilon_K) is added back so the
        # fit measures the infinite-K exponent, as SimulationResult.exponent does.
        probe = simulate.run(regime, alpha, [100.0], K=K, reps=1, batch=kw.get("batch"))
        lo, hi = probe.asymptotic_window()
        sim = simulate.run(regime, alpha, np.geomspace(lo, hi, 16), K=K, **kw)
        eps = sim.truncation_offset()
        # unweighted: the points of one realization share its samples, so their errors
        # are correlated and a per-point sigma would overstate the information
        res = fit.power_law(sim.x, sim.mean + eps, bootstrap=1000, seed=kw["seed"],
                            variable=regime)
        fits[regime] = res
        lo_a, hi_a = res.conf_int().loc["alpha"]
        pred = sim.theory_exponent
        plot_fit(res, ax=ax, theory=(sim.x, sim.theory + eps))
        ax.set_xlabel({"D": "D (samples)", "S": "S (steps, batch 10)",
                       "N": "N (parameters, C = 1)"}[regime])
        ax.set_ylabel("loss + eps_K (nats)")
        ax.set_title(f"L({regime}): fitted {res.params['alpha']:.4f} [{lo_a:.4f}, {hi_a:.4f}], "
                     f"predicted {pred:.4f}", fontsize=8)
        summary["regimes"][regime] = {**res.to_dict(), "predicted_exponent": pred,
                                      "truncation_offset": eps,
                                      "simulation": {k: sim.config[k] for k in
                                                     ("regime", "alpha", "K", "reps", "seed",
                                                      "batch")}}
    both = consistency(fits["N"], fits["D"])
    summary["consistency_N_D"] = both.to_dict()
    fig.suptitle(f"Power-law fits of simulated curves (alpha = {alpha}, K = {K}) with 95% "
                 f"bootstrap bands; dashed: exact expectation", fontsize=9)
    fig.tight_layout()
    p1 = out_dir / "fit_simulated.png"
    save_figure(fig, p1)
    points = figure18_points()
    summary["literature"] = figure18_summary(points)
    p2 = out_dir / "fit_literature.png"
    save_figure(_literature_figure(points), p2)
    p3 = out_dir / "fit.json"
    write_json(summary, p3)
    return [p3, p1, p2]
