"""``quanta fit``: fit a scaling law to a table (``curve``, the default), compare published
exponents with the model (``literature``), estimate a rank-frequency exponent (``sizes``), or
read fitted exponents against the model (``consistency``).

    quanta fit [curve] DATA --x N [--x2 D] --y loss [--form power|offset|chinchilla|broken|
               max|bnsl] [--where EXPR] [--group COL] [--dropna] [--sep SEP] [--tie A=B]
               [--fix NAME=VALUE] [--holdout K] [--predict X ...] [--bootstrap 1000]
               [--level 0.95] [--seed 0] [--json FILE] [--plot FILE]
    quanta fit literature [--plot FILE] [--json FILE]
    quanta fit sizes SIZES.csv [--method mle|ols|envelope] [--column COL] [--gof [--sims N]]
    quanta fit consistency FIT.json [FIT_D.json] [--level 0.95] [--json FILE] [--plot FILE]

Each action has only its own flags (argparse refuses the others); ``quanta fit DATA …``
is ``quanta fit curve DATA …`` (a file named like an action: ``quanta fit curve sizes …``
or ``./sizes``). One function per action: ``run_curve``, ``run_literature``, ``run_sizes``,
``run_consistency``.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from common.errors import CorruptFileError, InputError
from quanta.io import (CommandError, add_output_args, count, declare_paths, fraction, save_figure,
                       say, seed, write_json)

#: the forms ``quanta fit curve --form`` offers (fit.forms.FORMS, kept here so that building
#: the parser imports nothing heavy)
FORMS = ("power", "offset", "chinchilla", "broken", "max", "bnsl")

#: ``quanta fit``'s actions; ``quanta fit DATA …`` means ``quanta fit curve DATA …``
ACTIONS = ("curve", "literature", "sizes", "consistency")
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
        usage="quanta fit [-h] {curve,literature,sizes,consistency} ...\n"
              "       quanta fit DATA --x X --y Y ...   (= quanta fit curve DATA ...)",
        description="Fit a scaling law to a table (curve, the default: 'quanta fit DATA ...' "
                    "is 'quanta fit curve DATA ...'), compare the published exponents with the "
                    "model (literature: the paper's Figure 18), estimate a rank-frequency "
                    "exponent from sizes, or read fitted exponents against the model "
                    "(consistency).",
        epilog="example: quanta fit losses.csv --x N --y loss --json fit.json")
    sub = p.add_subparsers(dest="fit_command", required=True, metavar="ACTION",
                           prog="quanta fit")
    shared = _bootstrap_options()
    _add_curve(sub, shared)
    _add_literature(sub)
    _add_sizes(sub, shared)
    _add_consistency(sub)


def _add_curve(sub, shared) -> None:
    c = sub.add_parser(
        "curve", parents=[shared], help="fit a scaling law to a table (default)",
        description="Fit a scaling law to DATA, a table as its authors ship it: CSV/TSV\n"
                    "(delimiter sniffed), JSON (records, columns, or a folder of one-object\n"
                    "files; nested keys as dotted names such as results.loss), JSON Lines\n"
                    "or parquet, with bootstrap intervals. Guide: docs/fit.md.",
        epilog="examples: quanta fit losses.csv --x N --y loss --form offset --plot fit.png\n"
               "          quanta fit runs/ --x N --x2 D --y results.loss --where \"N > 1e7\" "
               "--tie alpha=beta\n"
               "          quanta fit curve.csv --x D --y loss --form bnsl --holdout 3 "
               "--predict 1e12",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("data", metavar="DATA", help="a table file (CSV, TSV, JSON, JSON Lines, "
                                                "parquet) or a folder of JSON files")
    c.add_argument("--x", required=True, help="column of the size variable (N, D, S or C)")
    c.add_argument("--x2", help="column of the second size variable (joint forms)")
    c.add_argument("--y", required=True, help="column of the loss")
    c.add_argument("--sigma", help="column of per-point errors of the loss (weighted fit)")
    _add_table_flags(c)
    c.add_argument("--form", default=None, choices=FORMS,
                   help="power (default; chinchilla with --x2), offset, chinchilla, broken, "
                        "max, bnsl")
    c.add_argument("--breaks", type=count(1), default=1,
                   help="bnsl: number of breaks (default 1; at most 5)")
    c.add_argument("--tie", action="append", metavar="A=B",
                   help="fit one value for two parameters, e.g. alpha=beta (repeatable)")
    c.add_argument("--fix", action="append", metavar="NAME=VALUE",
                   help="hold a parameter at a value, e.g. E=1.69 (repeatable)")
    c.add_argument("--bootstrap-method", default="pairs", choices=("pairs", "residuals"))
    c.add_argument("--ci", default="percentile", choices=("percentile", "bca"),
                   help="bootstrap interval (default percentile)")
    c.add_argument("--delta", type=float, default=1e-3, help="Huber threshold (joint forms)")
    c.add_argument("--variable", choices=("N", "D", "S", "C"),
                   help="what x is, for the quantization-model reading (default: from --x); "
                        "C: compute")
    c.add_argument("--holdout", type=float, default=0, metavar="K",
                   help="fit all but the K largest sizes (joint forms: largest N·D) and "
                        "predict them (a fraction < 1: that share of the points)")
    c.add_argument("--predict", nargs="+", metavar="X",
                   help="predict the loss at these sizes, with bands (joint forms: N,D)")
    add_output_args(c)
    declare_paths(c, inputs=("data",))
    c.set_defaults(func=run_curve)


def _add_table_flags(c) -> None:
    """--sep, --decimal, --where, --assign, --group, --dropna: reading and selecting a
    table's rows."""
    c.add_argument("--sep", help="delimiter of a text table (default: sniffed; 'tab' for tab)")
    c.add_argument("--decimal", choices=(".", ","),
                   help="decimal mark of a text table (default '.', or ',' where the cells "
                        "leave no doubt)")
    c.add_argument("--where", metavar="EXPR",
                   help="keep the rows where this pandas query is true, e.g. \"dataset == "
                        "'c4' and N > 1e7\" (names with dots or spaces in backticks)")
    c.add_argument("--assign", action="append", metavar="NAME=EXPR",
                   help="a column made from others, e.g. \"D = C / (6 * N)\" (repeatable)")
    c.add_argument("--group", metavar="COLUMN", help="fit each group of rows separately")
    c.add_argument("--dropna", action="store_true",
                   help="drop rows with a missing value in the columns used (counted)")


