"""``quanta parity``: train sweeps of multitask-sparse-parity MLPs (``train``), turn run
directories into scaling exponents and plots by our method or the paper's (``analyze``), and
keep their compact part (``export``)."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common.errors import InputError
from quanta.io import (count, declare_paths, log_grid, positive, save_figure, say, seconds, seed,
                       track_given, write_json)

#: exit status of ``train`` when ``--time-limit`` paused the run (sysexits' EX_TEMPFAIL:
#: not an error, call again with --resume)
EXIT_PAUSED = 75



def _device(text: str) -> str:
    """An argparse type for ``--device``: auto, cpu, mps, or cuda/xpu with an optional
    index (checked against the machine when the run starts)."""
    import argparse
    import re

    if not re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"not a device: {text!r} (auto, cpu, cuda, cuda:N)")
    return text


def _grid(lo: float, hi: float, count: int) -> list[int]:
    """``--width-grid``/``--D-grid MIN MAX COUNT`` as sorted distinct integers."""
    return [int(v) for v in log_grid(lo, hi, count)]


def config_from_args(args):
    """The RunConfig a ``quanta parity train`` command line describes."""
    from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig

    if args.widths is not None and args.width_grid is not None:
        raise InputError("give --widths or --width-grid, not both")
    widths = args.widths if args.widths is not None else _grid(*args.width_grid) \
        if args.width_grid is not None else _grid(9, 500, 30)
    if args.D is not None and args.D_grid is not None:
        raise InputError("give --D or --D-grid, not both")
    D = args.D if args.D is not None else _grid(*args.D_grid) if args.D_grid is not None else None
    alphas = args.alphas
    if alphas is not None and len(alphas) == 1:
        alphas, args.alpha = None, alphas[0]
    return RunConfig(
        TaskConfig(n_tasks=args.n_tasks, n_bits=args.n_bits, k=args.k,
                   alpha=args.alpha if alphas is None else alphas[0],
                   offset=args.offset, seed=args.task_seed, alphas=alphas),
        ModelConfig(widths=[int(w) for w in widths], depth=args.depth),
        TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seeds=args.seeds,
                    D=None if D is None else [int(d) for d in D], eval_points=args.eval_points,
                    checkpoints=args.checkpoints, test_per_task=args.test_per_task,
                    eval_chunk=args.eval_chunk,
                    device=args.device, precision=args.precision, compile=args.compile,
                    step=args.step, sampler=args.sampler,
                    step_options=list(args.step_options or [])),
    ).validate()


#: the train flags (argparse dests) that set config fields, and the fields
FLAG_FIELDS = {
    **{d: (f"task.{d}",) for d in ("n_tasks", "n_bits", "k", "alpha", "offset")},
    "alphas": ("task.alpha", "task.alphas"), "task_seed": ("task.seed",),
    "widths": ("model.widths",), "width_grid": ("model.widths",), "depth": ("model.depth",),
    "D_grid": ("train.D",),
    **{d: (f"train.{d}",) for d in ("steps", "batch", "lr", "seeds", "D", "eval_points",
                                     "checkpoints", "test_per_task", "eval_chunk", "device",
                                     "precision", "compile", "step", "step_options",
                                     "sampler")}}


def resumed_config(saved, args):
    """The config a ``--resume`` continues: the saved one, with the fields a resume may
    change (``empirical.parity.train.RESUME_MAY_CHANGE``) set from the flags given. Every
    other flag given explicitly (its default value or not) must equal the saved run's."""
    import dataclasses

    from empirical.parity.train import RESUME_MAY_CHANGE, config_changes

    given = getattr(args, "given", frozenset())
    wanted = config_from_args(args)
    fields = {f for d in given for f in FLAG_FIELDS.get(d, ())}
    clash = config_changes(saved, wanted, fields)
    if clash:
        raise InputError(f"--resume continues {args.out} with its saved config, which these "
                         f"flags contradict: {'; '.join(clash)} (leave them out, or train "
                         "into another --out)")
    free = {n: getattr(wanted.train, n) for n in RESUME_MAY_CHANGE if f"train.{n}" in fields}
    config = dataclasses.replace(saved, train=dataclasses.replace(saved.train, **free))
    config.validate()
    return config


