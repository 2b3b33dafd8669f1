"""The slow, obviously correct Monte Carlo: draw every sample, count, learn.

Each realization draws its samples one by one (``rng.choice`` over K quanta), so it costs
O(D) time and memory; the kernels in ``simulate._kernels`` must agree with it in
distribution on small cases (tests/test_simulate_kernels.py) and beat it by orders of
magnitude (benchmarks/bench_simulate.py).
"""
from __future__ import annotations

import numpy as np

import theory


def learned_sets(regime, alpha, x, *, tau=1, K=100, batch=1, rule="samples", C=1.0,
                 N=None, D=None, noisy=False, rng):
    """One realization: a (points × K) boolean array, True where quantum k is learned."""
    p = np.asarray(theory.frequencies(alpha, K), float)
    x = np.asarray(x)
    learned = np.zeros((x.size, K), bool)
    if regime == "N":
        n = np.floor(x / C).astype(int)
        if not noisy:
            return np.arange(K)[None, :] < n[:, None]
        counts = np.bincount(rng.choice(K, size=D, p=p), minlength=K)
        order = np.lexsort((rng.random(K), -counts))  # most seen first, random ties
        eligible = order[counts[order] >= tau]
        for j, nj in enumerate(n):
            learned[j, eligible[:nj]] = True
        return learned
    steps = x.astype(int)
    b = batch if regime == "S" else 1
    samples = rng.choice(K, size=(steps.max(), b), p=p)  # one row per step
    for j, s in enumerate(steps):
        if regime == "S" and rule == "steps":
            present = np.zeros(K, int)
            for row in samples[:s]:
                present[np.unique(row)] += 1
            learned[j] = present >= tau
        else:
            learned[j] = np.bincount(samples[:s].ravel(), minlength=K) >= tau
    if N is not None:
        learned[:, int(np.floor(N / C)):] = False
    return learned


def losses(regime, alpha, x, *, reps, seed, K=100, a=0.0, b=1.0, **options):
    """reps × points losses Σ_k p_k (a if learned else b), and the learned fractions."""
    rng = np.random.default_rng(seed)
    p = np.asarray(theory.frequencies(alpha, K), float)
    out = np.empty((reps, np.size(x)))
    frac = np.zeros((np.size(x), K))
    for r in range(reps):
        learned = learned_sets(regime, alpha, x, K=K, rng=rng, **options)
        out[r] = np.where(learned, p * a, p * b).sum(axis=1)
        frac += learned
    return out, frac / reps
