"""Reading a run directory back (``config.json``, ``metrics.npz``, ``checkpoints/``), choosing
networks by width, and exporting the compact part of a run for keeping in a repository."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from common.errors import CorruptFileError, InputError
from common.files import LOCK_NAME, Commit, FolderLock, atomic_write, check_unlocked
from .config import RunConfig, read_config  # noqa: F401 (read_config: re-exported)
from .model import MLP, FusedMLP
from .task import SparseParityTask
from .train import (CHECKPOINT_DIR, _atomic_torch_save, checkpoint_path, finished,
                    load_checkpoint, make_task, network_table, RUN_FILES)

#: what ``export_run`` stores checkpoints (and per-subtask arrays) in unless told otherwise
EXPORT_DTYPE = torch.float16


class Run:
    """A finished (or partly finished) parity run.

    ``config`` is the :class:`RunConfig`, ``task`` the :class:`SparseParityTask` rebuilt
    from it, ``metrics`` a dict of arrays (``test_loss``/``test_acc``: network × eval step ×
    subtask, nats; ``mean_test_loss``: frequency-weighted; ``steps``, ``widths``, ``seeds``,
    ``D`` (0 = online), ``n_params``, ``frequencies``, ``train_loss``, ``n_evals``; an export
    adds ``subsets``, the task's bit subsets, to check the rebuilt task against).
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
        #: the step this view was cut at by :meth:`until` (None: the run as saved)
        self.until_step: int | None = None

    @property
    def complete(self) -> bool:
        """Whether the run has trained all its steps (:func:`train.is_complete` on the
        metrics already read)."""
        return bool(self.metrics) and finished(self.metrics)

    @property
    def planned_steps(self) -> int:
        """The steps the run was configured to train (``config.train.steps``)."""
        return int(self.config.train.steps)

    def evaluated_steps(self) -> np.ndarray:
        """The steps evaluated so far (all of the grid for a finished run)."""
        return self.metrics["steps"][:int(self.metrics["n_evals"])]

    def until(self, step: int) -> "Run":
        """This run as it stood at ``step``: a copy whose metrics keep the evaluations at
        steps ≤ ``step`` and mark the later ones unevaluated (NaN, as in a run paused there),
        and whose checkpoints are those up to ``step``. Analyses then describe the run at
        that step, so a partial run and a finished one compare at their common step."""
        import copy

        if not self.metrics:
            raise InputError(f"run {self.path} has no metrics.npz yet")
        done = self.evaluated_steps()
        n = int(np.searchsorted(done, int(step), side="right"))
        if n < 2:
            raise InputError(f"until step {step}: {self.path} has fewer than two evaluations "
                             f"up to it (its first evaluated steps: {done[:3].tolist()})")
        view = copy.copy(self)
        view.metrics = dict(self.metrics, n_evals=np.array(n, dtype=np.int64))
        for key, axis in EVAL_AXIS.items():
            if key in view.metrics and key != "steps":
                a = np.array(view.metrics[key])          # float arrays: a copy to mark
                np.moveaxis(a, axis, 0)[n:] = np.nan
                view.metrics[key] = a
        if n < len(done):
            view.until_step = int(done[n - 1])
        return view

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
        steps = sorted(int(p.stem.split("_")[1]) for p in ckdir.glob("step_*.pt"))
        return [s for s in steps if self.until_step is None or s <= self.until_step]

    def checkpoint(self, step: int | None = None) -> dict:
        """The raw checkpoint dict of ``step`` (None = last) on the CPU."""
        steps = self.checkpoint_steps()
        if not steps:
            raise InputError(f"no checkpoints in {self.path / CHECKPOINT_DIR}")
        step = steps[-1] if step is None else int(step)
        if step not in steps:
            raise InputError(f"step {step} has no checkpoint; available: {steps}")
        return load_checkpoint(checkpoint_path(self.path, step))

    def _check_task(self) -> None:
        """Refuse to evaluate networks on a task other than the one they were trained on:
        an export records the bit subsets, and a change of the task code would redraw them."""
        recorded = self.metrics.get("subsets")
        if recorded is not None and not np.array_equal(recorded, self.task.subsets):
            raise InputError(f"{self.path}: the task rebuilt from config.json has other bit "
                             "subsets than the run was trained on (recorded in metrics.npz): "
                             "the task code changed since; evaluate with the code of the run")

    def networks(self, step: int | None = None) -> list[tuple[dict, MLP]]:
        """The networks saved at the checkpoint of ``step`` (None = last; every network, or
        the ones an export kept) as (info dict, standalone :class:`MLP` on the CPU in float32,
        taking the encoded input and returning 2 logits)."""
        self._check_task()
        ck = self.checkpoint(step)
        saved = ck.get("networks") or network_table(self.config)
        model = FusedMLP(self.task.input_dim, [n["width"] for n in saved],
                         self.config.model.depth)
        model.load_state_dict({k: v.float() for k, v in ck["model"].items()})
        infos = self.info()
        return [(dict(infos[n["index"]], step=int(ck["step"])), model.network(j).eval())
                for j, n in enumerate(saved)]

    def network(self, index: int, step: int | None = None) -> tuple[dict, MLP]:
        """Network ``index`` (of :meth:`info`) at the checkpoint of ``step`` (None = last)."""
        for info, mlp in self.networks(step):
            if info["index"] == int(index):
                return info, mlp
        raise InputError(f"network {index} is not in the checkpoint of {self.path} "
                         "(an export keeps only the networks it was asked for)")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, networks={len(self.info())})"


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


