"""The fused training loop: every network of a sweep in one process and one optimizer step.

Networks are widths × seeds × D (D = None: online). Networks that share a seed and a D share
one data stream (the same batches, and for finite D the same training set); each stream has
its own seeded ``torch.Generator`` on the device. Evaluation (all networks × all subtasks)
and checkpoints happen on log-spaced step grids; checkpoints hold the model, the optimizer,
every generator state and the metrics so far, and are written atomically, so ``resume=True``
continues a killed run exactly.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from common.errors import InputError
from common.files import atomic_write
from .config import RunConfig
from .model import FusedMLP
from .task import SparseParityTask, _torch_seed

CHECKPOINT_DIR = "checkpoints"
RESUME_NAME = "resume.pt"


def log_steps(total: int, count: int) -> list[int]:
    """About ``count`` log-spaced integer steps in [1, total], plus 0 and ``total``."""
    if total < 1 or count < 1:
        raise InputError(f"total and count must be positive, got {total}, {count}")
    s = np.unique(np.round(np.geomspace(1, total, count)).astype(int))
    return sorted({0, total, *s.tolist()})


def resolve_device(device: str) -> torch.device:
    """"auto" → CUDA when present, else the CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but CUDA is not available")
    return dev


def network_table(config: RunConfig) -> list[dict]:
    """One info dict per network (index, width, seed, D; D = 0 for online), ordered by
    (D, seed, width) so each data stream owns a contiguous block of networks."""
    Ds = config.train.D if config.train.D is not None else [0]
    rows = [dict(width=int(w), seed=int(s), D=int(d))
            for d in Ds for s in config.train.seeds for w in config.model.widths]
    for i, r in enumerate(rows):
        r["index"] = i
    return rows


def build_model(config: RunConfig, task: SparseParityTask) -> FusedMLP:
    """The fused model, each network initialised from its own generator seeded by
    (seed, width): the same network alone or in any sweep starts from the same weights."""
    nets = network_table(config)
    model = FusedMLP(task.input_dim, [n["width"] for n in nets], config.model.depth)
    for n in nets:
        model.init_network(n["index"], torch.Generator().manual_seed(
            _torch_seed(n["seed"], n["width"], config.model.depth, 11)))
    return model


def make_task(config: RunConfig) -> SparseParityTask:
    """The task a config describes."""
    c = config.task
    return SparseParityTask(c.n_tasks, c.n_bits, c.k, c.alpha, c.offset, c.seed)


class DataStream:
    """Batches for one (seed, D): fresh samples every step (D = 0) or, for D > 0, the next
    ``batch`` indices of a stream of per-epoch random permutations of a fixed D-sample set."""

    def __init__(self, task: SparseParityTask, seed: int, D: int, batch: int, device):
        self.task, self.D, self.batch = task, int(D), int(batch)
        self.gen = torch.Generator(device=device).manual_seed(_torch_seed(seed, D, task.seed, 1))
        if self.D:
            g = torch.Generator(device=device).manual_seed(_torch_seed(seed, D, task.seed, 2))
            self.sub, self.bits = task.sample_raw(self.D, g)
            self.y = task.label(self.sub, self.bits)
            self.perm, self.pos, self.epoch_state = None, self.D, None

    def _indices(self) -> torch.Tensor:
        parts, need = [], self.batch
        while need > 0:
            if self.pos == self.D:
                self.epoch_state = self.gen.get_state()
                self.perm = torch.randperm(self.D, generator=self.gen, device=self.gen.device)
                self.pos = 0
            take = min(need, self.D - self.pos)
            parts.append(self.perm[self.pos:self.pos + take])
            self.pos += take
            need -= take
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch as (x float32 (batch, input_dim), y int64 (batch,))."""
        if not self.D:
            sub, bits = self.task.sample_raw(self.batch, self.gen)
            return self.task.encode(sub, bits), self.task.label(sub, bits)
        idx = self._indices()
        return self.task.encode(self.sub[idx], self.bits[idx]), self.y[idx]

    def state_dict(self) -> dict:
        d = {"gen": self.gen.get_state()}
        if self.D:
            d.update(pos=self.pos, epoch_state=self.epoch_state)
        return d

    def load_state_dict(self, d: dict) -> None:
        if self.D and d["epoch_state"] is not None:
            self.gen.set_state(d["epoch_state"])
            self.perm = torch.randperm(self.D, generator=self.gen, device=self.gen.device)
            self.epoch_state = d["epoch_state"]
        if self.D:
            self.pos = int(d["pos"])
        self.gen.set_state(d["gen"])


@dataclass
class _Group:
    start: int
    stop: int
    stream: DataStream


def _atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` through :func:`empirical.files.atomic_write`."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def finished(metrics) -> bool:
    """Whether ``metrics`` (a ``metrics.npz`` mapping) holds every evaluation of its step
    grid, i.e. the run trained all its steps."""
    return int(metrics["n_evals"]) == len(metrics["steps"])


def is_complete(run_dir) -> bool:
    """Whether the run in ``run_dir`` has trained all its steps (False for a run that was
    paused by its time limit or killed)."""
    path = Path(run_dir) / "metrics.npz"
    if not path.exists():
        return False
    with np.load(path) as m:
        return finished(m)


def checkpoint_path(run_dir, step: int) -> Path:
    """Where the checkpoint of ``step`` lives: ``checkpoints/step_<8 digits>.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{int(step):08d}.pt"