def cmd_train(args) -> int:
    from empirical.parity import is_complete, train
    from empirical.parity.run import read_config

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.resume and (out / "config.json").exists():
        config = resumed_config(read_config(out / "config.json"), args)
        print(f"resuming {out} with its saved config")
    else:
        config = config_from_args(args)
    log = None if args.quiet else (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    train(config, out, resume=args.resume, save_every_s=args.save_every, log=log,
          time_limit_s=args.time_limit, force=args.force)
    if not is_complete(out):
        print(f"paused: {out} ({time.perf_counter() - t0:.1f} s this call); run the same "
              f"command with --resume to go on")
        return EXIT_PAUSED
    print(f"done: {out} ({time.perf_counter() - t0:.1f} s this call)")
    return 0


def expand_run_dirs(paths) -> list[Path]:
    """Run directories named directly, or the runs one level inside a folder of runs."""
    out = []
    for p in map(Path, paths):
        if not (p / "config.json").exists() and p.is_dir():
            inner = sorted(q for q in p.iterdir() if (q / "config.json").exists())
            if inner:
                out += inner
                continue
        out.append(p)
    return out


def _paper_options(args) -> dict:
    """The paper method's options given on the command line (the rest keep the library's
    defaults, the paper's)."""
    given = dict(step_window=args.step_window, width=args.width, bootstrap=args.bootstrap,
                 seed=args.seed)
    return {k: v for k, v in given.items() if v is not None}


def cmd_analyze(args) -> int:
    from empirical.parity import analysis, load_run

    runs = [load_run(d) for d in expand_run_dirs(args.run_dirs)]
    if args.until_step is not None:
        runs = [run.until(args.until_step) for run in runs]
    paper = _paper_options(args) if args.method != "quanta" else {}
    result = analysis.analyze(runs, threshold=args.threshold, unit=args.unit,
                              window=args.window, method=args.method, **paper)
    write_json(result.to_dict(), args.json)
    say(result.summary(), args.json)
    if args.plot_dir:
        for name, fig in analysis_figures(runs, result):
            dest = Path(args.plot_dir) / f"{name}.png"
            save_figure(fig, dest)
            say(f"wrote {dest}", args.json)
    return 0


def analysis_figures(runs, result, prefix: str = ""):
    """(name, Figure) of every figure of an analysis by either method, or by both (then the
    comparison figure too), each name with ``prefix``."""
    from empirical.parity import plots
    from empirical.parity.analysis import MethodComparison

    both = isinstance(result, MethodComparison)
    parts = [result.quanta, result.paper] if both else [result]
    for part in parts:
        for name, fig in plots.figures(runs, part):
            yield prefix + name, fig
    if both:
        yield plots.draw(prefix + "exponents_by_method", plots.plot_method_comparison,
                         result.rows())


def _checkpoint_steps(values):
    """``--checkpoints``: steps, or one of 'all' and 'last'."""
    if values is None:
        return ()
    if len(values) == 1 and values[0] in ("all", "last"):
        return values[0]
    try:
        return [int(v) for v in values]
    except ValueError:
        raise InputError(f"--checkpoints takes steps, 'all' or 'last', got {values}") from None


def cmd_export(args) -> int:
    from empirical.parity import export_run

    dest = export_run(args.run_dir, args.dest, checkpoint_steps=_checkpoint_steps(args.checkpoints),
                      half=not args.full_precision, max_evals=args.max_evals,
                      accuracy=not args.no_accuracy, networks=args.networks, force=args.force)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"exported {args.run_dir} -> {dest} ({size / 1e6:.2f} MB)")
    return 0


