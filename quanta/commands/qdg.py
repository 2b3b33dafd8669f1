"""``quanta qdg``: quanta discovery from gradients (QDG) on toy embeddings and parity runs.

    quanta qdg toy --alpha 0.5 --n-clusters 200 --samples 10000 --dim 64 --sigma 0.5
                   --ks 50 100 200 400 [--reps 5] [--seed 0] [--json FILE] [--plot FILE]
    quanta qdg bias --alphas ... --dims ... --sigmas ... [--reps 3] --out DIR
    quanta qdg parity RUN_DIR [--checkpoints all] [--networks widest:3] [--subtasks learned]
                   [--samples 5000] [--ks ...] [--calibration FILE|none]
                   [--json FILE] [--npz FILE] [--plot-dir DIR]

JSON: per estimator ``alpha_hat`` with its interval ``ci`` (and ``alpha_true`` for toy
runs); for parity runs ``ari`` and ``nmi`` per checkpoint.
"""
from __future__ import annotations

from pathlib import Path

from quanta.io import (add_output_args, add_resource_args, count, declare_paths, save_figure,
                       say, seed, write_file, write_json)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("qdg", help="quanta discovery from gradients: toy bias study, parity",
                              description="Cluster samples by their loss gradients and read α "
                                          "from the cluster sizes.")
    sub = p.add_subparsers(dest="qdg_command", required=True, metavar="WHAT")

    t = sub.add_parser("toy", help="QDG on toy embeddings with planted Zipfian clusters")
    t.add_argument("--alpha", type=float, required=True, help="the paper's α of the planted sizes")
    t.add_argument("--n-clusters", type=count(1), default=200)
    t.add_argument("--samples", type=count(1), default=10_000)
    t.add_argument("--dim", type=count(1), default=64)
    t.add_argument("--sigma", type=float, default=0.5, help="noise norm relative to the unit centre")
    t.add_argument("--ks", type=count(1), nargs="+", default=[50, 100, 200, 400], help="cluster counts K")
    t.add_argument("--k", type=count(1), default=None, help="K for the single-K estimators (default: smallest K)")
    t.add_argument("--reps", type=count(1), default=1)
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--bootstrap", type=count(0), default=200, help="bootstrap resamples for intervals")
    t.add_argument("--n-init", type=count(1), default=10, help="k-means restarts per K")
    add_output_args(t)
    add_resource_args(t)
    t.set_defaults(func=run_toy_cmd)

    b = sub.add_parser("bias", help="bias of every α estimator over a grid of toy settings")
    b.add_argument("--alphas", type=float, nargs="+", required=True)
    b.add_argument("--dims", type=count(1), nargs="+", required=True)
    b.add_argument("--sigmas", type=float, nargs="+", required=True)
    b.add_argument("--n-clusters", type=count(1), nargs="+", default=[100])
    b.add_argument("--samples", type=count(1), nargs="+", default=[2000])
    b.add_argument("--ks", type=count(1), nargs="+", default=[10, 20, 40, 80])
    b.add_argument("--reps", type=count(1), default=3)
    b.add_argument("--seed", type=seed, default=0)
    b.add_argument("--n-init", type=count(1), default=3)
    b.add_argument("--out", required=True, help="output folder (CSV tables, JSON report, PNG plots)")
    add_resource_args(b)
    declare_paths(b, folders=("out",))
    b.set_defaults(func=run_bias_cmd)

    q = sub.add_parser("parity", help="QDG on a sparse-parity run, checked against the subtasks",
                       epilog="example: quanta qdg parity results/parity/gpu_fig2_NS "
                              "--networks widest:3 --subtasks learned --samples 3000")
    q.add_argument("run_dir", help="a parity run directory (quanta parity train)")
    q.add_argument("--checkpoints", default="last",
                   help="'all', 'last' (default) or comma-separated steps")
    q.add_argument("--network", type=count(0), default=None, help="network index (default: the widest)")
    q.add_argument("--networks", default=None, metavar="SPEC",
                   help="several networks instead: 'widest:K', 'all' or widths like '500,435' "
                        "(the JSON then lists one result per network under 'networks')")
    q.add_argument("--subtasks", choices=["all", "learned"], default="all",
                   help="sample every subtask (Zipfian), or only those the network has learned "
                        "(loss below the threshold at its last evaluation)")
    q.add_argument("--samples", type=count(1), default=5000)
    q.add_argument("--ks", type=count(1), nargs="+", default=None, help="cluster counts (default: around the subtask count)")
    q.add_argument("--loss-threshold", type=_threshold, default=0.1,
                   help="keep samples with loss below this (nats; default 0.1; 'none': keep all)")
    q.add_argument("--project-dim", type=count(1), default=None, help="random projection of gradients")
    q.add_argument("--seed", type=seed, default=0)
    q.add_argument("--n-init", type=count(1), default=3)
    q.add_argument("--bootstrap", type=count(0), default=100,
                   help="resamples for the α estimators' intervals (0: none)")
    q.add_argument("--calibration", default="default", metavar="FILE",
                   help="a bias report (quanta qdg bias) whose recommended estimator's "
                        "calibration is applied (default: the committed results/qdg/bias; "
                        "'none': no calibration)")
    q.add_argument("--json", metavar="FILE", default=None, help="write results as JSON ('-' for stdout)")
    q.add_argument("--npz", metavar="FILE", default=None,
                   help="write each checkpoint's cluster labels by K and the kept samples' true "
                        "subtasks and labels")
    q.add_argument("--plot-dir", default=None, help="folder for PNG plots")
    add_resource_args(q)
    declare_paths(q, inputs=("run_dir", "calibration"), files=("json", "npz"),
                  folders=("plot_dir",))
    q.set_defaults(func=run_parity_cmd)


