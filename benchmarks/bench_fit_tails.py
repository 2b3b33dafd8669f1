"""Power-law tails on the eight reference data sets: the x_min scan, the likelihood-ratio
comparisons and the goodness-of-fit p-value, against the plain scan they replace and the
``powerlaw`` package, side by side in one run.

- scan: ``fit.tails.fit_tail`` (sorted data, cumulative sums, early-exit KS, Numba) against
  the pre-#20 scan (tests/naive_tails.py: one bounded scalar minimisation and one KS pass
  per candidate) and ``powerlaw.Fit(...).xmin`` (the package's own scan); x_min and the
  exponent of each side are printed so "the same answer" can be read off. Discrete for the
  integer sets (as ``quanta fit sizes --method mle``), continuous for all (blackouts,
  cities, quakes, surnames in thousands, as Clauset et al.);
- comparisons: ``fit.alternatives.compare_alternatives`` (4 alternatives) against the
  package's ``distribution_compare`` for the same four, at the same x_min;
- p-value: ``fit.gof.power_law_gof`` with ``--sims`` synthetic sets (no Python package
  has it; the time per synthetic set is the number to read).

The first call of each Numba kernel compiles it (cached on disk afterwards); the times are
of warm calls (median of ``--reps``), the compile time is printed once.

    .venv/bin/python benchmarks/bench_fit_tails.py [--reps 3] [--sims 200] [--naive]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_fit_single import timed  # noqa: E402
from fit.alternatives import compare_alternatives  # noqa: E402
from fit.gof import power_law_gof  # noqa: E402
from fit.tails import fit_tail  # noqa: E402

THOUSANDS = {"blackouts", "cities", "quakes", "surnames"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--naive", action="store_true",
                    help="also time the pre-#20 scan (cities: ~10-20 s)")
    args = ap.parse_args(argv)
    import powerlaw

    from tests.naive_tails import continuous_scan, discrete_scan
    sets = dict(np.load(ROOT / "tests" / "data" / "powerlaw_reference.npz"))
    t_compile, _ = timed(lambda: fit_tail(sets["words"][:200], discrete=True), 1)
    print(f"Numba compile or cache load of the kernels: {t_compile:.2f} s (once per process)")
    print(f"{'set':<10} {'law':<10} {'fit_tail':>9} {'old scan':>9} {'ratio':>6} "
          f"{'powerlaw':>9} {'ratio':>6}  x_min / exponent (ours; old; powerlaw)")
    for name, raw in sets.items():
        kinds = (["discrete"] if np.all(raw == np.round(raw)) else []) + ["continuous"]
        for kind in kinds:
            x = raw * (1e-3 if kind == "continuous" and name in THOUSANDS else 1.0)
            disc = kind == "discrete"
            t_new, res = timed(lambda: fit_tail(x, discrete=disc), args.reps)
            old = "-"
            t_old = np.nan
            if args.naive:
                t_old, ref = timed(lambda: (discrete_scan if disc else continuous_scan)(x), 1)
                old = f"{ref['xmin']:g}/{ref['gamma']:.6f}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_pl, f = timed(lambda: powerlaw.Fit(x, discrete=disc, estimate_discrete=False,
                                                     verbose=False), 1)
            print(f"{name:<10} {kind:<10} {t_new * 1e3:7.1f}ms {t_old * 1e3:7.0f}ms "
                  f"{t_old / t_new:5.0f}x {t_pl * 1e3:7.0f}ms {t_pl / t_new:5.0f}x  "
                  f"{res.xmin:g}/{res.gamma:.6f}; {old}; {f.xmin:g}/{f.power_law.alpha:.6f}")
    _comparisons_and_gof(sets, args, powerlaw)


def _comparisons_and_gof(sets, args, powerlaw):
    """The four comparisons against the package's, and the p-value's cost per synthetic set."""
    print(f"\n{'set':<10} {'comparisons':>11} {'powerlaw':>9} {'ratio':>6}   "
          f"{'p-value':>8} ({args.sims} sims)   per synthetic set")
    for name, raw in sets.items():
        disc = name in ("words", "terrorism")
        x = raw * (1e-3 if not disc and name in THOUSANDS else 1.0)
        res = fit_tail(x, discrete=disc)
        tail = res.samples[res.samples >= res.xmin]
        t_cmp, _ = timed(lambda: compare_alternatives(tail, res.xmin, res.gamma, disc), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = powerlaw.Fit(x, discrete=disc, estimate_discrete=False, xmin=res.xmin,
                             verbose=False)
            t_pl, _ = timed(lambda: [f.distribution_compare("power_law", alt)
                                     for alt in ("exponential", "stretched_exponential",
                                                 "lognormal", "truncated_power_law")], 1)
        t_gof, gof = timed(lambda: power_law_gof(x, discrete=disc, sims=args.sims, seed=0,
                                                 compare=False), 1)
        print(f"{name:<10} {t_cmp:9.2f} s {t_pl:7.2f} s {t_pl / t_cmp:5.1f}x   "
              f"{gof.p_value:8.3f} ± {gof.p_se:.3f}  {t_gof:7.1f} s   "
              f"{t_gof / args.sims * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