class _Metrics:
    """Network × eval step × subtask arrays, filled eval by eval."""

    def __init__(self, nets, steps, task: SparseParityTask, config: RunConfig):
        M, E, T = len(nets), len(steps), task.n_tasks
        nan = np.full
        self.a = {
            "steps": np.asarray(steps, dtype=np.int64),
            "widths": np.array([n["width"] for n in nets], dtype=np.int64),
            "seeds": np.array([n["seed"] for n in nets], dtype=np.int64),
            "D": np.array([n["D"] for n in nets], dtype=np.int64),
            "n_params": np.array([task.n_params(n["width"], config.model.depth) for n in nets],
                                 dtype=np.int64),
            "frequencies": task.frequencies.astype(np.float64),
            "test_loss": nan((M, E, T), np.nan, dtype=np.float32),
            "test_acc": nan((M, E, T), np.nan, dtype=np.float32),
            "mean_test_loss": nan((M, E), np.nan, dtype=np.float64),
            "mean_test_acc": nan((M, E), np.nan, dtype=np.float64),
            "train_loss": nan((M, E), np.nan, dtype=np.float32),
            "wall_time": nan(E, np.nan, dtype=np.float64),
            "n_evals": np.array(0, dtype=np.int64),
        }

    def record(self, e: int, loss, acc, train_loss, wall: float) -> None:
        a = self.a
        a["test_loss"][:, e], a["test_acc"][:, e] = loss, acc
        a["mean_test_loss"][:, e] = loss.astype(np.float64) @ a["frequencies"]
        a["mean_test_acc"][:, e] = acc.astype(np.float64) @ a["frequencies"]
        if train_loss is not None:
            a["train_loss"][:, e] = train_loss
        a["wall_time"][e] = wall
        a["n_evals"] = np.array(e + 1, dtype=np.int64)

    def to_torch(self) -> dict:
        return {k: torch.from_numpy(np.array(v)) for k, v in self.a.items()}

    def load_torch(self, d: dict) -> None:
        self.a = {k: v.numpy().copy() for k, v in d.items()}

    def save(self, run_dir: Path) -> None:
        atomic_write(Path(run_dir) / "metrics.npz",
                     lambda fh: np.savez_compressed(fh, **self.a))


