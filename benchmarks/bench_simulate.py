"""Monte Carlo speed: the per-sample NumPy reference against the Numba kernel.

    .venv/bin/python benchmarks/bench_simulate.py [--quick]

1. Same configuration (α = 0.4, τ = 1, K = 10^5, 30 D values 10^2 … 10^6, then … 10^7),
   time per realization: reference (tests/naive_simulate.py draws every sample) vs
   kernel, ratio. The reference costs O(D), the kernel O(K): the ratio grows like D.
2. The target: 1000 realizations × 30 D values (10^2 … 10^9) × K = 10^5, wall and CPU time.
3. Memory: peak RSS of a fresh process simulating up to D = 10^3 and up to D = 10^12.
4. The step rule and the noisy-order N learner on the same scale, for the record.

``--against REV`` instead times this tree's kernels against ``simulate/_kernels.py`` as of
git revision REV, side by side in one process (interleaved rounds, best of each), on the
data kernel (D up to 10^6 and 10^9), the step rule and the noisy-order N learner: the
check that a change to the kernels did not slow them.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import simulate  # noqa: E402
from tests import naive_simulate  # noqa: E402


def timed(fn):
    """(result, wall seconds, CPU seconds of this process and its threads)."""
    t0, c0 = time.perf_counter(), os.times()
    out = fn()
    c1 = os.times()
    return out, time.perf_counter() - t0, (c1.user - c0.user) + (c1.system - c0.system)


def same_configuration(d_max: float, ref_reps: int, reps: int, rounds: int = 3) -> None:
    """Reference and kernel (with and without p_learned) in ``rounds`` interleaved rounds,
    best of each: the shared 2-core machine's speed drifts by ±30% over minutes, and
    interleaving exposes both sides to the same drift."""
    x = np.unique(np.round(np.geomspace(1e2, d_max, 30)))
    simulate.run("D", 0.4, x, K=100_000, reps=2, seed=0)  # compile / load the cache
    per_ref = np.inf
    best = {True: (np.inf, np.inf), False: (np.inf, np.inf)}  # p_learned: (wall, CPU)
    for _ in range(rounds):
        _, t_ref, _ = timed(lambda: naive_simulate.losses("D", 0.4, x, K=100_000,
                                                          reps=ref_reps, seed=0))
        per_ref = min(per_ref, t_ref / ref_reps)
        for p_learned in best:
            _, t_fast, c_fast = timed(lambda: simulate.run("D", 0.4, x, K=100_000, reps=reps,
                                                           seed=0, p_learned=p_learned))
            best[p_learned] = min(best[p_learned], (t_fast / reps, c_fast / reps))
    print(f"1. same configuration: alpha=0.4 tau=1 K=1e5, 30 D values 1e2..{d_max:.0e} "
          f"(best of {rounds} interleaved rounds)")
    print(f"   reference (per-sample NumPy): {per_ref * 1e3:10.2f} ms / realization "
          f"({ref_reps} realizations; losses and learned fractions)")
    for p_learned in (True, False):
        per_fast, cpu = best[p_learned]
        what = "losses and p_learned" if p_learned else "losses only (the CLI)"
        print(f"   kernel, {what:22s}: {per_fast * 1e3:8.3f} ms / realization ({reps} "
              f"realizations, {simulate_threads()} threads, CPU {cpu * 1e3:.3f} ms)"
              f"  ratio {per_ref / per_fast:6.0f}x")


def simulate_threads() -> int:
    import numba

    return numba.get_num_threads()


def target(reps: int) -> None:
    x = np.geomspace(1e2, 1e9, 30)
    simulate.run("D", 0.4, x, K=100_000, reps=2, seed=0)
    res, wall, cpu = timed(lambda: simulate.run("D", 0.4, x, K=100_000, reps=reps, seed=0))
    print(f"2. target: {reps} realizations x 30 D values (1e2..1e9) x K=1e5: "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU (target < 5 s wall on 2 cores); "
          f"fitted exponent {res.exponent():.4f} vs {res.theory_exponent:.4f}")


MEMORY_CHILD = """
import resource, numpy as np, simulate
simulate.run("D", 0.4, np.geomspace(1e2, {d_max:g}, 30), K=100_000, reps=200, seed=0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory() -> None:
    print("3. peak RSS of a fresh process (K=1e5, 200 realizations, 30 D values from 1e2):")
    for d_max in (1e3, 1e12):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD.format(d_max=d_max)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        print(f"   D up to {d_max:7.0e}: {int(out.stdout.split()[-1]) / 1024:8.1f} MiB")


def others(reps: int) -> None:
    x = np.geomspace(1e1, 1e7, 30)
    simulate.run("S", 0.4, x, batch=16, rule="steps", K=100_000, reps=2, seed=0)
    _, wall, cpu = timed(lambda: simulate.run("S", 0.4, x, batch=16, rule="steps",
                                              K=100_000, reps=reps, seed=0))
    print(f"4. step rule, B=16, 30 S values 1e1..1e7, K=1e5: {wall / reps * 1e3:.2f} ms wall "
          f"/ realization ({reps} realizations, CPU {cpu / reps * 1e3:.2f} ms)")
    n = np.geomspace(1, 1e5, 30)
    simulate.run("N", 0.4, n, K=100_000, reps=2, seed=0, noisy=True, D=10**8)
    _, wall, cpu = timed(lambda: simulate.run("N", 0.4, n, K=100_000, reps=reps, seed=0,
                                              noisy=True, D=10**8))
    print(f"   noisy-order N, D=1e8, 30 N values, K=1e5: {wall / reps * 1e3:.2f} ms wall / "
          f"realization (CPU {cpu / reps * 1e3:.2f} ms)")


def kernels_at(rev: str):
    """``simulate/_kernels.py`` as of git revision ``rev``, imported as its own module (from
    a temporary folder, where Numba keeps its cache)."""
    src = subprocess.run(["git", "show", f"{rev}:simulate/_kernels.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench_kernels_")) / "_kernels_at_rev.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("_kernels_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: (label, regime, alpha, grid, options, realizations) of the side-by-side comparison:
#: about 0.2 s a timing, so that many interleaved rounds fit
AGAINST_CASES = [
    ("data, D 1e2..1e6", "D", 0.4, np.geomspace(1e2, 1e6, 30), dict(K=100_000), 600),
    ("data, D 1e2..1e9", "D", 0.4, np.geomspace(1e2, 1e9, 30), dict(K=100_000), 200),
    ("data, tau 4, D 1e2..1e7", "D", 0.4, np.geomspace(1e2, 1e7, 30), dict(K=100_000, tau=4),
     60),
    ("steps, B 16, S 1e1..1e6", "S", 0.4, np.geomspace(1e1, 1e6, 30),
     dict(K=100_000, batch=16, rule="steps"), 20),
    ("noisy N, D 1e8", "N", 0.4, np.geomspace(1, 1e5, 30), dict(K=100_000, noisy=True, D=10**8),
     60),
]


def against(rev: str, rounds: int, only: str | None = None) -> None:
    """This tree's kernels against revision ``rev``'s on AGAINST_CASES: ``rounds``
    interleaved rounds (the shared machine drifts), best wall time of each side, and
    the results checked equal (the same seed gives the same numbers). ``only``: the cases
    whose label starts so (e.g. ``data``)."""
    import simulate.core as core

    kernels = {"this tree": core._kernels, rev: kernels_at(rev)}
    print(f"kernels of this tree against {rev}: best of {rounds} interleaved rounds, "
          f"{simulate_threads()} threads")
    for label, regime, alpha, x, kw, reps in AGAINST_CASES:
        if only and not label.startswith(only):
            continue
        best, out = {}, {}
        for module in kernels.values():  # compile / load the cache
            core._kernels = module
            simulate.run(regime, alpha, x, reps=2, seed=0, **kw)
        for _ in range(rounds):
            for name, module in kernels.items():
                core._kernels = module
                res, wall, cpu = timed(lambda: simulate.run(regime, alpha, x, reps=reps,
                                                            seed=0, p_learned=False, **kw))
                best[name] = np.minimum(best.get(name, np.inf), (wall, cpu))
                out[name] = res.losses
        core._kernels = kernels["this tree"]
        same = np.array_equal(*out.values())
        (new, new_cpu), (old, old_cpu) = best["this tree"], best[rev]
        print(f"   {label:26s}: {new / reps * 1e3:8.3f} ms / realization vs "
              f"{old / reps * 1e3:8.3f} ({rev}); ratio {new / old:5.3f} wall, "
              f"{new_cpu / old_cpu:5.3f} CPU; losses {'identical' if same else 'DIFFER'} "
              f"({reps} realizations)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer realizations")
    parser.add_argument("--against", metavar="REV",
                        help="time this tree's kernels against those of git revision REV")
    parser.add_argument("--only", metavar="KIND", help="with --against: only the cases whose "
                        "label starts with KIND (data, steps, noisy)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.against:
        against(args.against, rounds=5 if args.quick else 15, only=args.only)
        return
    same_configuration(1e6, ref_reps=2 if args.quick else 5, reps=200 if args.quick else 1000)
    same_configuration(1e7, ref_reps=1 if args.quick else 2, reps=200 if args.quick else 1000)
    target(reps=200 if args.quick else 1000)
    memory()
    others(reps=20 if args.quick else 100)


if __name__ == "__main__":
    main()
