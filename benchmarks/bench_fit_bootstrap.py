"""Bootstrap of the joint (Chinchilla) form: batched refits against a loop of scipy calls.

Both sides refit the same pairs resamples (count weights from one seeded generator) of the
same data, both warm-started at the full-data optimum, both on the same Huber objective
(delta = 1e-3, log residuals):

- reference: a Python loop of ``scipy.optimize.minimize(method="L-BFGS-B")`` with the
  analytic gradient, one call per resample (the straightforward way);
- fast path: ``fit.forms.solve_batch``, all resamples as one batched Levenberg–Marquardt /
  IRLS problem in numpy (what ``fit.fit(..., bootstrap=B)`` runs).

Prints the times, the ratio, and how the answers compare (exponent differences, and how
often each side reached the lower objective).

    .venv/bin/python benchmarks/bench_fit_bootstrap.py [--resamples 1000] [--points 250]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

import fit
from fit.bootstrap import pair_weights
from fit.core import _bounds
from fit.forms import form_spec, objective, solve_batch


def make_data(n, seed=0):
    """n runs of E + A/N^alpha + B/D^beta (Hoffmann et al.'s values) with 1% log noise."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), n))
    D = np.exp(rng.uniform(np.log(5e9), np.log(5e11), n))
    y = (1.69 + 406.4 * N ** -0.34 + 410.7 * D ** -0.28) * np.exp(0.01 * rng.standard_normal(n))
    return N, D, y


def reference_loop(spec, theta0, X, logy, W, delta, lower, upper, options=None):
    """One scipy L-BFGS-B call per resample, analytic gradient of the weighted Huber loss."""
    bounds = list(zip(np.where(np.isfinite(lower), lower, None),
                      np.where(np.isfinite(upper), upper, None)))
    out, ok = np.empty((len(W), len(theta0))), np.empty(len(W), dtype=bool)
    for b, w in enumerate(W):
        def fg(theta):
            pred, jac = spec.model(theta[None], X)
            r = logy - pred[0]
            a = np.abs(r)
            f = np.sum(w * np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)))
            return f, -(jac[0] * (w * np.clip(r, -delta, delta))[:, None]).sum(0)
        res = minimize(fg, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
        out[b], ok[b] = res.x, res.success
    return out, ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--points", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    N, D, y = make_data(args.points, args.seed)
    spec, delta = form_spec("chinchilla"), 1e-3
    X, logy = (np.log(N), np.log(D)), np.log(y)
    t0 = time.perf_counter()
    full = fit.fit("chinchilla", N, y, x2=D)
    t_full = time.perf_counter() - t0
    lower, upper = _bounds("chinchilla", X, logy, None, spec)
    W = pair_weights(args.points, args.resamples, np.random.default_rng(args.seed + 1))

    refs = {}
    for name, opts in (("default tolerances", None),
                       ("tight tolerances (ftol 1e-15, gtol 1e-12)",
                        {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})):
        t0 = time.perf_counter()
        refs[name] = (*reference_loop(spec, full.theta, X, logy, W, delta, lower, upper, opts),
                      time.perf_counter() - t0)
    t0 = time.perf_counter()
    sol = solve_batch(spec, np.tile(full.theta, (args.resamples, 1)), X, logy, weights=W,
                      loss="huber", delta=delta, lower=lower, upper=upper, maxiter=500)
    t_fast = time.perf_counter() - t0

    print(f"joint (chinchilla) form, {args.points} points, {args.resamples} pairs resamples, "
          f"Huber delta={delta}, all warm-started at the full-data fit "
          f"({full.info['n_starts']} grid starts, {t_full:.2f} s)")
    lo_f, hi_f = np.percentile(sol.theta[sol.converged, 3], [2.5, 97.5])
    print(f"fast path: batched LM/IRLS (fit.forms.solve_batch): {t_fast:7.2f} s, "
          f"failed {np.sum(~sol.converged)}, {sol.n_iter} iterations; "
          f"95% interval of alpha [{lo_f:.4f}, {hi_f:.4f}]")
    for name, (ref, ref_ok, t_ref) in refs.items():
        f_ref = objective(spec, ref, X, logy, weights=W, loss="huber", delta=delta)
        both = ref_ok & sol.converged
        rel = (f_ref - sol.objective) / sol.objective
        d_alpha = np.abs(ref[both, 3] - sol.theta[both, 3])
        lo_r, hi_r = np.percentile(ref[ref_ok, 3], [2.5, 97.5])
        print(f"reference: loop of scipy.optimize.minimize L-BFGS-B, {name}: {t_ref:7.2f} s, "
              f"failed {np.sum(~ref_ok)}; ratio reference/fast {t_ref / t_fast:.1f}x")
        print(f"    95% interval of alpha [{lo_r:.4f}, {hi_r:.4f}]; |d alpha| median "
              f"{np.median(d_alpha):.1e}, max {d_alpha.max():.1e}; batched objective lower or "
              f"equal in {np.mean(rel[both] >= -1e-9):.1%} of resamples (median excess of "
              f"scipy {np.median(rel[both]):.1e})")


if __name__ == "__main__":
    main()