def _add_train_parser(sub) -> None:
    """The ``train`` action's arguments."""
    t = sub.add_parser("train", help="train a sweep of MLPs together (widths × seeds × D)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--n-tasks", type=count(1), default=500)
    t.add_argument("--n-bits", type=count(1), default=100)
    t.add_argument("--k", type=count(1), default=3)
    t.add_argument("--alpha", type=float, default=0.4,
                   help="the paper's α: subtask frequencies ∝ (i+offset)^-(α+1)")
    t.add_argument("--alphas", type=float, nargs="+", default=None, metavar="ALPHA",
                   help="several α trained at once, one group of networks each (overrides "
                        "--alpha); split the run with empirical.parity.sweeps.split_alphas")
    t.add_argument("--offset", type=count(1), default=1)
    t.add_argument("--task-seed", type=seed, default=0, help="seed of the subtask subsets")
    t.add_argument("--widths", type=count(1), nargs="+", default=None,
                   help="hidden widths (default: --width-grid 9 500 30)")
    t.add_argument("--width-grid", type=float, nargs=3, metavar=("MIN", "MAX", "COUNT"))
    t.add_argument("--depth", type=count(1), default=1, help="hidden layers")
    t.add_argument("--seeds", type=seed, nargs="+", default=[0])
    t.add_argument("--D", type=count(1), nargs="+", default=None,
                   help="training-set sizes (default: online, fresh samples every step)")
    t.add_argument("--D-grid", type=float, nargs=3, metavar=("MIN", "MAX", "COUNT"))
    t.add_argument("--steps", type=count(1), default=200_000)
    t.add_argument("--batch", type=count(1), default=20_000)
    t.add_argument("--lr", type=positive, default=1e-3)
    t.add_argument("--eval-points", type=count(1), default=100, help="log-spaced evaluations")
    t.add_argument("--checkpoints", type=count(1), default=20, help="log-spaced checkpoints")
    t.add_argument("--test-per-task", type=count(1), default=1000)
    t.add_argument("--eval-chunk", type=count(1), default=50_000, metavar="SAMPLES",
                   help="test samples per evaluation forward (its memory: SAMPLES × all "
                        "hidden units)")
    t.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda, cuda:1, ...")
    t.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    t.add_argument("--compile", action="store_true",
                   help="torch.compile the model's forward (of --step eager)")
    t.add_argument("--step", default="eager",
                   help="how a step runs: autograd (eager), the written-out backward "
                        "(manual), compiled as a whole (compiled), in a CUDA graph (graphs, "
                        "compiled_graphs); see BENCHMARKS.md")
    t.add_argument("--step-options", nargs="+", default=None, metavar="OPTION",
                   help="options of the written-out steps: gather_in, gather_out, adam, "
                        "autotune (docs/parity-training.md)")
    t.add_argument("--sampler", default="counter",
                   help="counter: all streams drawn in one batched operation; streams: one "
                        "generator per stream (the sampler of runs made before it)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    t.add_argument("--save-every", type=seconds, default=None, metavar="SECONDS",
                   help="also save a resume checkpoint this often (machines with time limits)")
    t.add_argument("--time-limit", type=seconds, default=None, metavar="SECONDS",
                   help="pause after training this long in this call: save a resume "
                        f"checkpoint and exit with status {EXIT_PAUSED} (go on with --resume)")
    t.add_argument("--threads", type=count(1), default=None, help="torch CPU threads")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--force", action="store_true",
                   help="--out may hold another run, which is then replaced (its config, "
                        "metrics and checkpoints removed)")
    t.set_defaults(func=cmd_train)
    declare_paths(t, folders=("out",))
    track_given(t)



def add_parser(subparsers) -> None:
    p = subparsers.add_parser("parity", help="multitask sparse parity: fused training and analysis")
    sub = p.add_subparsers(dest="parity_command", required=True, metavar="ACTION")
    _add_train_parser(sub)
    _add_analyze_parser(sub)
    _add_export_parser(sub)
    _add_alphas_parser(sub)