def select_networks(infos: list[dict], spec=None) -> list[int]:
    """Indices of the networks ``spec`` names, ascending: None or "all" (every network),
    "widest:K" / "narrowest:K" (every network, seed and D of the K largest / smallest
    widths), or widths as "500,435" or a sequence of ints (every network of those widths)."""
    widths = sorted({int(r["width"]) for r in infos})
    if spec is None or spec == "all":
        chosen = set(widths)
    elif isinstance(spec, str) and spec.split(":")[0] in ("widest", "narrowest"):
        end, _, count = spec.partition(":")
        if not count.isdigit() or int(count) < 1:
            raise InputError(f"networks: {spec!r} needs a positive count, e.g. 'widest:3'")
        chosen = set(widths[::-1][:int(count)] if end == "widest" else widths[:int(count)])
    else:
        try:
            chosen = {int(w) for w in (spec.split(",") if isinstance(spec, str) else spec)}
        except (TypeError, ValueError):
            raise InputError(f"networks: expected 'all', 'widest:K', 'narrowest:K' or widths "
                             f"like '500,435', got {spec!r}") from None
        missing = sorted(chosen - set(widths))
        if missing:
            raise InputError(f"networks: widths {missing} are not in the run; its widths: "
                             f"{widths}")
    return [r["index"] for r in infos if r["width"] in chosen]


#: metrics with an evaluation axis, and which axis it is
EVAL_AXIS = {"steps": 0, "wall_time": 0, "test_loss": 1, "test_acc": 1, "mean_test_loss": 1,
             "mean_test_acc": 1, "train_loss": 1}


def _export_steps(src: Run, checkpoint_steps) -> list[int]:
    """The checkpoint steps an export keeps: a list of steps, "all" or "last"."""
    if checkpoint_steps in ("all", "last"):
        steps = src.checkpoint_steps()
        return steps if checkpoint_steps == "all" else steps[-1:]
    return [int(s) for s in checkpoint_steps]


def _compact_metrics(src: Run, half: bool, max_evals: int | None, accuracy: bool) -> dict:
    """The metrics an export writes (see :func:`export_run`)."""
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
    arrays["subsets"] = src.task.subsets.astype(np.int16)
    return arrays


