"""Sweep overhead: many quick simulate jobs through the local backend and through Ray.

    .venv/bin/python benchmarks/bench_sweep.py [--jobs 200] [--rounds 2]

The jobs: `quanta simulate --regime N --K 100 --reps 5 --points 4` over α × seed, about
20–30 ms each in one process (most of it building the command-line parser and an fsync),
so what differs is the sweep's own cost per job (a folder, two atomic status writes, a log,
a pool worker or a Ray task, the driver's bookkeeping).

1. the floor: the same jobs' command lines run one after another in this process by
   ``quanta.cli.main`` (no folders, no workers);
2. ``--backend local`` (a process pool of 2 workers: the machine's 2 cores);
3. ``--backend ray`` on a local Ray of 2 CPUs, started once (its start-up is reported
   separately; every round reuses it, as one `quanta sweep run` would).

Rounds alternate local and Ray into fresh folders; best of the rounds. Per job: the wall
time divided by the number of jobs; the ratio is against the local backend.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quanta import cli, sweep  # noqa: E402
from quanta.sweep import backends, registry  # noqa: E402


def make_spec(n_jobs: int) -> sweep.Spec:
    seeds = 10
    alphas = [round(0.1 + 0.05 * i, 2) for i in range(max(n_jobs // seeds, 1))]
    return sweep.from_dict({"command": "simulate",
                            "fixed": {"regime": "N", "K": 100, "reps": 5, "points": 4},
                            "grid": {"alpha": alphas, "seed": list(range(seeds))}})


def floor(spec: sweep.Spec, tmp: Path) -> float:
    """The jobs' command lines in this process, one after another."""
    command = registry.lookup("simulate")
    argvs = [registry.argv(command, {**j.args, "json": str(tmp / f"{i}.json")})
             for i, j in enumerate(spec.jobs)]
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(argvs[0])   # imports and Numba's cache, outside the timing
        t0 = time.perf_counter()
        for argv in argvs:
            cli.main(argv)
    return time.perf_counter() - t0


def timed_sweep(spec: sweep.Spec, out: Path, backend: str) -> float:
    t0 = time.perf_counter()
    result = sweep.run(spec, out, backend=backend, max_parallel=2, progress=False)
    wall = time.perf_counter() - t0
    assert result["done"] == len(spec.jobs), result
    shutil.rmtree(out)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import ray

    spec = make_spec(args.jobs)
    n = len(spec.jobs)
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    t_floor = floor(spec, tmp)
    t0 = time.perf_counter()
    backends.ray_init(ray, None, max_parallel=2)
    t_init = time.perf_counter() - t0
    best = {"local": float("inf"), "ray": float("inf")}
    try:
        for r in range(args.rounds):
            for backend in best:
                best[backend] = min(best[backend],
                                    timed_sweep(spec, tmp / f"{backend}{r}", backend))
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{n} simulate jobs (K=100, reps=5, 4 points), 2 workers, best of {args.rounds} "
          "rounds")
    print(f"  in-process floor, sequential: {t_floor:7.2f} s  {1e3 * t_floor / n:7.1f} ms/job")
    for backend, wall in best.items():
        print(f"  --backend {backend:<5}:              {wall:7.2f} s  {1e3 * wall / n:7.1f} "
              f"ms/job  ({wall / best['local']:.2f} × local)")
    print(f"  Ray start-up (once per `quanta sweep run`): {t_init:.1f} s")


if __name__ == "__main__":
    main()