def _add_analyze_parser(sub) -> None:
    a = sub.add_parser("analyze", help="exponents and plots from run directories",
                       description="Scaling exponents of parity runs, by our method "
                                   "(--method quanta), the paper's (--method paper) or both.",
                       epilog="example: quanta parity analyze results/parity/gpu_fig2_NS "
                              "--method paper --json -")
    a.add_argument("run_dirs", nargs="+", metavar="DIR",
                   help="run directories, or folders of them (several α: the α sweep)")
    a.add_argument("--method", choices=["quanta", "paper", "both"], default="quanta",
                   help="quanta: nats, ε_K added back, loss window, t-intervals; paper: "
                        "bits, plain OLS, the paper's step window and thresholds, bootstrap "
                        "intervals; both: the two side by side (default quanta)")
    a.add_argument("--json", metavar="FILE", default=None,
                   help="write the analysis as JSON to FILE ('-' for standard output)")
    a.add_argument("--plot-dir", metavar="DIR", default=None, help="write PNG plots here")
    a.add_argument("--threshold", type=float, default=0.1,
                   help="(quanta) loss below which a subtask counts as learned")
    a.add_argument("--unit", choices=["nats", "bits"], default="nats",
                   help="(quanta) unit of --threshold")
    a.add_argument("--window", type=float, nargs=2, default=(0.05, 0.9), metavar=("LO", "HI"),
                   help="(quanta) fit where the loss lies between LO and HI times ln 2 (the "
                        "chance loss)")
    a.add_argument("--until-step", type=count(0), default=None, metavar="STEP",
                   help="analyse each run as it stood at STEP (its evaluations up to STEP), "
                        "e.g. a partial run beside a finished one at their common step")
    a.add_argument("--step-window", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="(paper) steps of the L(S) fit, LO <= step < HI (default: the "
                        "paper's 500 15000)")
    a.add_argument("--width", type=count(1), default=None,
                   help="(paper) the network of the L(S) and convergence fits (default the "
                        "widest)")
    a.add_argument("--bootstrap", type=count(1), default=None,
                   help="(paper) bootstrap resamples of each interval (default 1000)")
    a.add_argument("--seed", type=seed, default=None, help="(paper) seed of the bootstrap "
                                                          "(default 0)")
    declare_paths(a, inputs=("run_dirs",), files=("json",), folders=("plot_dir",))
    a.set_defaults(func=cmd_analyze)


def cmd_alphas(args) -> int:
    from empirical.parity import load_run
    from empirical.parity.alpha_sweep import alpha_sweep

    runs = [load_run(d) for d in expand_run_dirs(args.run_dirs)]
    paper = {} if args.bootstrap is None else dict(bootstrap=args.bootstrap)
    result = alpha_sweep(runs, method=args.method, per_seed=not args.no_per_seed,
                         **(paper if args.method != "quanta" else {}))
    write_json(result.to_dict(), args.json)
    say(result.summary(), args.json)
    if args.plot:
        save_figure(result.plot().figure, args.plot)
        say(f"wrote {args.plot}", args.json)
    return 0


def _add_alphas_parser(sub) -> None:
    from quanta.io import add_output_args

    a = sub.add_parser("alphas", help="exponents against α across runs (Figures 10, 11)",
                       description="The N, S and D exponents of runs of different α, each "
                                   "seed alone and the seeds averaged, against the model's "
                                   "α and α/(α+1), by our method, the paper's or both.",
                       epilog="example: quanta parity alphas results/parity/gpu_D_alpha* "
                              "--json - --plot alphas.png")
    a.add_argument("run_dirs", nargs="+", metavar="DIR",
                   help="run directories of at least two α, or folders of them")
    a.add_argument("--method", choices=["quanta", "paper", "both"], default="both",
                   help="ours, the paper's or both (default both)")
    a.add_argument("--no-per-seed", action="store_true",
                   help="only the seed-averaged run of each α, not each seed alone")
    a.add_argument("--bootstrap", type=count(1), default=None,
                   help="(paper) bootstrap resamples of each interval (default 1000)")
    add_output_args(a)
    declare_paths(a, inputs=("run_dirs",))
    a.set_defaults(func=cmd_alphas)


