"""Reading a run directory back: ``config.json``, ``metrics.npz``, ``checkpoints/``."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from common.errors import CorruptFileError, InputError
from .config import RunConfig
from .model import MLP
from .task import SparseParityTask
from .train import (CHECKPOINT_DIR, build_model, checkpoint_path, finished, make_task,
                    network_table)


class Run:
    """A finished (or partly finished) parity run.

    ``config`` is the :class:`RunConfig`, ``task`` the :class:`SparseParityTask` rebuilt
    from it, ``metrics`` a dict of arrays (``test_loss``/``test_acc``: network × eval step ×
    subtask, nats; ``mean_test_loss``: frequency-weighted; ``steps``, ``widths``, ``seeds``,
    ``D`` (0 = online), ``n_params``, ``frequencies``, ``train_loss``, ``n_evals``).
    ``train_loss[:, e]`` is the loss of the batch of step ``steps[e]``, measured in that
    step's forward pass, i.e. before its update (the parameters of step ``steps[e]`` − 1),
    while ``test_loss[:, :, e]`` is measured after it.
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir)
        cfg = self.path / "config.json"
        if not cfg.exists():
            raise InputError(f"no parity run in {self.path} (config.json missing)")
        self.config = read_config(cfg)
        self.task: SparseParityTask = make_task(self.config)
        mpath = self.path / "metrics.npz"
        self.metrics = read_metrics(mpath) if mpath.exists() else {}

    def info(self) -> list[dict]:
        """One dict per network: index, width, seed, D (0 = online), n_params."""
        rows = network_table(self.config)
        for r in rows:
            r["n_params"] = self.task.n_params(r["width"], self.config.model.depth)
        return rows

    def checkpoint_steps(self) -> list[int]:
        """Steps with a saved checkpoint, ascending."""
        ckdir = self.path / CHECKPOINT_DIR
        if not ckdir.is_dir():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in ckdir.glob("step_*.pt"))

    def checkpoint(self, step: int | None = None) -> dict:
        """The raw checkpoint dict of ``step`` (None = last) on the CPU."""
        steps = self.checkpoint_steps()
        if not steps:
            raise InputError(f"no checkpoints in {self.path / CHECKPOINT_DIR}")
        step = steps[-1] if step is None else int(step)
        if step not in steps:
            raise InputError(f"step {step} has no checkpoint; available: {steps}")
        path = checkpoint_path(self.path, step)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
            raise CorruptFileError(f"{path}: not a readable checkpoint "
                                   f"({str(err).splitlines()[0]})") from None

    def networks(self, step: int | None = None) -> list[tuple[dict, MLP]]:
        """Every network at the checkpoint of ``step`` (None = last) as (info dict, standalone
        :class:`MLP` on the CPU taking the encoded input and returning 2 logits)."""
        ck = self.checkpoint(step)
        model = build_model(self.config, self.task)
        model.load_state_dict(ck["model"])
        out = []
        for info in self.info():
            mlp = model.network(info["index"]).eval()
            out.append((dict(info, step=int(ck["step"])), mlp))
        return out

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, networks={len(self.info())})"


def read_config(path) -> RunConfig:
    """A run's ``config.json``; a file that is not one is a CorruptFileError naming it."""
    path = Path(path)
    try:
        return RunConfig.from_json(path.read_text())
    except InputError as err:
        raise CorruptFileError(f"{path}: {err}") from None
    except (ValueError, TypeError, AttributeError) as err:  # bad JSON, or not a config's
        raise CorruptFileError(f"{path}: not a parity run's config "
                               f"({str(err).splitlines()[0]})") from None


def read_metrics(path) -> dict:
    """A run's ``metrics.npz`` as arrays (float16 ones widened to float32); a file that is
    not one is a CorruptFileError naming it."""
    try:
        with np.load(path) as z:
            return {k: z[k].astype(np.float32) if z[k].dtype == np.float16 else z[k]
                    for k in z.files}
    except (ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CorruptFileError(f"{path}: not a readable metrics file "
                               f"({str(err).splitlines()[0]})") from None


def load_run(run_dir) -> Run:
    """Open a run directory written by :func:`empirical.parity.train`."""
    return Run(run_dir)


#: metrics with an evaluation axis, and which axis it is
EVAL_AXIS = {"steps": 0, "wall_time": 0, "test_loss": 1, "test_acc": 1, "mean_test_loss": 1,
             "mean_test_acc": 1, "train_loss": 1}


def export_run(run_dir, dest, checkpoint_steps=(), half: bool = True,
               drop_optimizer: bool = True, max_evals: int | None = None,
               accuracy: bool = True) -> Path:
    """Copy a run's compact results to ``dest`` for keeping in a repository: ``config.json``,
    ``metrics.npz`` (per-subtask arrays as float16 when ``half``: about 3 significant digits)
    and the checkpoints of ``checkpoint_steps`` (model only when ``drop_optimizer``; such
    checkpoints serve :meth:`Run.networks` but cannot be resumed).

    Smaller still, for sweeps of many runs: ``max_evals`` keeps that many of a finished run's
    evaluations, evenly spaced along its (log-spaced) grid, the first and last always
    (``eval_index`` records which); ``accuracy=False`` leaves out the per-subtask accuracy
    (the frequency-weighted mean accuracy stays)."""
    import os

    from common.files import atomic_write
    from .train import _atomic_torch_save

    src = Run(run_dir)
    dest = Path(dest)
    if dest.resolve() == src.path.resolve():
        raise InputError("dest must differ from run_dir")
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write(dest / "config.json", (src.path / "config.json").read_bytes())
    arrays = dict(src.metrics)
    if max_evals is not None:
        n, total = int(arrays["n_evals"]), len(arrays["steps"])
        if int(max_evals) < 2:
            raise InputError(f"max_evals must be at least 2, got {max_evals}")
        if not finished(arrays):
            raise InputError(f"{src.path} is not finished ({n} of {total} evaluations); "
                             "max_evals needs the whole grid")
        keep = np.unique(np.round(np.linspace(0, n - 1, min(int(max_evals), n))).astype(int))
        for key, axis in EVAL_AXIS.items():
            if key in arrays:
                arrays[key] = np.take(arrays[key], keep, axis=axis)
        arrays["eval_index"] = keep
        arrays["n_evals"] = np.array(len(keep), dtype=np.int64)
    if not accuracy:
        arrays.pop("test_acc", None)
    if half:
        for key in ("test_loss", "test_acc"):
            if key in arrays:
                arrays[key] = arrays[key].astype(np.float16)
    atomic_write(dest / "metrics.npz", lambda fh: np.savez_compressed(fh, **arrays))
    for step in checkpoint_steps:
        ck = src.checkpoint(step)
        if drop_optimizer:
            ck = {k: v for k, v in ck.items() if k not in ("optimizer", "streams", "metrics")}
        _atomic_torch_save(ck, checkpoint_path(dest, int(ck["step"])))
    os.sync()
    return dest
