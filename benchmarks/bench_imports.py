"""Start-up cost: ``import fit`` and whole ``quanta`` processes against the floor every
Python fit pays (``python -c "import numpy, scipy.optimize"``).

Each case is a fresh interpreter, timed wall-clock from spawn to exit; the cases are run
interleaved ``--reps`` times and the median is reported with its ratio to the floor. The
file fitted is 20 rows of an offset law; the peer for the fit is a plain script that reads
the same CSV with numpy and runs ``scipy.optimize.curve_fit`` on 1000 pairs resamples.

    .venv/bin/python benchmarks/bench_imports.py [--reps 7]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CURVE_FIT_SCRIPT = """
import sys
import numpy as np
from scipy.optimize import curve_fit
x, y = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, unpack=True)
f = lambda x, e, a, al: np.logaddexp(e, a - al * np.log(x))
p0 = (np.log(y.min() / 2), np.log(np.median(y) / 2) + 0.5 * np.median(np.log(x)), 0.5)
p, _ = curve_fit(f, x, np.log(y), p0=p0)
rng = np.random.default_rng(0)
boot = [curve_fit(f, x[i], np.log(y[i]), p0=p)[0] for i in rng.integers(0, len(x), (1000, len(x)))]
print(p, np.percentile(np.array(boot)[:, 2], [2.5, 97.5]))
"""


def cases(csv: Path) -> dict[str, list[str]]:
    py = sys.executable
    quanta = [py, "-m", "quanta"]
    fit_args = ["fit", str(csv), "--x", "N", "--y", "loss", "--form", "offset"]
    return {
        "floor: import numpy, scipy.optimize": [py, "-c", "import numpy, scipy.optimize"],
        "import fit": [py, "-c", "import fit"],
        "quanta --help": quanta + ["--help"],
        "quanta theory --alpha 0.4": quanta + ["theory", "--alpha", "0.4"],
        "quanta fit (offset, no bootstrap)": quanta + fit_args + ["--bootstrap", "0"],
        "quanta fit (offset, 1000 resamples)": quanta + fit_args + ["--bootstrap", "1000"],
        "curve_fit script, 1000 resamples": [py, "-c", CURVE_FIT_SCRIPT, str(csv)],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "losses.csv"
        x = np.geomspace(1e6, 1e9, 20)
        y = (1.7 + 400 * x ** -0.34) * np.exp(0.01 * np.random.default_rng(0).standard_normal(20))
        np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="N,loss", comments="")
        todo = cases(csv)
        times = {name: [] for name in todo}
        for _ in range(args.reps):
            for name, cmd in todo.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, env=env, cwd=tmp, capture_output=True)
                times[name].append(time.perf_counter() - t0)
    floor = np.median(times["floor: import numpy, scipy.optimize"])
    print(f"median of {args.reps} interleaved runs, wall time from spawn to exit")
    for name, t in times.items():
        print(f"{name:<40} {np.median(t):6.2f} s   {np.median(t) / floor:5.2f}x the floor")


if __name__ == "__main__":
    main()