def _compact_checkpoint(src: Run, step: int, keep: list[int], half: bool) -> dict:
    """The checkpoint of ``step`` with the model of the networks ``keep`` only (float16 when
    ``half``), without optimizer, data-stream and metrics state."""
    ck = src.checkpoint(step)
    saved = ck.get("networks") or network_table(src.config)
    position = {n["index"]: j for j, n in enumerate(saved)}
    absent = [i for i in keep if i not in position]
    if absent:
        raise InputError(f"networks {absent} are not in the checkpoint of step {step}")
    full = FusedMLP(src.task.input_dim, [n["width"] for n in saved], src.config.model.depth)
    full.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    part = FusedMLP(src.task.input_dim, [saved[position[i]]["width"] for i in keep],
                    src.config.model.depth)
    for j, i in enumerate(keep):
        part.load_network(j, full.network(position[i]))
    dtype = EXPORT_DTYPE if half else torch.float32
    out = {k: v for k, v in ck.items()
           if k not in ("optimizer", "streams", "metrics", "model", "networks")}
    out.update(networks=[saved[position[i]] for i in keep], dtype=str(dtype).split(".")[1],
               model={k: v.to(dtype) for k, v in part.state_dict().items()})
    return out


def _check_dest(src: Run, dest: Path, force: bool) -> None:
    """Refuse a destination that is or holds the source, or holds something: another run
    (unless ``force``: it is then replaced whole) or anything else (never replaced)."""
    s, d = src.path.resolve(), dest.resolve()
    if s == d or s in d.parents or d in s.parents:
        raise InputError(f"DEST {dest}: must lie outside the run {src.path}, and hold it not")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise InputError(f"DEST {dest}: is a file; give a folder")
    present = {p.name for p in dest.iterdir()} - {LOCK_NAME}
    if not present:
        return
    if not present & set(RUN_FILES):
        raise InputError(f"DEST {dest}: is a folder that holds no parity run but other files "
                         f"({', '.join(sorted(present)[:3])}…); export into a new or empty "
                         "folder")
    if not force:
        raise InputError(f"DEST {dest}: holds another run ({', '.join(sorted(present))}); "
                         "pass --force to replace it whole, or choose another DEST")


def _write_export(src: Run, out: Path, arrays: dict, steps, keep, half: bool) -> None:
    """The export's files, written into the (staged) folder ``out``."""
    atomic_write(out / "config.json", (src.path / "config.json").read_bytes())
    atomic_write(out / "metrics.npz", lambda fh: np.savez_compressed(fh, **arrays))
    for step in steps:
        ck = _compact_checkpoint(src, step, keep, half)
        _atomic_torch_save(ck, checkpoint_path(out, int(ck["step"])))


def export_run(run_dir, dest, checkpoint_steps=(), half: bool = True,
               max_evals: int | None = None, accuracy: bool = True, networks=None,
               force: bool = False) -> Path:
    """Copy a run's compact results to ``dest`` for keeping in a repository: ``config.json``,
    ``metrics.npz`` (every network; per-subtask arrays as float16 when ``half``: about 3
    significant digits; plus the task's bit subsets, checked when networks are evaluated)
    and the checkpoints of ``checkpoint_steps`` (steps, "all" or "last"), model only (they
    serve :meth:`Run.networks` but cannot be resumed), of the networks ``networks`` names
    (:func:`select_networks`: "all" (default), "widest:3", widths), in float16 when ``half``
    (about 3 significant digits of every weight; half the bytes of float32).

    Smaller still, for sweeps of many runs: ``max_evals`` keeps that many of a finished run's
    evaluations, evenly spaced along its (log-spaced) grid, the first and last always
    (``eval_index`` records which); ``accuracy=False`` leaves out the per-subtask accuracy
    (the frequency-weighted mean accuracy stays).

    Nothing is lost: ``dest`` must be new, empty or (with ``force``) hold another run, which
    is then replaced whole; the export is built beside it and swapped in at the end
    (``common.files.Commit``), under ``dest``'s lock, and refused while the run is being
    trained; a failure or a kill leaves ``dest`` as it was."""
    src = Run(run_dir)
    dest = Path(dest)
    _check_dest(src, dest, force)
    keep = select_networks(src.info(), networks)
    steps = _export_steps(src, checkpoint_steps)
    arrays = _compact_metrics(src, half, max_evals, accuracy)   # refusals before any write
    check_unlocked(src.path)
    with FolderLock(dest, "quanta parity export"), Commit() as commit:
        _check_dest(src, dest, force)          # again, now that dest is ours
        _write_export(src, commit.folder(dest), arrays, steps, keep, half)
    return dest