def _threshold(text: str):
    return None if text.lower() == "none" else float(text)


def _estimates_text(estimates: dict, alpha_true=None) -> list[str]:
    lines = [] if alpha_true is None else [f"alpha_true = {alpha_true:g}"]
    for name, e in estimates.items():
        lo, hi = e["ci"]
        ci = "" if lo is None else f"  [{lo:.3f}, {hi:.3f}]"
        lines.append(f"{name:>9}: alpha_hat = {e['alpha_hat']:.3f}{ci}")
    return lines


def run_toy_cmd(args) -> int:
    from empirical.qdg.toy import run_toy
    k = args.k if args.k is not None else min(args.ks)
    res = run_toy(args.alpha, args.n_clusters, args.samples, args.dim, args.sigma, args.ks,
                  reps=args.reps, seed=args.seed, k=k, bootstrap=args.bootstrap,
                  n_init=args.n_init)
    say("\n".join(_estimates_text(res["estimators"], res["alpha_true"]) + [
        "ARI vs planted clusters: " + ", ".join(f"K={kk}: {v:.2f}" for kk, v in res["ari"].items())]),
        args.json)
    write_json(res, args.json)
    if args.plot:
        from empirical.qdg.plots import plot_rank_frequency
        ax = plot_rank_frequency(res["sizes"], alpha_true=args.alpha,
                                 alpha_hat=res["estimators"]["envelope"]["alpha_hat"]
                                 if "envelope" in res["estimators"] else None)
        save_figure(ax.figure, args.plot)
    return 0


