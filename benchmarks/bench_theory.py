"""Benchmark: E[L(D)] for many D values, at infinite K (the target) and at a finite K.

Reference: the straightforward route, scipy.stats.binom.cdf summed over all K_ref quanta
for each D (the exact answer for K = K_ref, and the usual way to approximate K = ∞ by
truncation), timed on a subset of the D values and scaled to all of them.
Fast path: theory.expected_loss_D (exact head + closed-form incomplete-beta tail,
vectorised over D), timed on all of them, at K = K_ref and at K = ∞.

    .venv/bin/python benchmarks/bench_theory.py [--alpha 0.4] [--tau 1] [--points 1000]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

import theory


def reference(D, alpha, tau, K):
    """Σ_{k≤K} p_k P(Bin(D, p_k) < τ) with p_k = k^-(α+1)/H_K, one D at a time."""
    k = np.arange(1, K + 1, dtype=float)
    p = k ** -(alpha + 1) / math.fsum(k ** -(alpha + 1))
    return np.array([math.fsum(p * stats.binom.cdf(tau - 1, d, p)) for d in D])


def best_time(f, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alpha", type=float, default=0.4)
    ap.add_argument("--tau", type=int, default=1)
    ap.add_argument("--points", type=int, default=1000, help="D values, log-spaced 1..1e15")
    ap.add_argument("--ref-points", type=int, default=10, help="D values timed for the reference")
    ap.add_argument("--ref-K", type=int, default=100_000, help="quanta summed by the reference")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    a, tau, K = args.alpha, args.tau, args.ref_K

    D = np.floor(np.logspace(0, 15, args.points))   # whole samples (binom.cdf needs integers)
    theory.expected_loss_D(D[:5], a, tau)            # warm caches
    t_inf, inf = best_time(lambda: theory.expected_loss_D(D, a, tau), args.repeat)
    t_fin, _ = best_time(lambda: theory.expected_loss_D(D, a, tau, K), args.repeat)

    sub = D[np.linspace(0, args.points - 1, args.ref_points).astype(int)]
    t0 = time.perf_counter()
    ref = reference(sub, a, tau, K)
    t_ref = (time.perf_counter() - t0) / len(sub) * args.points

    fast_K = theory.expected_loss_D(sub, a, tau, K)
    seen = ref > 0          # beyond D ≈ τ/p_K everything is learned and both are 0
    rel_K = np.abs(fast_K[seen] / ref[seen] - 1)
    both_zero = int(np.sum(~seen & (fast_K == 0)))
    rel_trunc = np.abs(ref / theory.expected_loss_D(sub, a, tau) - 1)

    n = args.points
    print(f"E[L(D)], alpha = {a}, tau = {tau}, {n} D values log-spaced in [1, 1e15]")
    print(f"  reference, binom.cdf summed over K = {K} quanta: {t_ref:10.3f} s "
          f"({t_ref / n * 1e3:.2f} ms/point, timed on {len(sub)} points)")
    print(f"  fast, K = {K}:                                 {t_fin:10.4f} s "
          f"({t_fin / n * 1e3:.4f} ms/point)   speed-up {t_ref / t_fin:,.0f}x")
    print(f"  fast, K = infinity:                             {t_inf:10.4f} s "
          f"({t_inf / n * 1e3:.4f} ms/point)   speed-up {t_ref / t_inf:,.0f}x")
    print(f"  fast vs reference at K = {K}: max relative difference {rel_K.max():.1e} "
          f"({seen.sum()} points; {both_zero} more where both are exactly 0)")
    print(f"  the truncated reference as an estimate of K = infinity: max relative error "
          f"{rel_trunc.max():.1e} (at D = {sub[rel_trunc.argmax()]:.0e})")


if __name__ == "__main__":
    main()
