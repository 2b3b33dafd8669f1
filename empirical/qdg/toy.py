"""QDG's toy model, where α is known: how biased is each α estimator?

Embeddings with planted quanta (Michaud et al. 2023, appendix on QDG, Figures 16–17):
``n_clusters`` true clusters, sample i belongs to cluster k with probability
p_k = k^-(α+1)/H (``theory.frequencies``), its vector is the cluster's centre (a random unit
vector in ``dim`` dimensions) plus Gaussian noise of expected norm ``sigma`` (N(0, σ²/dim)
per coordinate), then L2-normalised. The vectors stand in for per-sample gradients: the QDG
pipeline (angular affinity, spectral clustering over several K, estimators) runs unchanged.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from common import resources
from common.errors import InputError
import theory
from theory._checks import check_alpha

from .clustering import QDGClusteringSweep
from .estimators import ESTIMATORS, estimate_all
from .similarity import angular_affinity, check_affinity_memory


def toy_embeddings(alpha: float, n_clusters: int, n_samples: int, dim: int, sigma: float,
                   seed=0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors float32 (n_samples, dim), true labels int (n_samples,)); label 0 is the most
    frequent cluster."""
    for name, v in (("n_clusters", n_clusters), ("n_samples", n_samples), ("dim", dim)):
        if int(v) < 1:
            raise InputError(f"{name} must be a positive integer, got {v}")
    if not sigma >= 0:
        raise InputError(f"sigma must be >= 0, got {sigma}")
    rng = np.random.default_rng(seed)
    p = np.asarray(theory.frequencies(alpha, K=int(n_clusters)), dtype=float)
    labels = rng.choice(int(n_clusters), size=int(n_samples), p=p / p.sum())
    centres = rng.standard_normal((int(n_clusters), int(dim)))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[labels] + sigma / np.sqrt(dim) * rng.standard_normal((int(n_samples), int(dim)))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def run_toy(alpha: float = 0.5, n_clusters: int = 200, n_samples: int = 10_000, dim: int = 64,
            sigma: float = 0.5, ks: Sequence[int] = (50, 100, 200, 400), *, reps: int = 1,
            seed=0, estimators: Sequence[str] = ESTIMATORS, k: int | None = None,
            rank_window=None, bootstrap: int = 200, level: float = 0.95, n_init: int = 10,
            eigen_solver: str = "auto") -> dict:
    """The QDG pipeline on ``reps`` toy data sets (seeds spawned from ``seed``).

    Returns a JSON-ready dict: ``config``, ``alpha_true``, ``estimators`` (name →
    ``alpha_hat`` (mean over reps), ``ci`` (mean bootstrap interval), ``sd`` over reps,
    ``per_rep``), ``ari``/``nmi`` (K → mean over reps, against the planted clusters),
    ``sizes`` (rep 0: K → sorted cluster sizes, and ``true``), ``seconds``.
    """
    _check_sizes(reps, n_samples, dim)
    config = dict(alpha=alpha, n_clusters=n_clusters, n_samples=n_samples, dim=dim, sigma=sigma,
                  ks=[int(v) for v in ks], reps=reps, seed=seed, estimators=list(estimators),
                  k=k, rank_window=rank_window, bootstrap=bootstrap, level=level,
                  n_init=n_init, eigen_solver=eigen_solver)
    t0 = time.perf_counter()
    seeds = np.random.SeedSequence(seed).spawn(reps)
    per_rep, ari, nmi, sizes0 = [], {}, {}, None
    for r, ss in enumerate(seeds):
        data_seed, cluster_seed, boot_seed = ss.generate_state(3)
        x, truth = toy_embeddings(alpha, n_clusters, n_samples, dim, sigma, seed=int(data_seed))
        A = angular_affinity(torch.from_numpy(x))
        model = QDGClusteringSweep(list(ks), affinity="precomputed",
                                   eigen_solver=eigen_solver, n_init=n_init,
                                   random_state=int(cluster_seed) % 2**31).fit(A)
        est = estimate_all(model.cluster_sizes_, estimators=estimators, k=k,
                           rank_window=rank_window, bootstrap=bootstrap, level=level,
                           seed=int(boot_seed), labels_by_k=model.labels_by_k_)
        per_rep.append({n: e.to_dict() for n, e in est.items()})
        for kk, lab in model.labels_by_k_.items():
            ari.setdefault(kk, []).append(adjusted_rand_score(truth, lab))
            nmi.setdefault(kk, []).append(normalized_mutual_info_score(truth, lab))
        if r == 0:
            sizes0 = {str(kk): v for kk, v in model.cluster_sizes_.items()}
            sizes0["true"] = np.sort(np.bincount(truth, minlength=n_clusters))[::-1]
            _check_time(time.perf_counter() - t0, reps, f"{reps:,} QDG repetitions")
    summary = {}
    for name in estimators:
        a = np.array([p[name]["alpha_hat"] for p in per_rep])
        cis = np.array([p[name]["ci"] for p in per_rep], dtype=float)
        summary[name] = {"alpha_hat": float(a.mean()), "ci": np.nanmean(cis, axis=0).tolist()
                         if np.isfinite(cis).any() else [None, None],
                         "sd": float(a.std(ddof=1)) if reps > 1 else None,
                         "bias": float(a.mean() - alpha), "per_rep": [p[name] for p in per_rep]}
    return {"config": config, "alpha_true": alpha, "estimators": summary,
            "ari": {kk: float(np.mean(v)) for kk, v in ari.items()},
            "nmi": {kk: float(np.mean(v)) for kk, v in nmi.items()},
            "sizes": sizes0, "seconds": time.perf_counter() - t0}