def run_bias_cmd(args) -> int:
    import matplotlib.pyplot as plt

    from empirical.qdg.plots import plot_alpha_recovery, plot_bias
    from empirical.qdg.toy import bias_report, bias_study, summarize_bias
    out = Path(args.out)
    runs = bias_study(args.alphas, args.dims, args.sigmas, n_clusters=args.n_clusters,
                      samples=args.samples, ks=args.ks, reps=args.reps, seed=args.seed,
                      n_init=args.n_init,
                      progress=lambda i, n, _: print(f"[bias] {i}/{n} settings", flush=True))
    summary = summarize_bias(runs)
    report = bias_report(runs)
    report["config"] = {k: v for k, v in vars(args).items() if k not in ("func", "parser")}
    write_file(out / "runs.csv", runs.to_csv(index=False).encode())
    write_file(out / "summary.csv", summary.to_csv(index=False).encode())
    write_json(report, out / "report.json")
    cal = {(t["estimator"], t["k"]): t["calibration"] for t in report["estimators"]}
    panels = [("envelope", 0)] + [(e, k) for e in ("ols", "mle", "zipf") for k in args.ks]
    ncol = 1 + len(args.ks)
    fig, axes = plt.subplots(4, ncol, figsize=(3.2 * ncol, 12), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for i, (e, k) in enumerate(panels):
        ax = axes[0, 0] if e == "envelope" else axes[1 + ("ols", "mle", "zipf").index(e), args.ks.index(k)]
        ax.set_visible(True)
        plot_alpha_recovery(runs, e, k, cal.get((e, k)), ax=ax)
    fig.tight_layout()
    save_figure(fig, out / "alpha_hat_vs_alpha.png")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_bias(summary, ax=ax)
    save_figure(fig, out / "bias.png")
    best = report["recommended"]
    for t in report["estimators"]:
        c = t["calibration"]
        print(f"{t['estimator']:>9} K={t['k'] or 'all':>4}: bias {t['mean_bias']:+.3f}  "
              f"rmse {t['rmse']:.3f}  calibrated residual sd "
              f"{c['residual_sd'] if c['residual_sd'] is None else round(c['residual_sd'], 3)}")
    if best:
        print(f"recommended: {best['estimator']} K={best['k'] or 'all'}")
    print(f"wrote {out}/runs.csv, summary.csv, report.json, alpha_hat_vs_alpha.png, bias.png")
    return 0


def _calibration(arg):
    from empirical.qdg.parity import load_calibration
    if arg == "none":
        return None
    return load_calibration(None if arg == "default" else arg)


def _parity_lines(res: dict) -> list[str]:
    lines = [f"alpha (data) = {res['alpha_true']:g}; network {res['network']} "
             f"(width {res['width']}), {res['subtasks']} subtasks"]
    for row in res["checkpoints"]:
        if row["ari"] is None:
            lines.append(f"step {row['step']:>8}: skipped ({row['skipped']})")
            continue
        lines.append(f"step {row['step']:>8}: kept {row['n_kept']:>5} samples, ARI "
                     f"{row['ari']:.3f}, NMI {row['nmi']:.3f}, " + ", ".join(
                         f"{n} {e['alpha_hat']:.2f}" for n, e in row["estimators"].items()))
        cal = row.get("calibrated")
        if cal:
            lines.append(f"{'':>15} {cal['estimator']} K={cal['k']}: alpha {cal['alpha_raw']:.2f}"
                         f" [{cal['ci_raw'][0]:.2f}, {cal['ci_raw'][1]:.2f}], calibrated "
                         f"{cal['alpha_calibrated']:.2f} [{cal['ci_calibrated'][0]:.2f}, "
                         f"{cal['ci_calibrated'][1]:.2f}] (± {cal['calibration']['residual_sd']:.2f}"
                         " from the calibration)")
    return lines


def _parity_plots(results: list[dict], plot_dir: Path) -> None:
    import matplotlib.pyplot as plt

    from empirical.qdg.parity import plot_alpha_by_width, plot_scores_by_width
    from empirical.qdg.plots import plot_parity_checkpoints, plot_rank_frequency
    plot_dir.mkdir(parents=True, exist_ok=True)
    if len(results) > 1:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        plot_scores_by_width(results, ax=a)
        plot_alpha_by_width(results, ax=b)
        fig.tight_layout()
        save_figure(fig, plot_dir / "qdg_parity_networks.png")
    for res in results:
        tag = f"_width{res['width']}" if len(results) > 1 else ""
        if len(res["checkpoints"]) > 1:
            save_figure(plot_parity_checkpoints(res).figure,
                        plot_dir / f"qdg_parity_checkpoints{tag}.png")
        clustered = [row for row in res["checkpoints"] if "sizes" in row]
        if clustered:  # the latest checkpoint that had enough samples to cluster
            save_figure(plot_rank_frequency(clustered[-1]["sizes"], alpha_true=res["alpha_true"],
                                            true_label="true subtasks").figure,
                        plot_dir / f"qdg_parity_rank_frequency{tag}.png")


def run_parity_cmd(args) -> int:
    import numpy as np

    from empirical.qdg.parity import parity_qdg, parity_qdg_networks
    options = dict(checkpoints=args.checkpoints, n_samples=args.samples, ks=args.ks,
                   loss_threshold=args.loss_threshold, project_dim=args.project_dim,
                   seed=args.seed, n_init=args.n_init, bootstrap=args.bootstrap,
                   subtasks=args.subtasks, calibration=_calibration(args.calibration),
                   return_labels=True)
    if args.networks is not None:
        res, arrays = parity_qdg_networks(args.run_dir, args.networks, **options)
        results = res["networks"]
    else:
        res, arrays = parity_qdg(args.run_dir, network=args.network, **options)
        results = [res]
    say("\n".join(line for r in results for line in _parity_lines(r)), args.json)
    write_json(res, args.json)
    if args.npz:
        write_file(args.npz, lambda fh: np.savez_compressed(fh, **arrays))
    if args.plot_dir:
        _parity_plots(results, Path(args.plot_dir))
    return 0


def demo(out_dir: Path) -> list[Path]:
    """A small toy run (qdg_toy.json/png) and, if a committed parity run exists, QDG on it."""
    from empirical.qdg.plots import plot_rank_frequency
    from empirical.qdg.toy import run_toy
    out_dir = Path(out_dir)
    res = run_toy(0.5, 50, 1500, 32, 0.2, (10, 20, 40), k=10, bootstrap=100, n_init=3, seed=0)
    write_json(res, out_dir / "qdg_toy.json")
    save_figure(plot_rank_frequency(res["sizes"], alpha_true=0.5).figure, out_dir / "qdg_toy.png")
    paths = [out_dir / "qdg_toy.json", out_dir / "qdg_toy.png"]
    from empirical.qdg.parity import default_run_dir, parity_qdg
    run_dir = default_run_dir()
    if run_dir is not None:
        pres = parity_qdg(run_dir, checkpoints="last", n_samples=1500, n_init=2)
        write_json(pres, out_dir / "qdg_parity.json")
        paths.append(out_dir / "qdg_parity.json")
    return paths
