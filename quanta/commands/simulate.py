"""``quanta simulate``: Monte Carlo of quanta learning against the exact theory.

    quanta simulate --regime {D,S,N} --alpha 0.4 [--tau 1] [--K 100000] [--batch B]
                    [--rule {samples,steps}] [--C 1] [--x-min 1e2 --x-max 1e9 --points 30]
                    [--reps 1000] [--seed 0] [--noisy --D 1e6] [--N N]
                    [--json FILE] [--plot FILE]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from common import resources
from common.errors import InputError
from quanta.io import (add_output_args, add_resource_args, count, log_grid, positive,
                       save_figure, say, seed, write_json)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="Monte Carlo of quanta learning (D, S or N) against the theory",
        description="Simulate learning of Zipf-distributed quanta over a log-spaced grid of "
                    "D (samples), S (steps) or N (parameters); print the mean loss ± standard "
                    "error, theory's exact expectation and the fitted exponent.")
    p.add_argument("--regime", required=True, choices=("D", "S", "N"))
    p.add_argument("--alpha", type=float, required=True, help="the paper's α (> 0)")
    p.add_argument("--tau", type=count(1), default=1,
                   help="occurrences needed to learn (default 1)")
    p.add_argument("--K", type=count(1), default=100_000, help="number of quanta (default 100000)")
    p.add_argument("--batch", type=count(1), default=None, help="batch size B (regime S)")
    p.add_argument("--rule", default="samples", choices=("samples", "steps"),
                   help="S: learn at the τ-th sample, or once present in τ steps")
    p.add_argument("--C", type=positive, default=1.0, help="parameters per quantum (default 1)")
    p.add_argument("--N", type=float, default=None, help="(D, S) capacity N: only ⌊N/C⌋ quanta fit")
    p.add_argument("--D", type=float, default=None, help="(N --noisy) training samples")
    p.add_argument("--noisy", action="store_true",
                   help="(N) learn the quanta seen most often in D samples")
    p.add_argument("--x-min", type=float, default=None,
                   help="smallest grid value (default 1e2; 1 for N)")
    p.add_argument("--x-max", type=float, default=None,
                   help="largest grid value (default 1e9 samples; 1e9/B steps; K·C for N)")
    p.add_argument("--points", type=count(2), default=30, help="grid points (default 30)")
    p.add_argument("--reps", type=count(1), default=1000, help="realizations (default 1000)")
    p.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    add_output_args(p)
    add_resource_args(p)
    p.set_defaults(func=run)


def _x_grid(args) -> np.ndarray:
    """The log-spaced grid of D, S or N values from --x-min/--x-max/--points (integers but
    for N). Each flag's own range is its argparse type; ``simulate.check_run`` refuses the
    rest (reps, memory, …) naming the argument."""
    if args.regime == "N":
        lo, hi = 1.0, float(args.K) * args.C
    elif args.regime == "S":
        lo, hi = 1e2, 1e9 / (args.batch or 1)
    else:
        lo, hi = 1e2, 1e9
    lo = lo if args.x_min is None else args.x_min
    hi = hi if args.x_max is None else args.x_max
    if not np.isfinite(hi):
        raise InputError(f"--x-max must be a finite number, got {hi:g}")
    if not (lo >= 1):
        raise InputError(f"--x-min must be ≥ 1, got {lo:g}")
    if not lo < hi:
        raise InputError(f"--x-min ({lo:g}) must be < --x-max ({hi:g})")
    return log_grid(lo, hi, args.points, integer=args.regime != "N",
                    names="--x-min --x-max --points")


def figure(result):
    """Two panels: loss (simulated vs exact theory and asymptote), local exponent."""
    import matplotlib.pyplot as plt

    from simulate.plots import plot_local_exponent, plot_loss

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.4, 7.2), sharex=True,
                                   gridspec_kw=dict(height_ratios=(2, 1)))
    plot_loss(result, ax=ax1)
    plot_local_exponent(result, ax=ax2)
    fig.tight_layout()
    return fig


class Progress:
    """``simulate.run``'s progress: once the time per realization is measured, refuse a run
    estimated above ``common.resources.TIME_LIMIT_S`` (unless --allow-large), and show a
    bar on stderr for one that takes longer than ``simulate.core.PROGRESS_MIN_S``."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int, per_rep: float) -> None:
        if self.bar is None:
            left = per_rep * (total - done)
            resources.check_seconds(left, f"{total:,} realizations",
                                    "lower --reps, --points, --x-max or --K")
            from simulate.core import PROGRESS_MIN_S
            if left < PROGRESS_MIN_S:     # the rest runs in one block: no bar
                self.bar = False
                return
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=done, unit="realization", file=sys.stderr,
                            dynamic_ncols=True, leave=False)
        elif self.bar:
            self.bar.update(done - self.bar.n)
            if done >= total:
                self.bar.close()


def _simulate(args, **overrides):
    import simulate

    options = dict(tau=args.tau, K=args.K, batch=args.batch, rule=args.rule, C=args.C,
                   reps=args.reps, seed=args.seed, noisy=args.noisy, N=args.N,
                   D=args.D, progress=Progress(),
                   p_learned=False)  # neither the JSON nor the plot reports it
    options.update(overrides)
    return simulate.run(args.regime, args.alpha, _x_grid(args), **options)


def run(args) -> int:
    result = _simulate(args)
    say(result.summary(), args.json)
    write_json(result.to_dict(), args.json)
    if args.plot:
        save_figure(figure(result), args.plot)
    return 0


def demo(out_dir: Path) -> list[Path]:
    """Simulated vs exact theory at α = 0.4 for the three regimes (about 10 s)."""
    import argparse

    out_dir = Path(out_dir)
    configs = {
        "D": dict(regime="D", K=100_000, batch=None, rule="samples", x_min=1e2, x_max=1e9,
                  reps=300),
        "S": dict(regime="S", K=10_000, batch=16, rule="steps", x_min=1e1, x_max=1e7,
                  reps=200),
        "N": dict(regime="N", K=100_000, batch=None, rule="samples", x_min=1, x_max=1e5,
                  reps=1),
    }
    written, docs = [], {}
    for name, cfg in configs.items():
        args = argparse.Namespace(alpha=0.4, tau=1, C=1.0, points=30, seed=0, noisy=False,
                                  N=None, D=None, **cfg)
        result = _simulate(args)
        docs[name] = result.to_dict()
        path = out_dir / f"simulate_{name}.png"
        save_figure(figure(result), path)
        written.append(path)
    path = out_dir / "simulate.json"
    write_json(docs, path)
    written.append(path)
    return written
