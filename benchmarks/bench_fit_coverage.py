"""How often do the 95 % intervals of ``fit.fit`` cover the truth? A simulation study.

Data are drawn from a known law with log-normal noise, fitted with a bootstrap, and each
parameter's interval is checked against the true value: pairs and residual bootstrap,
percentile and BCa intervals (one bootstrap gives both), and the fit's own Wald intervals, for
the ``offset`` law (E + A x^-alpha, least squares) and the ``chinchilla`` law (E + A N^-alpha +
B D^-beta, Huber loss as Hoffmann et al.) at 10, 30 and 240 points. Coverage is counted over
the replications whose fit returned an interval; a failed refit count is reported beside it.
The Monte Carlo standard error of a coverage c over R replications is sqrt(c (1 − c) / R).

    python benchmarks/bench_fit_coverage.py --reps 200 --resamples 400 --out coverage.csv

prints a markdown table (BENCHMARKS.md holds the one measured) and writes one row per
replication, interval and parameter to ``--out``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fit  # noqa: E402

TRUTH = {
    "offset": dict(E=1.7, A=400.0, alpha=0.34),
    "chinchilla": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
}
#: log-normal noise of the losses (the Chinchilla fit's residual scale is about 0.02)
NOISE = 0.02
SIZES = (10, 30, 240)
METHODS = ("pairs", "residuals")


def design(form: str, n: int):
    """The fixed sizes of a study: a log grid of x (offset); N and D drawn once,
    independently and log-uniformly (chinchilla), so that both exponents are identified."""
    if form == "offset":
        return np.geomspace(1e6, 1e10, n), None
    rng = np.random.default_rng([7, n])
    return (np.exp(rng.uniform(np.log(1e7), np.log(1e10), n)),
            np.exp(rng.uniform(np.log(1e9), np.log(1e12), n)))


def law(form: str, x, x2):
    p = TRUTH[form]
    if form == "offset":
        return p["E"] + p["A"] * x ** -p["alpha"]
    return p["E"] + p["A"] * x ** -p["alpha"] + p["B"] * x2 ** -p["beta"]


def replicate(form: str, n: int, rep: int, resamples: int) -> list[dict]:
    """One data set, fitted with each bootstrap method: rows (method, interval, param,
    covered, width, failed)."""
    x, x2 = design(form, n)
    rng = np.random.default_rng([11, SIZES.index(n), list(TRUTH).index(form), rep])
    y = law(form, x, x2) * np.exp(NOISE * rng.standard_normal(n))
    rows = []
    for method in METHODS:
        res = fit.fit(form, x, y, x2=x2, bootstrap=resamples, bootstrap_method=method,
                      seed=rep, jackknife=True)
        intervals = ("percentile", "bca") + (("wald",) if method == "pairs" else ())
        for ci_method in intervals:
            table = res.conf_int(method=ci_method)
            for name, truth in TRUTH[form].items():
                known = name in table.index
                lo, hi = table.loc[name] if known else (np.nan, np.nan)
                rows.append(dict(method="-" if ci_method == "wald" else method,
                                 interval=ci_method, param=name,
                                 covered=float(lo <= truth <= hi) if known else np.nan,
                                 width=float(np.log(hi / lo)) if lo > 0 else np.nan,
                                 failed=res.n_failed_bootstrap / resamples))
    for r in rows:
        r.update(form=form, n=n, rep=rep)
    return rows


def markdown(frame, params=("alpha", "beta", "E")) -> str:
    """Coverage ± its Monte Carlo SE per form, size, method and interval."""
    lines = ["| form | n | bootstrap | interval | " + " | ".join(
        f"{p} coverage" for p in params) + " | failed refits | replications |",
        "|---|---|---|---|" + "---|" * len(params) + "---|---|"]
    keys = ["form", "n", "method", "interval"]
    for key, grp in frame.groupby(keys, sort=False):
        cells = []
        for p in params:
            c = grp.loc[grp["param"] == p, "covered"].dropna()
            cells.append("–" if c.empty else
                         f"{c.mean():.3f} ± {np.sqrt(c.mean() * (1 - c.mean()) / len(c)):.3f}")
        reps = grp["rep"].nunique()
        failed = grp["failed"].mean()
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells)
                     + f" | {failed:.1%} | {reps} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--resamples", type=int, default=400)
    ap.add_argument("--forms", nargs="+", default=list(TRUTH), choices=list(TRUTH))
    ap.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    ap.add_argument("--out", default="coverage.csv")
    args = ap.parse_args(argv)
    rows, t0 = [], time.perf_counter()
    for form in args.forms:
        for n in args.sizes:
            t = time.perf_counter()
            for rep in range(args.reps):
                rows += replicate(form, n, rep, args.resamples)
            print(f"{form} n={n}: {args.reps} replications in {time.perf_counter() - t:.0f} s",
                  file=sys.stderr, flush=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)
    frame = pd.DataFrame(rows)
    print(markdown(frame))
    print(f"\n{args.reps} replications, {args.resamples} resamples each, noise {NOISE} "
          f"(log-normal); {time.perf_counter() - t0:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
