"""One offset fit E + A x^-alpha, no bootstrap: ``fit.fit`` against one scipy call.

Sides, on the same data, timed in one run (median of ``--reps`` calls each):

- peer: ``scipy.optimize.curve_fit`` of log(E + A x^-alpha) = logaddexp(log E, log A -
  alpha log x) on log y, the way a user would write it, from a rough start (E half the
  smallest loss, alpha 0.5, A through the median point);
- ``fit.fit("offset", x, y)``: the whole call (input checks, the linearised start and one
  MINPACK solve, covariance, warnings, the result object);
- the 24-start grid ``fit.fit`` ran before the linearised start (``fast_fit`` switched off).

Each line gives the times, the ratio to curve_fit and the three objectives (½ Σ r² on log
residuals), so "the same optimum" can be read off.

    .venv/bin/python benchmarks/bench_fit_single.py [--reps 200]
"""
from __future__ import annotations

import argparse
import time
from importlib import resources
from unittest import mock

import numpy as np
from scipy.optimize import curve_fit

import fit
import fit.core


def datasets():
    """Synthetic curves and the shipped Chinchilla compute frontier (loss against FLOP)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    out = {}
    for n in (10, 20, 100):
        x = np.geomspace(1e6, 1e9, n)
        out[f"synthetic, {n} points"] = (x, (1.7 + 400 * x ** -0.34)
                                         * np.exp(0.01 * rng.standard_normal(n)))
    with resources.files("fit").joinpath("data/chinchilla-svg-extracted.csv").open() as f:
        t = pd.read_csv(f)
    best = t.loc[t.groupby("color")["loss"].idxmin()]
    out["chinchilla compute frontier"] = (best["Training FLOP"].to_numpy(float),
                                          best["loss"].to_numpy(float))
    return out


def log_offset(x, logE, logA, alpha):
    return np.logaddexp(logE, logA - alpha * np.log(x))


def timed(call, reps):
    """Median wall time of ``reps`` calls and the last call's value."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), value


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"{'data':<30} {'curve_fit':>10} {'fit.fit':>9} {'ratio':>6} {'grid':>9} "
          f"{'ratio':>6}   objectives (curve_fit, fit, grid)")
    for name, (x, y) in datasets().items():
        logy = np.log(y)
        p0 = (np.log(y.min() / 2), np.log(np.median(y) / 2) + 0.5 * np.median(np.log(x)), 0.5)
        t_cf, p = timed(lambda: curve_fit(log_offset, x, logy, p0=p0, maxfev=20000)[0],
                        args.reps)
        f_cf = 0.5 * np.sum((logy - log_offset(x, *p)) ** 2)
        t_fit, res = timed(lambda: fit.fit("offset", x, y), args.reps)
        with mock.patch.object(fit.core, "fast_fit", lambda *a, **k: None):
            t_grid, grid = timed(lambda: fit.fit("offset", x, y), max(args.reps // 10, 5))
        print(f"{name:<30} {t_cf * 1e3:8.2f}ms {t_fit * 1e3:7.2f}ms {t_fit / t_cf:5.1f}x "
              f"{t_grid * 1e3:7.2f}ms {t_grid / t_cf:5.1f}x   {f_cf:.10g}, "
              f"{res.objective:.10g} ({res.info['start']}), {grid.objective:.10g}")


if __name__ == "__main__":
    main()
