"""The fused training loop: every network of a sweep in one process and one optimizer step.

Networks are alphas × D × seeds × widths (D = None: online). Networks that share α, seed
and D share one data stream (the same batches, and for finite D the same training set). All
streams are drawn in one batched operation per step (:class:`SweepSampler`, a pure function
of the step); runs written before it existed keep their per-stream ``torch.Generator``s
(sampler "streams"). How a step runs (autograd, written out, compiled, CUDA graphs) is
``TrainConfig.step`` (:mod:`empirical.parity.steps`). Evaluation (all networks × all
subtasks) and checkpoints happen on log-spaced step grids; checkpoints hold the model, the
optimizer, the stream states and the metrics so far, and are written atomically, so
``resume=True`` continues a killed run exactly.
"""
from __future__ import annotations

import contextlib
import pickle
import shutil
import time
import warnings
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from common.errors import CorruptFileError, InputError, RunError
from common.files import FolderLock, atomic_write
from . import steps
from .config import RunConfig, read_config
from .model import FusedMLP
from .task import SparseParityTask, SweepSampler, _torch_seed, zipf_frequencies

CHECKPOINT_DIR = "checkpoints"
RESUME_NAME = "resume.pt"
#: what makes a folder a run (training into it needs resume or force)
RUN_FILES = ("config.json", "metrics.npz", CHECKPOINT_DIR)
#: TrainConfig fields that say how a step is computed or where, not what is computed: a
#: resume may change them (a run moved to another machine, or on to a faster step variant,
#: each checked against the fp32 eager step within its precision's tolerance, or an
#: evaluation split into other chunks); the resumed run records the new values. Every
#: other field (the task, the networks, the data, the optimizer, the grids, the precision)
#: must equal the saved run's, or the resumed run would not be the run that was started.
RESUME_MAY_CHANGE = ("device", "step", "step_options", "compile", "eval_chunk")


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
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"device {device!r} is not a device: give auto, cpu, cuda or "
                         "cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available (device "
                         "cpu trains on the CPU)")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise InputError(f"device {device!r}: this machine has {torch.cuda.device_count()} "
                         "CUDA device(s)")
    return dev


def network_table(config: RunConfig) -> list[dict]:
    """One info dict per network (index, width, seed, D, alpha; D = 0 for online), ordered
    by (alpha, D, seed, width) so each data stream owns a contiguous block of networks."""
    Ds = config.train.D if config.train.D is not None else [0]
    rows = [dict(width=int(w), seed=int(s), D=int(d), alpha=float(a))
            for a in config.task.alpha_list for d in Ds for s in config.train.seeds
            for w in config.model.widths]
    for i, r in enumerate(rows):
        r["index"] = i
    return rows


def network_name(n: dict) -> str:
    """A network (a row of :func:`network_table`, or any dict with its width, seed and D)
    as messages name it: "width 500, seed 0", with ", D 1000" for a fixed training set."""
    return f"width {n['width']}, seed {n['seed']}" + (f", D {n['D']}" if n["D"] else "")


def stream_groups(nets: list[dict]) -> list[dict]:
    """The data streams of a network table: consecutive networks that share (alpha, seed,
    D), as dicts with alpha, seed, D, start and stop (network indices)."""
    out: list[dict] = []
    for i, n in enumerate(nets):
        key = (n["alpha"], n["seed"], n["D"])
        if out and (out[-1]["alpha"], out[-1]["seed"], out[-1]["D"]) == key:
            out[-1]["stop"] = i + 1
        else:
            out.append(dict(alpha=n["alpha"], seed=n["seed"], D=n["D"], start=i, stop=i + 1))
    return out


def build_model(config: RunConfig) -> FusedMLP:
    """The fused model, each network initialised from its own generator seeded by
    (seed, width): the same network alone or in any sweep starts from the same weights."""
    nets = network_table(config)
    c = config.task
    model = FusedMLP(c.n_tasks + c.n_bits, [n["width"] for n in nets], config.model.depth)
    for n in nets:
        model.init_network(n["index"], torch.Generator().manual_seed(
            _torch_seed(n["seed"], n["width"], config.model.depth, 11)))
    return model


