"""``quanta fit``: fit a scaling law to a table, compare published exponents with the model, or
estimate a rank-frequency exponent.

    quanta fit DATA.csv --x N [--x2 D] --y loss [--form power|offset|chinchilla|broken|max]
               [--bootstrap 1000] [--level 0.95] [--seed 0] [--json FILE] [--plot FILE]
    quanta fit literature [--plot FILE] [--json FILE]
    quanta fit sizes SIZES.csv [--method mle|ols|envelope] [--column COL]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import InputError
from quanta.io import CommandError, add_output_args, save_figure, say, write_json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="fit scaling laws with bootstrap intervals; published exponents; sizes",
        description="Fit a scaling law to DATA (CSV or parquet with named columns), or "
                    "'literature' for the published exponents against the model (the paper's "
                    "Figure 18), or 'sizes FILE' for a rank-frequency exponent.")
    p.add_argument("data", metavar="DATA", help="CSV/parquet file, 'literature' or 'sizes'")
    p.add_argument("file", nargs="?", metavar="SIZES", help="(sizes) the file of sizes")
    p.add_argument("--x", help="column of the size variable (e.g. N, D or S)")
    p.add_argument("--x2", help="column of the second size variable (joint forms)")
    p.add_argument("--y", help="column of the loss")
    p.add_argument("--sigma", help="column of per-point errors of the loss (weighted fit)")
    p.add_argument("--form", default=None,
                   choices=("power", "offset", "chinchilla", "broken", "max"),
                   help="power (default; chinchilla with --x2), offset, chinchilla, broken, max")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples (default 1000; 0 = none)")
    p.add_argument("--bootstrap-method", default="pairs", choices=("pairs", "residuals"))
    p.add_argument("--ci", default="percentile", choices=("percentile", "bca"),
                   help="bootstrap interval (default percentile)")
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--delta", type=float, default=1e-3, help="Huber threshold (joint forms)")
    p.add_argument("--variable", choices=("N", "D", "S"),
                   help="what x is, for the quantization-model reading (default: from --x)")
    p.add_argument("--method", default="mle", choices=("mle", "ols", "envelope"),
                   help="(sizes) estimator (default mle)")
    p.add_argument("--column", help="(sizes) column of sizes (default: the first column; "
                                    "for envelope, every column is one clustering)")
    p.add_argument("--rank-window", type=int, nargs=2, metavar=("FIRST", "LAST"),
                   help="(sizes, ols/envelope) ranks used")
    add_output_args(p)
    p.set_defaults(func=run, fit_parser=p)


#: flags that only one kind of ``quanta fit`` reads
_TABLE_ONLY = ("x", "x2", "y", "sigma", "form", "bootstrap_method", "ci", "delta", "variable")
_SIZES_ONLY = ("method", "column", "rank_window")


def _refuse_flags(args, flags, what: str) -> None:
    """A flag set away from its (parser) default where ``what`` does not read it is an
    error, not a silent no-op."""
    given = [f"--{k.replace('_', '-')}" for k in flags
             if getattr(args, k) != args.fit_parser.get_default(k)]
    if given:
        raise CommandError(f"{', '.join(given)}: not used by {what}")


def run(args) -> int:
    if args.data == "literature":
        return _literature(args)
    if args.data == "sizes":
        return _sizes(args)
    if args.file is not None:
        raise CommandError(f"unexpected argument {args.file!r}")
    _refuse_flags(args, _SIZES_ONLY, "a table fit (they are for 'quanta fit sizes')")
    return _fit_table(args)


def _fit_table(args) -> int:
    import fit
    from fit.inputs import load_xy

    if not args.x or not args.y:
        raise CommandError("--x and --y name the size and loss columns (e.g. --x N --y loss)")
    form = args.form or ("chinchilla" if args.x2 else "power")
    if args.variable and form in fit.JOINT_FORMS:
        raise CommandError(f"--variable: the joint form {form!r} reads N from --x and D from "
                           "--x2")
    cols = load_xy(args.data, args.x, args.y, x2=args.x2, sigma=args.sigma)
    variable = args.variable or (args.x.upper() if args.x.upper() in ("N", "D", "S") else None)
    names = (args.x, args.y, args.x2 or "x2", args.sigma or "sigma")
    from fit.inputs import check_xy
    from fit.forms import form_spec
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
        import matplotlib.pyplot as plt
        from fit.plots import plot_fit, plot_residuals
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        plot_fit(res, ax=a1)
        a1.set_xlabel(args.x)
        a1.set_ylabel(args.y)
        plot_residuals(res, ax=a2)
        a2.set_xlabel(args.x)
        fig.tight_layout()
        save_figure(fig, args.plot)
    return 0


def _literature(args) -> int:
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
    from fit.inputs import column_values, read_table

    path = Path(path)
    if path.suffix.lower() == ".txt" and column is None:
        if not path.exists():
            raise InputError(f"no such file: {path}")
        try:
            return np.loadtxt(path, ndmin=1)
        except ValueError as err:
            raise InputError(f"{path}: {str(err).splitlines()[0]}") from None
    table = read_table(path, [column] if column else None)
    return column_values(table, column or table.columns[0])


def _sizes(args) -> int:
    from fit.sizes import rank_frequency_exponent

    if args.file is None:
        raise CommandError("quanta fit sizes SIZES.csv: give the file of sizes")
    _refuse_flags(args, _TABLE_ONLY, "'quanta fit sizes'")
    if args.method == "envelope" and args.column is None and \
            Path(args.file).suffix.lower() != ".txt":
        # one clustering per column; the envelope is taken over all of them
        from fit.inputs import column_values, read_table
        table = read_table(args.file)
        sizes = [v[np.isfinite(v)] for v in (column_values(table, c) for c in table.columns)]
    else:
        sizes = _read_sizes(args.file, args.column)
    res = rank_frequency_exponent(sizes, method=args.method, rank_window=args.rank_window,
                                  bootstrap=args.bootstrap, level=args.level, seed=args.seed)
    say(res.summary(), args.json)
    write_json({**res.to_dict(), "source": str(args.file)}, args.json)
    if args.plot:
        import matplotlib.pyplot as plt
        from fit.plots import plot_rank_frequency
        fig, ax = plt.subplots(figsize=(5, 4))
        if args.method == "envelope":
            from fit.sizes import envelope
            curves = [sizes] if np.ndim(sizes[0]) == 0 else list(sizes)
            plot_rank_frequency(envelope(curves, normalize=True), res, ax=ax,
                                label="envelope of the clusterings (normalised)")
        else:
            plot_rank_frequency(sizes, res, ax=ax)
        save_figure(fig, args.plot)
    return 0


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