def _add_literature(sub) -> None:
    lit = sub.add_parser("literature", help="published exponents against the model (Fig. 18)",
                         description="The published (alpha_N, alpha_D) pairs of the paper's "
                                     "Figure 18 against the model's alpha_D = "
                                     "alpha_N/(alpha_N+1).")
    add_output_args(lit)
    lit.set_defaults(func=run_literature)


def _add_consistency(sub) -> None:
    k = sub.add_parser(
        "consistency", help="fitted alpha_N and alpha_D read against the model",
        description="Read fitted exponents against the quantization model (alpha_D = "
                    "alpha_N/(alpha_N+1)): one joint fit (chinchilla or max), or a fit of "
                    "L(N) and one of L(D) or L(S). Each FIT is the JSON 'quanta fit --json' "
                    "wrote; the fit is made again from its data block with its saved settings "
                    "(seed included), for the bootstrap draws.",
        epilog="example: quanta fit consistency fit_N.json fit_D.json --json -")
    k.add_argument("fits", nargs="+", metavar="FIT", help="one joint fit, or L(N) then L(D)")
    k.add_argument("--level", type=fraction, default=0.95, help="confidence level (default 0.95)")
    add_output_args(k)
    declare_paths(k, inputs=("fits",))
    k.set_defaults(func=run_consistency)