@torch.no_grad()
def evaluate(model: FusedMLP, task: SparseParityTask, sub: torch.Tensor, bits: torch.Tensor,
             y: torch.Tensor, per_task: int, chunk: int, autocast) -> tuple[np.ndarray, np.ndarray]:
    """Per-network, per-subtask test loss (nats) and accuracy on a subtask-major test set with
    ``per_task`` samples per subtask: (M × n_tasks, M × n_tasks) float32 arrays."""
    M, T = model.n_networks, task.n_tasks
    loss = torch.empty(M, T, device=bits.device)
    acc = torch.empty(M, T, device=bits.device)
    tpc = max(1, chunk // per_task)
    for t0 in range(0, T, tpc):
        t1 = min(T, t0 + tpc)
        sl = slice(t0 * per_task, t1 * per_task)
        with autocast():
            logits = model(task.encode(sub[sl], bits[sl])).float()
        target = y[sl, None].expand(-1, M)
        l = F.cross_entropy(logits.permute(0, 2, 1), target, reduction="none")
        c = (logits.argmax(-1) == target).float()
        loss[:, t0:t1] = l.view(t1 - t0, per_task, M).mean(1).T
        acc[:, t0:t1] = c.view(t1 - t0, per_task, M).mean(1).T
    return loss.cpu().numpy(), acc.cpu().numpy()


def _autocast_factory(precision: str, device: torch.device):
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _latest_checkpoint(run_dir: Path) -> Path | None:
    ckdir = run_dir / CHECKPOINT_DIR
    if not ckdir.is_dir():
        return None
    best, best_step = None, -1
    for p in [*ckdir.glob("step_*.pt"), *ckdir.glob(RESUME_NAME)]:
        step = torch.load(p, map_location="cpu", weights_only=True)["step"] \
            if p.name == RESUME_NAME else int(p.stem.split("_")[1])
        if step > best_step:
            best, best_step = p, step
    return best


def train(config: RunConfig, out_dir, resume: bool = False,
          callback: Callable[[int, torch.Tensor], None] | None = None,
          save_every_s: float | None = None, log: Callable[[str], None] | None = None,
          time_limit_s: float | None = None) -> Path:
    """Train every network of ``config`` together; write ``config.json``, ``metrics.npz`` and
    ``checkpoints/`` into ``out_dir``; return ``out_dir``.

    ``resume=True`` continues from the latest checkpoint of ``out_dir`` (or starts fresh if
    there is none); the result equals an uninterrupted run. ``callback(step, losses)`` runs
    after each optimizer step (losses: per-network batch loss, on the device).
    ``save_every_s`` additionally writes ``checkpoints/resume.pt`` every so many seconds
    (for machines with per-call time limits); it does not change the results.
    ``time_limit_s`` pauses the run once this call has trained that long: it writes the
    resume checkpoint and the metrics so far and returns, and ``resume=True`` continues it
    with nothing lost (``is_complete`` tells a paused run from a finished one).
    """
    config = RunConfig.from_dict(config.to_dict()).validate()
    out = Path(out_dir)
    device = resolve_device(config.train.device)
    config.train.device = str(device)  # the resolved device is what the run records
    tc = config.train
    existing = out / "config.json"
    if existing.exists() and not resume:
        raise InputError(f"out_dir {out} already holds a run; pass resume=True (--resume) "
                         "to continue it or choose another directory")
    if existing.exists() and resume:
        old = RunConfig.from_json(existing.read_text()).to_dict()
        if old != config.to_dict():
            raise InputError(f"config differs from the run in {out}; resume with the same config")
        if (out / "metrics.npz").exists() and not (out / CHECKPOINT_DIR).is_dir():
            raise InputError(f"{out} holds exported results without checkpoints; cannot resume")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(existing, config.to_json().encode())

    prev = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if device.type == "cuda":
        allow = tc.precision in ("tf32", "bf16")
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
    try:
        return _train(config, out, device, resume, callback, save_every_s, log, time_limit_s)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev


def _train(config: RunConfig, out: Path, device: torch.device, resume: bool, callback,
           save_every_s, log, time_limit_s) -> Path:
    tc = config.train
    autocast = _autocast_factory(tc.precision, device)

    task = make_task(config)
    nets = network_table(config)
    model = build_model(config, task).to(device)
    # fused Adam on CUDA: the same elementwise update in one kernel
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, fused=device.type == "cuda")
    groups: list[_Group] = []
    for i, n in enumerate(nets):
        if groups and (nets[groups[-1].start]["seed"], nets[groups[-1].start]["D"]) == (n["seed"], n["D"]):
            groups[-1].stop = i + 1
        else:
            groups.append(_Group(i, i + 1, DataStream(task, n["seed"], n["D"], tc.batch, device)))
    test_sub, test_bits = task.test_set(tc.test_per_task, tc.test_seed, device=device)
    test_y = task.label(test_sub, test_bits)
    eval_steps = log_steps(tc.steps, tc.eval_points)
    ckpt_steps = set(log_steps(tc.steps, tc.checkpoints))
    eval_index = {s: e for e, s in enumerate(eval_steps)}
    metrics = _Metrics(nets, eval_steps, task, config)

    start, elapsed0 = 0, 0.0
    last = _latest_checkpoint(out) if resume else None
    if last is not None:
        ck = torch.load(last, map_location="cpu", weights_only=True)
        if "optimizer" not in ck:
            raise InputError(f"{last} is an exported checkpoint without optimizer state; "
                             "it cannot be resumed")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        for g, sd in zip(groups, ck["streams"]):
            g.stream.load_state_dict(sd)
        metrics.load_torch(ck["metrics"])
        start, elapsed0 = int(ck["step"]), float(ck["elapsed"])
        if log:
            log(f"resumed from {last.name} at step {start}")

    fwd = torch.compile(model) if tc.compile else model
    t0 = time.perf_counter() - elapsed0
    call_start = last_save = time.perf_counter()
    batch_loss = None
    resume_file = out / CHECKPOINT_DIR / RESUME_NAME

    def save(step: int, path: Path) -> None:
        _atomic_torch_save({
            "format": "quanta.parity/1", "step": step, "config": config.to_dict(),
            "networks": nets, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "streams": [g.stream.state_dict() for g in groups],
            "metrics": metrics.to_torch(), "elapsed": time.perf_counter() - t0}, path)

    def checkpoint_and_eval(step: int) -> None:
        if step in eval_index:
            loss, acc = evaluate(model, task, test_sub, test_bits, test_y, tc.test_per_task,
                                 tc.eval_chunk, autocast)
            tl = None if batch_loss is None else batch_loss.float().cpu().numpy()
            metrics.record(eval_index[step], loss, acc, tl, time.perf_counter() - t0)
            if log:
                m = metrics.a["mean_test_loss"][:, eval_index[step]]
                log(f"step {step:>8d}  mean test loss  min {m.min():.4f}  max {m.max():.4f}  "
                    f"({time.perf_counter() - t0:.1f} s)")
        if step in ckpt_steps:
            save(step, checkpoint_path(out, step))
            metrics.save(out)

    if last is None:
        checkpoint_and_eval(0)
    for step in range(start + 1, tc.steps + 1):
        opt.zero_grad(set_to_none=True)
        batches = [g.stream.next() for g in groups]
        if len(batches) == 1:
            x, y = batches[0][0][None], batches[0][1][None]
        else:
            x = torch.stack([b[0] for b in batches])             # G × B × in_dim
            y = torch.stack([b[1] for b in batches])             # G × B
        with autocast():
            logits = fwd(x, len(groups)).float()                # G × B × M/G × 2
        logp = F.log_softmax(logits, -1)
        nll = -logp.gather(-1, y[:, :, None, None].expand(*logits.shape[:3], 1))[..., 0]
        batch_loss = nll.mean(1).reshape(-1)                     # per network, network order
        batch_loss.sum().backward()
        opt.step()
        batch_loss = batch_loss.detach()
        checkpoint_and_eval(step)
        if save_every_s is not None and time.perf_counter() - last_save > save_every_s:
            save(step, resume_file)
            last_save = time.perf_counter()
        if callback is not None:
            callback(step, batch_loss)
        if (time_limit_s is not None and step < tc.steps
                and time.perf_counter() - call_start > time_limit_s):
            save(step, resume_file)
            metrics.save(out)
            if log:
                log(f"paused at step {step} of {tc.steps} (time limit {time_limit_s:g} s)")
            return out
    if resume_file.exists():
        resume_file.unlink()
    metrics.save(out)
    return out