def _add_export_parser(sub) -> None:
    e = sub.add_parser("export", help="copy a run's compact results (to keep in a repository)",
                       epilog="example: quanta parity export runs/fig2_NS results/parity/"
                              "gpu_fig2_NS --checkpoints all --networks widest:1 --no-accuracy")
    e.add_argument("run_dir", metavar="DIR")
    e.add_argument("dest", metavar="DEST")
    e.add_argument("--checkpoints", nargs="+", metavar="STEP",
                   help="also copy these checkpoints (model only), or 'all' or 'last'")
    e.add_argument("--networks", default=None, metavar="SPEC",
                   help="the networks whose weights the checkpoints keep: 'all' (default), "
                        "'widest:K', 'narrowest:K' or widths like '500,435' (every seed and "
                        "D of those widths); the metrics keep every network")
    e.add_argument("--full-precision", action="store_true",
                   help="keep per-subtask arrays and checkpoints in float32 (default float16)")
    e.add_argument("--max-evals", type=count(2), default=None, metavar="N",
                   help="keep N of a finished run's evaluations, evenly along its grid")
    e.add_argument("--no-accuracy", action="store_true",
                   help="leave out the per-subtask accuracy (the mean accuracy stays)")
    e.add_argument("--force", action="store_true",
                   help="DEST may hold another run, which is then replaced whole (never a "
                        "folder holding anything else)")
    declare_paths(e, inputs=("run_dir",), folders=("dest",))
    e.set_defaults(func=cmd_export)


def _demo_gpu(run, out: Path) -> list[Path]:
    """A shipped, finished GPU run (a loaded ``Run``): both methods' exponents and every
    figure, from its files."""
    from empirical.parity import analysis

    cfg, name = run.config, run.path.name
    what = ("parameters and steps: L(N), L(S)" if cfg.train.D is None
            else "training-set sizes: L(D)")
    result = analysis.analyze([run], method="both")
    print(f"GPU run {name} (the paper's Figure 2 at its scale, {what}; "
          f"{cfg.train.precision} on an H200; drawn from the shipped files):")
    print(result.summary())
    written = [out / f"{name}.json"]
    write_json(result.to_dict(), written[0])
    for fig_name, fig in analysis_figures([run], result, prefix=f"{name}_"):
        save_figure(fig, out / f"{fig_name}.png", dpi=100)
        written.append(out / f"{fig_name}.png")
    return written


def _demo_partial(run, finished: list) -> None:
    """A shipped partial GPU run (a precision check, not a headline): what it is, and the
    L(N) exponent of it and of the finished runs (loaded) of the same task and widths at its
    last step."""
    from empirical.parity import analysis

    last = int(run.evaluated_steps()[-1])
    print(f"GPU run {run.path.name}: PARTIAL ({run.config.train.precision}, step {last} of "
          f"{run.planned_steps}), not a finished Figure-2 run; a precision check "
          "(docs/parity.md):")
    same = [r for r in finished if (r.config.task, r.config.model.widths)
            == (run.config.task, run.config.model.widths)]
    for r in [*same, run]:
        n = analysis.analyze([r.until(last)]).runs[0]["N"]
        ci = "" if n["exponent"] is None else \
            f"{n['exponent']:.3f} [{n['conf_int'][0]:.3f}, {n['conf_int'][1]:.3f}]"
        print(f"  {r.path.name} ({r.config.train.precision}) at step {last}: "
              f"L(N) exponent {ci or 'no fit'}")


def load_gpu_runs(results: Path) -> list:
    """Every shipped GPU run under ``results`` (the ``gpu_*`` folders holding a run, and the
    α folders of a several-α run), each read once."""
    from empirical.parity import load_run

    return [load_run(d) for d in expand_run_dirs(sorted(Path(results).glob("gpu_*")))
            if (d / "config.json").is_file()]


def gpu_runs(runs) -> tuple[list, list]:
    """The GPU runs among the loaded ``runs`` (folders named ``gpu_*``): the finished ones
    (the headline) and the partial ones (paused before their last step: shown only as
    checks)."""
    gpu = [r for r in runs if r.path.name.startswith("gpu_")]
    return [r for r in gpu if r.complete], [r for r in gpu if not r.complete]


def _sweep_name(runs) -> str:
    """'gpu_D_alpha' for gpu_D_alpha0.1 … 0.5, 'gpu_fig10_NS_0.1_0.2' for its alpha* folders."""
    from empirical.parity.alpha_sweep import _label

    prefix = os.path.commonprefix([_label(r) for r in runs])
    folder = prefix.split("/")[0]
    return folder if "/" in prefix else folder.rstrip("0123456789._") or "runs"