def _check_sizes(reps: int, n_samples: int, dim: int) -> None:
    """Refuse a toy run whose repetitions, embeddings or affinity would not fit, before
    drawing anything."""
    if int(reps) < 1:
        raise InputError(f"reps must be a positive integer, got {reps}")
    if int(n_samples) >= 1 and int(dim) >= 1:
        resources.check_memory(16.0 * int(n_samples) * int(dim) + 600.0 * int(reps),
                               f"{int(reps):,} toy data sets of {int(n_samples):,} × "
                               f"{int(dim):,}", "lower the samples, dim or reps")
        check_affinity_memory(int(n_samples))


def _check_time(first_s: float, count: int, what: str) -> None:
    """After the first of ``count`` equal pieces of work: refuse the rest if the whole would
    take too long (say how long if it takes a while)."""
    resources.check_seconds(first_s * count, what, "lower the repetitions or the samples")


def bias_study(alphas: Sequence[float], dims: Sequence[int], sigmas: Sequence[float], *,
               n_clusters: Sequence[int] = (100,), samples: Sequence[int] = (2000,),
               ks: Sequence[int] = (10, 20, 40, 80), reps: int = 3, seed=0, n_init: int = 3,
               estimators: Sequence[str] = ESTIMATORS, progress=None):
    """Every estimator over the grid alphas × dims × sigmas × n_clusters × samples, ``reps``
    data sets each; the single-K estimators are evaluated at every K. Returns a pandas
    DataFrame, one row per (cell, rep, estimator, K): the settings, ``k`` (0 for the
    envelope, which uses all K), ``alpha_true``, ``alpha_hat``, ``ari`` and ``nmi`` of that
    K's clustering against the planted clusters (for the envelope: at the largest K),
    ``seconds`` (clustering time of the data set)."""
    import pandas as pd
    from .estimators import estimate_alpha
    rows = []
    grid = list(itertools.product(alphas, dims, sigmas, n_clusters, samples))
    if not grid:
        raise InputError("the grid of settings is empty: give at least one value of each")
    for a in alphas:
        check_alpha(a)
    for s in sigmas:
        if not (np.isfinite(s) and s >= 0):
            raise InputError(f"sigma must be a finite number >= 0, got {s}")
    for d in dims:
        for n in samples:
            _check_sizes(reps, n, d)
    # each cell's seed comes from its settings, so a cell rerun alone gives the same data
    seeds = [np.random.SeedSequence([int(seed), round(1e6 * a), int(d), round(1e6 * s),
                                     int(nc), int(n)]) for a, d, s, nc, n in grid]
    for i, ((a, d, s, nc, n), ss) in enumerate(zip(grid, seeds)):
        for r, rs in enumerate(ss.spawn(reps)):
            data_seed, cluster_seed = rs.generate_state(2)
            t0 = time.perf_counter()
            x, truth = toy_embeddings(a, nc, n, d, s, seed=int(data_seed))
            model = QDGClusteringSweep(list(ks), affinity="precomputed", n_init=n_init,
                                       random_state=int(cluster_seed) % 2**31).fit(
                angular_affinity(torch.from_numpy(x)))
            sec = time.perf_counter() - t0
            if i == 0 and r == 0:
                _check_time(sec, len(grid) * reps, f"{len(grid) * reps:,} QDG data sets")
            base = dict(alpha_true=a, dim=d, sigma=s, n_clusters=nc, n_samples=n, rep=r,
                        seconds=sec)
            score = {kk: (adjusted_rand_score(truth, lab), normalized_mutual_info_score(truth, lab))
                     for kk, lab in model.labels_by_k_.items()}
            for name in estimators:
                for kk in ([max(ks)] if name == "envelope" else ks):
                    try:
                        ah = estimate_alpha(model.cluster_sizes_, name, k=kk, bootstrap=0).alpha_hat
                    except ValueError:
                        ah = np.nan
                    rows.append(dict(base, estimator=name, k=0 if name == "envelope" else kk,
                                     alpha_hat=ah, ari=score[kk][0], nmi=score[kk][1]))
        if progress is not None:
            progress(i + 1, len(grid), rows[-1])
    return pd.DataFrame(rows)