def run_consistency(args) -> int:
    """``quanta fit consistency``: (alpha_N, alpha_D) against alpha_D = alpha_N/(alpha_N+1)."""
    import json

    from fit.consistency import consistency
    from fit.summary import refit

    if len(args.fits) > 2:
        raise CommandError("FIT: give one joint fit, or two fits (L(N), then L(D) or L(S))")
    results = []
    for path in args.fits:
        try:
            doc = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CorruptFileError(f"{path}: not a fit's JSON ({err})") from None
        if not isinstance(doc, dict) or "form" not in doc:
            keys = "groups: pick one group's fit" if isinstance(doc, dict) and "groups" in doc \
                else "no 'form'"
            raise InputError(f"{path}: not the JSON of one fit ({keys})")
        res, _ = refit(doc)
        if res.bootstrap_params is None:
            raise InputError(f"{path}: the fit has no bootstrap (run quanta fit with "
                             "--bootstrap N) and the reading needs its draws")
        results.append(res)
    both = consistency(*results, level=args.level)
    say(both.summary(), args.json)
    write_json({**both.to_dict(), "sources": list(args.fits)}, args.json)
    if args.plot:
        save_figure(both.plot().figure, args.plot)
    return 0


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
    z.add_argument("--rank-window", type=count(1), nargs=2, metavar=("FIRST", "LAST"),
                   help="(ols/envelope) ranks used")
    _add_gof_args(z)
    add_output_args(z)
    declare_paths(z, inputs=("file",))
    z.set_defaults(func=run_sizes)


def run_curve(args) -> int:
    """``quanta fit curve``: a scaling law fitted to columns of a table (or to each group)."""
    import fit

    form = args.form or ("chinchilla" if args.x2 else "power")
    if args.variable and form in fit.JOINT_FORMS:
        raise CommandError(f"--variable: the joint form {form!r} reads N from --x and D from "
                           "--x2")
    if args.breaks != 1 and form != "bnsl":
        raise CommandError(f"--breaks: only the bnsl form has breaks (got --form {form})")
    options = dict(bootstrap=args.bootstrap, level=args.level, seed=args.seed,
                   bootstrap_method=args.bootstrap_method, ci_method=args.ci,
                   delta=args.delta, tie=args.tie, fix=args.fix)
    if form == "bnsl":
        options["breaks"] = args.breaks
    result = fit.fit_table(args.data, x=args.x, y=args.y, x2=args.x2, sigma=args.sigma,
                           form=form, group=args.group, where=args.where, dropna=args.dropna,
                           sep=args.sep, decimal=args.decimal, assign=args.assign,
                           holdout=_holdout(args.holdout), variable=args.variable, **options)
    fits = result.fits if args.group else {None: result}
    points = _prediction_points(args.predict, form, form in fit.JOINT_FORMS)
    docs, text = {}, [result.summary()]
    for name, res in fits.items():
        docs[name] = res.to_dict(include_data=True)
        if points is not None:
            frame = res.predict(*points, level=args.level, interval="observation")
            docs[name]["predictions"] = {**frame.to_dict("list"), "level": args.level,
                                         "interval": "observation"}
            text.append(_prediction_text(frame, args.level, name, args.group))
        if args.group and res.holdout is not None:
            from fit.summary import holdout_lines
            text += [f"held out [{name}]:"] + holdout_lines(res.holdout)
    say("\n\n".join(text), args.json)
    head = {"columns": {"x": args.x, "x2": args.x2, "y": args.y, "sigma": args.sigma},
            "source": str(args.data)}
    out = {**docs[None], **head} if not args.group else \
        {"group_by": args.group, "level": args.level, **head,
         "groups": {k: {**v, **head} for k, v in docs.items()}}
    write_json(out, args.json)
    if args.plot:
        save_figure(_curve_figure(result, args.x, args.y, points, args.x2), args.plot)
    return 0


def _holdout(value: float):
    """--holdout K: a whole number of points, or a fraction below 1."""
    if value < 0 or (value >= 1 and value != int(value)):
        raise CommandError(f"--holdout: a number of points (3) or a fraction below 1 (0.2), "
                           f"got {value:g}")
    return int(value) if value >= 1 else value


