"""QDG benchmarks: per-sample gradients (backward loop vs vmap) and similarity + clustering.

    python benchmarks/bench_qdg.py grads [--width 500] [--n 1000] [--n-loop 200] [--threads 1]
    python benchmarks/bench_qdg.py cluster [--sizes 10000 20000] [--ks 50 100 200] [--threads 1]
                                           [--solver auto|arpack|dense|lanczos]

``grads``: the paper-size parity network (500 subtasks, 100 bits: 600 inputs, one hidden
layer of ``width``, 2 logits), encoded parity samples; the reference is one backward pass
per sample (``per_sample_gradients_loop``), the fast path ``per_sample_gradients`` (vmap over
grad, chunks of 256); both produce the same (n, n_params) float32 matrix (checked).
``cluster``: for each size, in a fresh subprocess, toy gradients (256 dims) → angular
affinity (blocks) → spectral embedding → k-means for every K; wall time of each stage and
the process's peak resident memory (ru_maxrss).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def bench_grads(args) -> None:
    import torch

    from empirical.parity import MLP, SparseParityTask
    from empirical.qdg import per_sample_gradients, per_sample_gradients_loop
    torch.set_num_threads(args.threads)
    task = SparseParityTask(n_tasks=500, n_bits=100, k=3, alpha=0.4, seed=0)
    torch.manual_seed(0)
    model = MLP(task.input_dim, args.width)
    x, y, _ = task.sample(args.n, torch.Generator().manual_seed(1))
    n_params = sum(p.numel() for p in model.parameters())
    per_sample_gradients(model, x[:64], y[:64], chunk_size=args.chunk)       # warm-up
    t = time.perf_counter()
    fast = per_sample_gradients(model, x, y, chunk_size=args.chunk)
    t_fast = (time.perf_counter() - t) / args.n
    per_sample_gradients_loop(model, x[:10], y[:10])                           # warm-up
    t = time.perf_counter()
    slow = per_sample_gradients_loop(model, x[:args.n_loop], y[:args.n_loop])
    t_slow = (time.perf_counter() - t) / args.n_loop
    err = float((fast[:args.n_loop] - slow).abs().max())
    print(f"parity MLP width {args.width}: {n_params} parameters, threads={args.threads}")
    print(f"  per-sample backward loop : {1e3 * t_slow:8.3f} ms/sample  ({args.n_loop} samples)")
    print(f"  vmap(grad), chunks {args.chunk:>4}: {1e3 * t_fast:8.3f} ms/sample  ({args.n} samples)")
    print(f"  ratio loop/vmap          : {t_slow / t_fast:8.1f}x   (max |diff| {err:.1e})")
    print(f"  memory written per sample: {4 * n_params / 1e6:.2f} MB")
    from empirical.qdg import cosine_similarity, linear_gradient_factors
    linear_gradient_factors(model, x[:64], y[:64])                             # warm-up
    t = time.perf_counter()
    factors = linear_gradient_factors(model, x, y)
    t_fac = (time.perf_counter() - t) / args.n
    t = time.perf_counter()
    cos_fac = cosine_similarity(factors)
    t_cos_fac = time.perf_counter() - t
    t = time.perf_counter()
    cos_ref = cosine_similarity(fast)
    t_cos = time.perf_counter() - t
    err = float(abs(cos_fac - cos_ref).max())
    print(f"  factored linear gradients: {1e3 * t_fac:8.3f} ms/sample  (one batched backward)")
    print(f"  ratio loop/factored      : {t_slow / t_fac:8.1f}x")
    n = args.n
    print(f"  cosine similarity of {n} samples: from materialised gradients {t_cos:.2f} s, "
          f"from factors {t_cos_fac:.2f} s (max |diff| {err:.1e})")
    loop_total = t_slow * n + t_cos
    print(f"  gradients + similarity, {n} samples: loop {loop_total:.1f} s, vmap "
          f"{t_fast * n + t_cos:.1f} s, factored {t_fac * n + t_cos_fac:.2f} s "
          f"→ loop/factored {loop_total / (t_fac * n + t_cos_fac):.0f}x")


def _cluster_one(n: int, ks: list[int], threads: int, solver: str = "auto") -> dict:
    import numpy as np
    import torch
    from sklearn.cluster import k_means

    from empirical.qdg import angular_affinity, laplacian_embedding, toy_embeddings
    torch.set_num_threads(threads)
    x, _ = toy_embeddings(0.5, max(ks), n, 256, 0.5, seed=0)
    out = {"n": n, "ks": ks}
    t = time.perf_counter()
    A = angular_affinity(torch.from_numpy(x))
    out["affinity_s"] = time.perf_counter() - t
    rs = np.random.RandomState(0)
    t = time.perf_counter()
    emb, _ = laplacian_embedding(A, max(ks), eigen_solver=solver, random_state=rs)
    out["embedding_s"] = time.perf_counter() - t
    out["solver"] = solver if solver != "auto" else ("dense" if n <= 6000 else "lanczos")
    t = time.perf_counter()
    for k in ks:
        k_means(emb[:, :k], k, random_state=0, n_init=1)
    out["kmeans_s"] = time.perf_counter() - t
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return out


def bench_cluster(args) -> None:
    for n in args.sizes:
        cmd = [sys.executable, __file__, "_one", args.solver, str(n), str(args.threads),
               *map(str, args.ks)]
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        if res.returncode != 0:
            print(f"n={n}: failed after {time.perf_counter() - t:.0f} s: "
                  f"{res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"n={n:>6} ks={r['ks']}: affinity {r['affinity_s']:.1f} s, embedding "
              f"({r['solver']}) {r['embedding_s']:.1f} s, k-means {r['kmeans_s']:.1f} s, "
              f"peak RSS {r['peak_rss_gb']:.2f} GB")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        n, threads, *ks = map(int, sys.argv[3:])
        print(json.dumps(_cluster_one(n, ks, threads, sys.argv[2])))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    g = sub.add_parser("grads")
    g.add_argument("--width", type=int, default=500)
    g.add_argument("--n", type=int, default=1000)
    g.add_argument("--n-loop", type=int, default=200)
    g.add_argument("--chunk", type=int, default=256)
    g.add_argument("--threads", type=int, default=1)
    c = sub.add_parser("cluster")
    c.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000])
    c.add_argument("--ks", type=int, nargs="+", default=[50, 100, 200])
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--solver", default="auto", choices=("auto", "arpack", "dense", "lanczos"))
    c.add_argument("--timeout", type=int, default=1800)
    args = p.parse_args()
    (bench_grads if args.what == "grads" else bench_cluster)(args)


if __name__ == "__main__":
    main()