def summarize_bias(runs) -> "pd.DataFrame":
    """Bias (mean α̂ − α), spread (SD of α̂) and RMSE per estimator and setting."""
    keys = ["estimator", "k", "dim", "sigma", "n_clusters", "n_samples", "alpha_true"]
    g = runs.assign(err=runs.alpha_hat - runs.alpha_true).groupby(keys)
    out = g.agg(alpha_hat=("alpha_hat", "mean"), sd=("alpha_hat", "std"),
                bias=("err", "mean"), rmse=("err", lambda e: float(np.sqrt(np.mean(e ** 2)))),
                ari=("ari", "mean"), nmi=("nmi", "mean"), reps=("rep", "count"))
    return out.reset_index()


def calibrate(alpha_true, alpha_hat) -> dict:
    """Linear calibration α̂ = c0 + c1·α fitted by least squares, and its inverse
    α = (α̂ − c0)/c1; ``residual_sd`` is the SD of the inverted estimates around the true α
    (the uncertainty the calibration leaves), ``raw_rmse`` the RMSE before calibration."""
    x, y = np.asarray(alpha_true, float), np.asarray(alpha_hat, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0:
        raise InputError("calibration needs at least 3 estimates over at least 2 values of α")
    c1, c0 = np.polyfit(x, y, 1)
    back = (y - c0) / c1
    return {"c0": float(c0), "c1": float(c1), "residual_sd": float(np.std(back - x, ddof=2)),
            "raw_rmse": float(np.sqrt(np.mean((y - x) ** 2))), "n": int(x.size)}


def apply_calibration(alpha_hat, calibration: dict):
    """α from an estimate through a :func:`calibrate` result."""
    return (np.asarray(alpha_hat, float) - calibration["c0"]) / calibration["c1"]


def bias_report(runs) -> dict:
    """Per estimator (and K for the single-K ones), over the whole grid: mean bias, mean
    within-setting SD, RMSE, the linear calibration (:func:`calibrate`) and the spread it
    leaves; ``recommended`` is the one with the smallest residual SD after calibration
    (ties: smaller raw RMSE). JSON-ready."""
    summary = summarize_bias(runs)
    table = []
    for (est, k), g in runs.groupby(["estimator", "k"]):
        s = summary[(summary.estimator == est) & (summary.k == k)]
        try:
            cal = calibrate(g.alpha_true, g.alpha_hat)
        except ValueError:
            cal = {"c0": None, "c1": None, "residual_sd": None, "raw_rmse": None, "n": 0}
        table.append({"estimator": est, "k": int(k), "mean_bias": float(s.bias.mean()),
                      "max_abs_bias": float(s.bias.abs().max()), "mean_sd": float(s.sd.mean()),
                      "rmse": float(np.sqrt(np.nanmean((g.alpha_hat - g.alpha_true) ** 2))),
                      "n_failed": int(g.alpha_hat.isna().sum()), "calibration": cal})
    usable = [t for t in table if t["calibration"]["residual_sd"] is not None
              and t["calibration"]["c1"] > 0.2]
    best = min(usable, key=lambda t: (round(t["calibration"]["residual_sd"], 3), t["rmse"]),
               default=None)
    return {"estimators": table, "recommended": best}
