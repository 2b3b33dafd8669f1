"""Fused sweep training against a research-code-style reference, on the same configuration.

(a) reference: one network at a time, each batch built by a Python loop over subtasks
    (multinomial counts, then one block of samples per subtask), evaluation every
    ``--ref-eval-every`` steps as one forward per subtask (as the paper's research code);
(b) fused: ``empirical.parity.train`` with every width in one model and one Adam step.

Prints network-steps per second for both and the ratio, plus the floating-point operations
and bytes one fused step executes, to set against the device's limits.

CPU (2 cores):  python benchmarks/bench_parity.py
GPU (the issue's configuration, Figure 2 widths):
    python benchmarks/bench_parity.py --device cuda --n-tasks 500 --n-bits 100 \
        --width-grid 9 500 30 --batch 20000 --steps 300 --ref-steps 300 --ref-widths 3 \
        --precision tf32
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from torch.nn import functional as F

from empirical.parity import (MLP, ModelConfig, RunConfig, SparseParityTask, TaskConfig,
                              TrainConfig, train)


def reference_batch(task: SparseParityTask, batch: int, rng: np.random.Generator, gen, device):
    """A batch built like the research code: a Python loop over subtasks."""
    counts = rng.multinomial(batch, task.frequencies)
    xs, ys = [], []
    for i, c in enumerate(counts):
        if c == 0:
            continue
        bits = torch.randint(0, 2, (int(c), task.n_bits), generator=gen, device=device)
        control = torch.zeros(int(c), task.n_tasks, device=device)
        control[:, i] = 1
        ys.append(bits[:, torch.as_tensor(task.subsets[i], device=device)].sum(1) % 2)
        xs.append(torch.cat([control, bits.float()], 1))
    return torch.cat(xs), torch.cat(ys)


@torch.no_grad()
def reference_eval(task, mlp, per_task, gen, device):
    """Per-subtask evaluation: one forward pass per subtask."""
    losses = []
    for i in range(task.n_tasks):
        bits = torch.randint(0, 2, (per_task, task.n_bits), generator=gen, device=device)
        control = torch.zeros(per_task, task.n_tasks, device=device)
        control[:, i] = 1
        y = bits[:, torch.as_tensor(task.subsets[i], device=device)].sum(1) % 2
        losses.append(F.cross_entropy(mlp(torch.cat([control, bits.float()], 1)), y).item())
    return losses


def time_reference(task, widths, steps, batch, lr, per_task, device) -> tuple[float, float]:
    """(seconds per network-step of training, seconds per per-subtask evaluation), averaged
    over the given widths, each network trained alone."""
    t_train, t_eval, n = 0.0, 0.0, 0
    for w in widths:
        torch.manual_seed(0)
        mlp = MLP(task.input_dim, int(w)).to(device)
        opt = torch.optim.Adam(mlp.parameters(), lr=lr)
        rng, gen = np.random.default_rng(0), torch.Generator(device=device).manual_seed(0)
        _sync(device)
        t0 = time.perf_counter()
        for step in range(1, steps + 1):
            x, y = reference_batch(task, batch, rng, gen, device)
            opt.zero_grad()
            F.cross_entropy(mlp(x), y).backward()
            opt.step()
        _sync(device)
        t1 = time.perf_counter()
        reference_eval(task, mlp, per_task, gen, device)
        t_train += t1 - t0
        t_eval += time.perf_counter() - t1
        n += steps
    return t_train / n, t_eval / len(widths)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def fused_cost(task: SparseParityTask, widths, batch: int) -> dict:
    """Floating-point operations and bytes of one fused step (one hidden layer, fp32), as
    executed: first layer forward + weight gradient (the input needs none), block-diagonal
    output layer forward and both gradients, and the main activation traffic."""
    H, M, I, B = int(sum(widths)), len(widths), task.input_dim, batch
    flops = 2 * B * I * H * 2 + 2 * B * H * (2 * M) * 3
    # bytes: x read twice (forward, weight grad); B×H pre-activation written, read by ReLU,
    # output written and read by the output product; its gradient written, masked (read+write)
    # and read by the weight-gradient product: about 8 passes over B×H floats.
    bytes_ = 4 * (2 * B * I + 8 * B * H)
    return dict(flops=flops, bytes=bytes_)


def time_samplers(task: SparseParityTask, n_streams: int, D: int, batch: int, steps: int,
                  device) -> tuple[float, float]:
    """Seconds per step to draw the batches of ``n_streams`` streams (D = 0: online): one
    torch.Generator per stream, drawn stream by stream (the "streams" sampler), against one
    batched counter-based draw (SweepSampler)."""
    from empirical.parity.task import SweepSampler
    from empirical.parity.train import DataStream
    streams = [DataStream(task, s, D, batch, device) for s in range(n_streams)]
    sampler = SweepSampler(task, [dict(alpha=task.alpha, seed=s, D=D) for s in range(n_streams)],
                           batch, device)
    out = []
    for draw in (lambda k: [st.next() for st in streams],
                 lambda k: task.encode(*sampler.draw(k)[:2])):
        draw(1)
        _sync(device)
        t0 = time.perf_counter()
        for k in range(2, steps + 2):
            draw(k)
        _sync(device)
        out.append((time.perf_counter() - t0) / steps)
    return out[0], out[1]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-tasks", type=int, default=100)
    p.add_argument("--n-bits", type=int, default=30)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--alpha", type=float, default=0.4)
    p.add_argument("--width-grid", type=float, nargs=3, default=(9, 128, 10))
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--steps", type=int, default=60, help="fused steps timed")
    p.add_argument("--ref-steps", type=int, default=20, help="reference steps per width")
    p.add_argument("--ref-widths", type=int, default=3,
                   help="how many widths (smallest, ..., largest) the reference times")
    p.add_argument("--ref-eval-every", type=int, default=100)
    p.add_argument("--eval-per-task", type=int, default=1000)
    p.add_argument("--eval-points", type=int, default=100,
                   help="fused evaluations in --full-steps steps (amortised)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--full-steps", type=int, default=200_000,
                   help="steps of the full sweep to extrapolate to")
    p.add_argument("--samplers", type=int, default=None, metavar="STREAMS",
                   help="only time drawing the batches of STREAMS streams (both samplers)")
    p.add_argument("--D", type=int, default=0, help="with --samplers: training-set size")
    return p


def main(argv=None) -> None:
    p = _parser()
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.samplers:
        task = SparseParityTask(args.n_tasks, args.n_bits, args.k, args.alpha)
        per_stream, batched = time_samplers(task, args.samplers, args.D, args.batch,
                                            args.steps, args.device)
        print(f"{args.samplers} streams (D = {args.D}), batch {args.batch}: one generator per "
              f"stream {per_stream * 1e3:.2f} ms per step, one batched draw "
              f"{batched * 1e3:.2f} ms per step ({per_stream / batched:.1f}x)")
        return
    lo, hi, count = args.width_grid
    widths = sorted({int(round(v)) for v in np.geomspace(lo, hi, int(count))})
    task = SparseParityTask(args.n_tasks, args.n_bits, args.k, args.alpha)
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} torch threads"
    print(f"device: {name};  torch {torch.__version__};  precision {args.precision}")
    print(f"config: n_tasks={args.n_tasks} n_bits={args.n_bits} k={args.k} alpha={args.alpha} "
          f"batch={args.batch}; {len(widths)} widths {widths[0]}..{widths[-1]} "
          f"(H = {sum(widths)} hidden units)")

    pick = np.unique(np.linspace(0, len(widths) - 1, min(args.ref_widths, len(widths)))
                     .round().astype(int))
    ref_widths = [widths[i] for i in pick]
    time_reference(task, ref_widths[:1], 2, args.batch, args.lr, 10, args.device)  # warm-up
    ref_step, ref_eval = time_reference(task, ref_widths, args.ref_steps, args.batch, args.lr,
                                        args.eval_per_task, args.device)
    ref = ref_step + ref_eval / args.ref_eval_every
    ref_rate = 1.0 / ref
    print(f"(a) reference, one network at a time (widths {ref_widths}, {args.ref_steps} steps "
          f"each): {ref_step * 1e3:.2f} ms per step + per-subtask evaluation "
          f"{ref_eval * 1e3:.0f} ms every {args.ref_eval_every} steps "
          f"= {ref * 1e3:.2f} ms per network-step = {ref_rate:.2f} network-steps/s", flush=True)

    cfg = RunConfig(TaskConfig(args.n_tasks, args.n_bits, args.k, args.alpha),
                    ModelConfig(widths=widths),
                    TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr,
                                eval_points=1, checkpoints=1, test_per_task=1,
                                device=args.device, precision=args.precision,
                                compile=args.compile))
    with tempfile.TemporaryDirectory() as d:
        warm = RunConfig.from_dict(cfg.to_dict())
        warm.train.steps = 3
        train(warm, f"{d}/warm")
        _sync(args.device)
        t0 = time.perf_counter()
        train(cfg, f"{d}/run")
        _sync(args.device)
        t_steps = time.perf_counter() - t0
    t_eval = time_fused_eval(cfg, args.eval_per_task)
    per_step = t_steps / args.steps + t_eval * args.eval_points / args.full_steps
    fused_rate = len(widths) / per_step
    print(f"(b) fused, all {len(widths)} networks together: {t_steps / args.steps * 1e3:.2f} ms "
          f"per step + one evaluation of all networks x subtasks ({args.eval_per_task} per "
          f"subtask) {t_eval * 1e3:.0f} ms, {args.eval_points} times in {args.full_steps} steps "
          f"= {per_step * 1e3:.2f} ms per step = {fused_rate:.1f} network-steps/s")
    print(f"ratio fused / reference: {fused_rate / ref_rate:.1f}x")
    cost = fused_cost(task, widths, args.batch)
    t_only = t_steps / args.steps
    print(f"per fused step: {cost['flops'] / 1e9:.2f} GFLOP, ~{cost['bytes'] / 1e9:.3f} GB moved "
          f"-> {cost['flops'] / t_only / 1e12:.3f} TFLOP/s, "
          f"{cost['bytes'] / t_only / 1e9:.1f} GB/s achieved")
    print(f"extrapolated: {args.full_steps} steps of this sweep fused = "
          f"{per_step * args.full_steps / 60:.1f} min; reference = "
          f"{ref * args.full_steps * len(widths) / 3600:.1f} h")


def time_fused_eval(cfg: RunConfig, per_task: int) -> float:
    """Seconds for one evaluation of every network on every subtask (fused)."""
    from empirical.parity.train import build_model, make_task, resolve_device, evaluate, \
        _autocast_factory
    dev = resolve_device(cfg.train.device)
    task = make_task(cfg)
    model = build_model(cfg).to(dev)
    sub, bits = task.test_set(per_task, 0, device=dev)
    y = task.label(sub, bits)
    ac = _autocast_factory(cfg.train.precision, dev)
    evaluate(model, task, sub, bits, y, per_task, cfg.train.eval_chunk, ac)   # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    evaluate(model, task, sub, bits, y, per_task, cfg.train.eval_chunk, ac)
    _sync(dev)
    return time.perf_counter() - t0

if __name__ == "__main__":
    main()