def _demo_alpha_sweeps(runs: list, out: Path) -> list[Path]:
    """The shipped GPU α sweeps (the finished ones of the loaded GPU ``runs``, the α folders
    of a several-α run included, grouped by their settings; a group of at least two α is a
    sweep): both methods' exponents against α and α/(α+1), each seed alone beside the seed
    mean, as ``quanta parity alphas`` writes them: one JSON and one figure per sweep, not a
    figure per run."""
    from empirical.parity.alpha_sweep import _signature, alpha_sweep

    groups: dict = {}
    for run in runs:
        if run.complete:
            groups.setdefault(_signature(run), []).append(run)
    written = []
    for group in (g for g in groups.values() if len({r.config.task.alpha for r in g}) > 1):
        name = _sweep_name(group)
        result = alpha_sweep(group, method="both")
        print(f"GPU α sweep {name} ({len(group)} runs; the paper's Figures 10 and 11):")
        print(result.summary())
        written += [out / f"alphas_{name}.json", out / f"alphas_{name}.png"]
        write_json(result.to_dict(), written[-2])
        save_figure(result.plot().figure, written[-1], dpi=100)
    return written


def _demo_cpu_checks(dirs: list[Path], out: Path) -> list[Path]:
    """The CPU checks: the committed CPU-scale stand-ins (16–40 subtasks), analysed."""
    from empirical.parity import analysis, load_run, plots

    runs = [load_run(d) for d in dirs]
    result = analysis.analyze(runs)
    print("CPU checks (CPU-scale stand-ins of 16-40 subtasks, not the paper's runs):")
    print(result.summary())
    written = [out / "cpu_checks.json"]
    write_json(result.to_dict(), written[0])
    for name, fig in plots.figures(runs, result):
        # the demo keeps time short: the α = 0.4 runs and the α sweep (analyze writes
        # them all)
        if not (name == "exponents_vs_alpha" or name.endswith("alpha0.4")):
            save_figure(fig, None)
            continue
        save_figure(fig, out / f"cpu_check_{name}.png", dpi=100)
        written.append(out / f"cpu_check_{name}.png")
    return written


def _demo_live(out: Path) -> list[Path]:
    """A tiny sweep trained live (a few seconds): the trainer end to end."""
    from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig, load_run, train

    live = out / "live_run"
    if live.exists():
        import shutil
        shutil.rmtree(live)
    cfg = RunConfig(TaskConfig(n_tasks=10, n_bits=12, k=3, alpha=0.4),
                    ModelConfig(widths=[8, 32, 128]),
                    TrainConfig(steps=250, batch=1000, eval_points=12, checkpoints=3,
                                test_per_task=100, device="cpu"))
    train(cfg, live)
    m = load_run(live).metrics
    print("live tiny sweep, final mean test loss (nats) by width: " + ", ".join(
        f"{w}: {v:.3f}" for w, v in zip(m["widths"], m["mean_test_loss"][:, -1])))
    return [live / "config.json", live / "metrics.npz"]


def demo(out_dir: Path) -> list[Path]:
    """The headline: the shipped, finished GPU runs of the paper's Figure 2 (results/parity/
    gpu_fig2_NS: L(N), L(S), convergence and emergence; gpu_fig2_D: L(D)), both methods'
    exponents and every figure, drawn from the shipped files without a GPU; a partial GPU run
    (gpu_fig2_NS_fp32_partial) only as a precision check; the shipped GPU α sweeps
    (gpu_D_alpha*, gpu_fig10_NS_0.1_0.2: exponents against α, one figure each); then the CPU
    checks (the committed CPU-scale stand-ins), then a tiny sweep trained live."""
    from empirical import PARITY_RESULTS

    out = Path(out_dir) / "parity"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    dirs = expand_run_dirs([PARITY_RESULTS]) if PARITY_RESULTS.is_dir() else []
    gpu = load_gpu_runs(PARITY_RESULTS) if dirs else []    # each shipped GPU run read once
    finished, partial = gpu_runs([r for r in gpu if r.path.parent == PARITY_RESULTS])
    for run in finished:
        written += _demo_gpu(run, out)
    for run in partial:
        _demo_partial(run, finished)
    if gpu:
        written += _demo_alpha_sweeps(gpu, out)
    cpu = [d for d in dirs if not d.name.startswith("gpu_")]
    if cpu:
        written += _demo_cpu_checks(cpu, out)
    return written + _demo_live(out)