def make_task(config: RunConfig, alpha: float | None = None) -> SparseParityTask:
    """The task a config describes (with ``alpha`` for one α of a several-α sweep, which
    has no single task)."""
    c = config.task
    if alpha is None and c.alphas is not None and len(c.alphas) > 1:
        raise InputError(f"this run trains several α ({c.alphas}) at once; split it into one "
                         "run per α first (empirical.parity.sweeps.split_alphas)")
    return SparseParityTask(c.n_tasks, c.n_bits, c.k, c.alpha if alpha is None else alpha,
                            c.offset, c.seed)


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
    """Network × eval step × subtask arrays, filled eval by eval. ``frequencies`` is the
    task's (n_tasks,) vector, or network × n_tasks when the run has several α."""

    def __init__(self, nets, steps, task: SparseParityTask, config: RunConfig):
        M, E, T = len(nets), len(steps), task.n_tasks
        c = config.task
        freqs = np.stack([zipf_frequencies(T, n["alpha"], c.offset) for n in nets])
        nan = np.full
        self.a = {
            "steps": np.asarray(steps, dtype=np.int64),
            "widths": np.array([n["width"] for n in nets], dtype=np.int64),
            "seeds": np.array([n["seed"] for n in nets], dtype=np.int64),
            "D": np.array([n["D"] for n in nets], dtype=np.int64),
            "alpha": np.array([n["alpha"] for n in nets], dtype=np.float64),
            "n_params": np.array([task.n_params(n["width"], config.model.depth) for n in nets],
                                 dtype=np.int64),
            "frequencies": freqs[0] if len(c.alpha_list) == 1 else freqs,
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
        freqs = np.broadcast_to(a["frequencies"], loss.shape)
        a["test_loss"][:, e], a["test_acc"][:, e] = loss, acc
        a["mean_test_loss"][:, e] = np.einsum("mt,mt->m", loss.astype(np.float64), freqs)
        a["mean_test_acc"][:, e] = np.einsum("mt,mt->m", acc.astype(np.float64), freqs)
        if train_loss is not None:
            a["train_loss"][:, e] = train_loss
        a["wall_time"][e] = wall
        a["n_evals"] = np.array(e + 1, dtype=np.int64)

    def to_torch(self) -> dict:
        return {k: torch.from_numpy(np.array(v)) for k, v in self.a.items()}

    def load_torch(self, d: dict) -> None:
        alpha = self.a["alpha"]
        self.a = {k: v.numpy().copy() for k, v in d.items()}
        self.a.setdefault("alpha", alpha)    # checkpoints written before the alpha column

    def save(self, run_dir: Path) -> None:
        atomic_write(Path(run_dir) / "metrics.npz",
                     lambda fh: np.savez_compressed(fh, **self.a))


@torch.no_grad()
def evaluate(model: FusedMLP, task: SparseParityTask, sub: torch.Tensor, bits: torch.Tensor,
             y: torch.Tensor, per_task: int, chunk: int, autocast,
             lookup: torch.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-network, per-subtask test loss (nats) and accuracy on a subtask-major test set with
    ``per_task`` samples per subtask: (M × n_tasks, M × n_tasks) float32 arrays. ``lookup``
    (a dtype: the step option ``gather_in``): the control part as a per-subtask row instead
    of a product with the one-hot input (:func:`steps.lookup_logits`), products in that
    dtype."""
    M, T = model.n_networks, task.n_tasks
    loss = torch.empty(M, T, device=bits.device)
    acc = torch.empty(M, T, device=bits.device)
    tpc = max(1, chunk // per_task)
    for t0 in range(0, T, tpc):
        t1 = min(T, t0 + tpc)
        sl = slice(t0 * per_task, t1 * per_task)
        if lookup is not None:
            logits = steps.lookup_logits(model, bits[sl], t0, t1, lookup)
        else:
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


def load_checkpoint(path) -> dict:
    """A checkpoint on the CPU; one that cannot be read is a CorruptFileError naming it."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        int(ck["step"])
        return ck
    except (RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError,
            pickle.UnpicklingError, zipfile.BadZipFile) as err:
        why = (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]
        raise CorruptFileError(f"{path}: not a readable checkpoint ({why})") from None


def _latest_checkpoint(run_dir: Path) -> tuple[Path | None, dict | None]:
    """The newest readable checkpoint of ``run_dir`` (step_*.pt or resume.pt) and its
    contents, or (None, None) if it has none. An unreadable one (a damaged disk, a file
    copied in part) is passed over for the one before it, with a warning naming it; if none
    can be read, a CorruptFileError names them."""
    ckdir = run_dir / CHECKPOINT_DIR
    if not ckdir.is_dir():
        return None, None
    found = {p: int(p.stem.split("_")[1]) for p in ckdir.glob("step_*.pt")}
    loaded, unreadable = {}, []
    resume = ckdir / RESUME_NAME
    if resume.exists():
        try:
            loaded[resume] = load_checkpoint(resume)
            found[resume] = int(loaded[resume]["step"])
        except CorruptFileError as err:
            unreadable.append(str(err))
    for path in sorted(found, key=found.get, reverse=True):
        try:
            ck = loaded[path] if path in loaded else load_checkpoint(path)
        except CorruptFileError as err:
            unreadable.append(str(err))
            continue
        if unreadable:
            warnings.warn(f"{'; '.join(unreadable)}: resuming from the last readable "
                          f"checkpoint, {path.name} (step {int(ck['step'])}), instead",
                          stacklevel=3)
        return path, ck
    if unreadable:
        raise CorruptFileError(f"no readable checkpoint in {ckdir} to resume from: "
                               f"{unreadable[0]}" + (f" (and {len(unreadable) - 1} more)"
                                                      if len(unreadable) > 1 else ""))
    return None, None


def train(config: RunConfig, out_dir, resume: bool = False,
          callback: Callable[[int, torch.Tensor], None] | None = None,
          save_every_s: float | None = None, log: Callable[[str], None] | None = None,
          time_limit_s: float | None = None, force: bool = False) -> Path:
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

    Nothing is lost: ``out_dir`` holding a run needs ``resume`` (which continues it; only
    the fields of :data:`RESUME_MAY_CHANGE` may differ from the saved config) or ``force``
    (which replaces it whole); the run holds ``out_dir``'s lock (``common.files.FolderLock``)
    while it trains, so a second trainer or an export of the same folder is refused. A
    resume passes over an unreadable checkpoint for the one before it (a warning names it).
    A loss or a weight that turns NaN or infinite (divergence) stops the run with a
    ``RunError`` naming the networks, after saving the metrics so far.
    """
    config = RunConfig.from_dict(config.to_dict()).validate()
    out = Path(out_dir)
    device = resolve_device(config.train.device)
    config.train.device = str(device)  # the resolved device is what the run records
    with FolderLock(out, "quanta parity train" + (" --resume" if resume else "")):
        _prepare_run_dir(config, out, resume, force)
        return _train_locked(config, out, device, resume, callback, save_every_s, log,
                             time_limit_s)


def _train_locked(config, out, device, resume, callback, save_every_s, log,
                  time_limit_s) -> Path:
    """:func:`train` once ``out`` is locked and prepared: TF32 as the precision asks, then
    the session from step 0 or from the latest readable checkpoint."""
    prev = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if device.type == "cuda":
        allow = config.train.precision in ("tf32", "bf16")
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
    try:
        session = _Session(config, out, device, log)
        start = session.restore() if resume else 0
        return session.run(start, callback, save_every_s, time_limit_s)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev


def _prepare_run_dir(config: RunConfig, out: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run (unless ``force``: then its files are removed), or to
    resume one with another config; write config.json. Called under ``out``'s lock."""
    existing = out / "config.json"
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not resume:
        if not force:
            raise InputError(f"out_dir {out} already holds a run ({', '.join(held)}); "
                             "continue it with --resume, replace it with --force, or choose "
                             "another directory")
        for name in held:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if existing.exists() and resume:
        changed = config_changes(read_config(existing), config)
        if changed:
            raise InputError(f"config differs from the run in {out} ({'; '.join(changed)}); "
                             "resume with the same config")
        if (out / "metrics.npz").exists() and not (out / CHECKPOINT_DIR).is_dir():
            raise InputError(f"{out} holds exported results without checkpoints; cannot resume")
    atomic_write(existing, config.to_json().encode())


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, v in d.items():
        out.update(_leaves(v, f"{prefix}{key}.") if isinstance(v, dict) else {prefix + key: v})
    return out


def config_changes(saved: RunConfig, config: RunConfig, fields=None) -> list[str]:
    """``field = new (saved: old)`` for each config field (``section.name``; of ``fields``
    only, if given) where ``config`` differs from ``saved``, leaving out those a resume may
    change (:data:`RESUME_MAY_CHANGE`)."""
    new, old = _leaves(config.to_dict()), _leaves(saved.to_dict())
    free = {f"train.{name}" for name in RESUME_MAY_CHANGE}
    keys = [k for k in new if k not in free and (fields is None or k in fields)]
    return [f"{k} = {new[k]!r} (saved: {old.get(k)!r})" for k in keys if new[k] != old.get(k)]


def make_step(config: RunConfig, task: SparseParityTask, nets, model: FusedMLP, opt,
              device: torch.device):
    """The step function ``TrainConfig.step`` names (step number → per-network batch
    losses), and the per-stream generators of the "streams" sampler (empty for the counter
    sampler, whose state is the step)."""
    tc, groups = config.train, stream_groups(nets)
    autocast = _autocast_factory(tc.precision, device)
    if tc.sampler == "counter":
        sampler = SweepSampler(task, groups, tc.batch, device)
        return steps.make_step(tc.step, model, opt, task, sampler, tc.precision, autocast,
                               compile_forward=tc.compile, options=tc.step_options), []
    streams = [DataStream(task, g["seed"], g["D"], tc.batch, device) for g in groups]

    def batches(step):
        drawn = [s.next() for s in streams]
        return torch.stack([b[0] for b in drawn]), torch.stack([b[1] for b in drawn])
    return steps.EagerStep(model, opt, batches, len(groups), autocast,
                           torch.compile(model) if tc.compile else None), streams


class _Trainer(NamedTuple):
    """What training builds from a config: the task (of the first α), the network table,
    the fused model, its optimizer, the step function and the data streams."""
    task: SparseParityTask
    nets: list
    model: FusedMLP
    opt: torch.optim.Optimizer
    step_fn: Callable
    streams: list


def _build(config: RunConfig, device: torch.device) -> _Trainer:
    """The model, optimizer and step of a fresh run on ``device`` (:func:`train` and
    :func:`new_step` alike)."""
    task = make_task(config, alpha=config.task.alpha_list[0])
    nets = network_table(config)
    model = build_model(config).to(device)
    opt = steps.optimizer(model, config.train.lr, config.train.step, device)
    return _Trainer(task, nets, model, opt, *make_step(config, task, nets, model, opt, device))


def new_step(config: RunConfig, device=None):
    """A fresh model (initialised as in :func:`train`) with its optimizer and step
    function, for benchmarks and checks: (model, step function)."""
    config = RunConfig.from_dict(config.to_dict()).validate()
    built = _build(config, resolve_device(config.train.device if device is None else device))
    return built.model, built.step_fn


class _Session:
    """One call of :func:`train`: the model, its optimizer and step, the data, the test set,
    the evaluation and checkpoint grids, and the metrics so far."""

    def __init__(self, config: RunConfig, out: Path, device: torch.device, log):
        tc = config.train
        self.config, self.out, self.device, self.log = config, out, device, log
        self.autocast = _autocast_factory(tc.precision, device)
        self.task, self.nets, self.model, self.opt, self.step_fn, self.streams = \
            _build(config, device)
        self.test_sub, self.test_bits = self.task.test_set(tc.test_per_task, tc.test_seed,
                                                           device=device)
        self.test_y = self.task.label(self.test_sub, self.test_bits)
        eval_steps = log_steps(tc.steps, tc.eval_points)
        self.eval_index = {s: e for e, s in enumerate(eval_steps)}
        self.ckpt_steps = set(log_steps(tc.steps, tc.checkpoints))
        self.metrics = _Metrics(self.nets, eval_steps, self.task, config)
        self.elapsed0 = 0.0
        self.resume_file = out / CHECKPOINT_DIR / RESUME_NAME

    def restore(self) -> int:
        """Load the latest readable checkpoint of the run directory, if any; return its
        step."""
        last, ck = _latest_checkpoint(self.out)
        if last is None:
            return 0
        if "optimizer" not in ck:
            raise InputError(f"{last} is an exported checkpoint without optimizer state; "
                             "it cannot be resumed")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        for stream, sd in zip(self.streams, ck["streams"]):
            stream.load_state_dict(sd)
        self.metrics.load_torch(ck["metrics"])
        self.elapsed0 = float(ck["elapsed"])
        if self.log:
            self.log(f"resumed from {last.name} at step {int(ck['step'])}")
        return int(ck["step"])

    def save(self, step: int, path: Path) -> None:
        self.check_finite(step)
        _atomic_torch_save({
            "format": "quanta.parity/1", "step": step, "config": self.config.to_dict(),
            "networks": self.nets, "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "streams": [s.state_dict() for s in self.streams],
            "metrics": self.metrics.to_torch(), "elapsed": self.clock()}, path)

    def clock(self) -> float:
        """Seconds this run has trained, over all its calls."""
        return time.perf_counter() - self.t0

    def evaluate_and_checkpoint(self, step: int, batch_loss) -> None:
        """Evaluate at the steps of the evaluation grid, checkpoint at those of the
        checkpoint grid."""
        tc = self.config.train
        if step in self.eval_index:
            e = self.eval_index[step]
            loss, acc = evaluate(self.model, self.task, self.test_sub, self.test_bits,
                                 self.test_y, tc.test_per_task, tc.eval_chunk, self.autocast,
                                 steps.evaluation_lookup(tc))
            tl = None if batch_loss is None else batch_loss.float().cpu().numpy()
            self.metrics.record(e, loss, acc, tl, self.clock())
            bad = ~np.isfinite(self.metrics.a["mean_test_loss"][:, e])
            if bad.any():
                self.diverged(step, np.flatnonzero(bad), "test loss")
            if self.log:
                m = self.metrics.a["mean_test_loss"][:, e]
                self.log(f"step {step:>8d}  mean test loss  min {m.min():.4f}  max "
                         f"{m.max():.4f}  ({self.clock():.1f} s)")
        if step in self.ckpt_steps:
            self.save(step, checkpoint_path(self.out, step))
            self.metrics.save(self.out)

    def check_finite(self, step: int) -> None:
        """Before a checkpoint: stop if a weight is NaN or infinite (divergence)."""
        if all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            return
        bad = [i for i in range(len(self.nets))
               if not all(bool(torch.isfinite(p).all()) for p in
                          self.model.network(i).parameters())]
        self.diverged(step, bad, "weights")

    def diverged(self, step: int, bad, what: str) -> None:
        """Stop a diverged run: save the metrics so far (the NaN evaluation shows it), no
        checkpoint, and raise a RunError naming the networks."""
        self.metrics.save(self.out)
        names = "; ".join(network_name(self.nets[i]) for i in bad[:5]) + (
            f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise RunError(f"training diverged at step {step}: NaN or infinite {what} of "
                       f"{len(bad)} of {len(self.nets)} network(s) ({names}); lr "
                       f"{self.config.train.lr:g} is too large? The metrics so far are in "
                       f"{self.out / 'metrics.npz'}; train again with a smaller --lr "
                       "(--force replaces this run)")

    def run(self, start: int, callback, save_every_s, time_limit_s) -> Path:
        """Train from step ``start`` to the end, or until ``time_limit_s`` pauses it."""
        total = self.config.train.steps
        self.t0 = time.perf_counter() - self.elapsed0
        call_start = last_save = time.perf_counter()
        if start == 0:
            self.evaluate_and_checkpoint(0, None)
        for step in range(start + 1, total + 1):
            batch_loss = self.step_fn(step)
            self.evaluate_and_checkpoint(step, batch_loss)
            if save_every_s is not None and time.perf_counter() - last_save > save_every_s:
                self.save(step, self.resume_file)
                last_save = time.perf_counter()
            if callback is not None:
                callback(step, batch_loss)
            if (time_limit_s is not None and step < total
                    and time.perf_counter() - call_start > time_limit_s):
                self.save(step, self.resume_file)
                self.metrics.save(self.out)
                if self.log:
                    self.log(f"paused at step {step} of {total} (time limit {time_limit_s:g} s)")
                return self.out
        if self.resume_file.exists():
            self.resume_file.unlink()
        self.metrics.save(self.out)
        return self.out