def _prediction_points(values, form: str, joint: bool):
    """--predict X… as (x, x2) arrays (joint forms: N,D pairs), or None."""
    if not values:
        return None
    try:
        pairs = [tuple(float(v) for v in item.split(",")) for item in values]
    except ValueError:
        raise CommandError(f"--predict: sizes are numbers{' (N,D pairs)' if joint else ''}, "
                           f"got {' '.join(values)}") from None
    pair = next((v for v, p in zip(values, pairs) if len(p) == 2), None)
    if pair is not None and not joint:
        raise CommandError(f"--predict {pair}: a pair was given, but the {form} form has one "
                           "variable and takes one size per value (--predict 7e10 1.4e11)")
    if any(len(p) != (2 if joint else 1) for p in pairs) or \
            not all(v > 0 for p in pairs for v in p):
        raise CommandError("--predict: give positive sizes" + (
            ", each an N,D pair for a joint form (--predict 7e10,1.4e12)" if joint else ""))
    arr = np.array(pairs)
    return (arr[:, 0], arr[:, 1]) if joint else (arr[:, 0], None)


def _prediction_text(frame, level: float, name, group) -> str:
    from fit.summary import table

    head = [c for c in ("x", "x2") if c in frame] + ["predicted", f"{level:.0%} band"]
    rows = [[f"{r[c]:.4g}" for c in head[:-2]] + [f"{r['predicted']:.6g}",
                                                   f"[{r['lower']:.6g}, {r['upper']:.6g}]"]
            for r in frame.to_dict("records")]
    title = "predictions (the band: where a new observation should fall)" + (
        f" [{group} = {name}]" if group else "")
    return "\n".join([title] + table(head, rows, set(range(len(head) - 1))))


def _curve_figure(result, xlabel: str, ylabel: str, points=None, x2label=None):
    """The fit with its band beside its residuals (a colour per group for a grouped fit;
    a joint law also against compute, with its compute-optimal frontier), axes named after
    the columns; the curve extends over --predict's sizes."""
    import matplotlib.pyplot as plt

    from fit.plots import plot_compute, plot_fit, plot_groups, plot_residuals
    joint = not hasattr(result, "fits") and result.x2 is not None
    fig, (a1, a2, *a3) = plt.subplots(1, 3 if joint else 2, figsize=(16 if joint else 11, 4.4))
    if joint:
        plot_compute(result, ax=a3[0])
    if hasattr(result, "fits"):
        plot_groups(result, ax=a1)
        for i, res in enumerate(result.fits.values()):
            plot_residuals(res, ax=a2, color=f"C{i % 10}")
    else:
        x_range = None if points is None else (points[0].min(), points[0].max())
        plot_fit(result, ax=a1, x_range=x_range, x2_label=x2label or "x2")
        plot_residuals(result, ax=a2)
    if not (hasattr(result, "fits") and next(iter(result.fits.values())).x2 is not None):
        a1.set_xlabel(xlabel)
        a1.set_ylabel(ylabel)
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
    return column_values(table, column or table.columns[0], path)


def _load_sizes(args):
    """The sizes ``quanta fit sizes`` reads: one clustering, or (envelope, no --column, a
    table) one per column, the envelope being taken over all of them."""
    if args.method == "envelope" and args.column is None and \
            Path(args.file).suffix.lower() != ".txt":
        from fit.inputs import column_values, read_table
        table = read_table(args.file)
        return [v[np.isfinite(v)] for v in (column_values(table, c, args.file)
                                             for c in table.columns)]
    return _read_sizes(args.file, args.column)


def run_sizes(args) -> int:
    """``quanta fit sizes``: α from the rank-frequency slope of sizes."""
    from fit.sizes import rank_frequency_exponent

    if args.gof and args.method == "envelope":
        raise CommandError("--gof: tests the tail of one set of sizes; not with --method "
                           "envelope")
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
    z.add_argument("--sims", type=count(1), default=1000,
                   help="synthetic data sets of --gof (default 1000: p to about ±0.016; "
                        "2500 for ±0.01), seeded by --seed")


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
