"""Several-α sweeps: one fused run trains an α × D × seed × width grid (``TaskConfig.alphas``);
:func:`split_alphas` turns it into one ordinary run directory per α, each holding what
training that α alone gives (the counter sampler makes a group's batches independent of the
groups beside it), so everything that reads one-α runs reads them unchanged."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from common.errors import InputError
from common.files import atomic_write
from .config import RunConfig, read_config
from .train import (CHECKPOINT_DIR, _atomic_torch_save, checkpoint_path, load_checkpoint,
                    network_table)

#: metrics with one row per network
PER_NETWORK = ("widths", "seeds", "D", "alpha", "n_params", "test_loss", "test_acc",
               "mean_test_loss", "mean_test_acc", "train_loss")


def alpha_config(config: RunConfig, alpha: float) -> RunConfig:
    """The one-α config of group ``alpha`` of a several-α ``config``."""
    sub = RunConfig.from_dict(config.to_dict())
    sub.task.alpha, sub.task.alphas = float(alpha), None
    return sub


def _slice_model(state: dict, nets: slice, units: slice) -> dict:
    """The parameters of networks ``nets`` (hidden units ``units``) of a fused model."""
    out = {}
    for key, value in state.items():
        per_unit = key in ("w_in", "b_in", "w_out")
        out[key] = value[units if per_unit else nets].clone()
    return out


def split_alphas(run_dir, dest) -> list[Path]:
    """Write ``dest/alpha<α>/`` for every α of the several-α run in ``run_dir``: config.json
    (that α alone), metrics.npz (its networks' rows, its frequencies) and its networks'
    checkpoints (model only). Returns the directories written."""
    src, dest = Path(run_dir), Path(dest)
    config = read_config(src / "config.json")
    if config.task.alphas is None:
        raise InputError(f"{src} trains one α; there is nothing to split")
    nets = network_table(config)
    offsets = np.concatenate([[0], np.cumsum([n["width"] for n in nets])])
    with np.load(src / "metrics.npz") as z:
        metrics = {k: z[k] for k in z.files}
    groups = []                     # (sub-config, folder, network slice, unit slice) per α
    for alpha in config.task.alpha_list:
        idx = [n["index"] for n in nets if n["alpha"] == alpha]
        m, u = slice(idx[0], idx[-1] + 1), slice(int(offsets[idx[0]]), int(offsets[idx[-1] + 1]))
        sub, out = alpha_config(config, alpha), dest / f"alpha{alpha:g}"
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "config.json", sub.to_json().encode())
        part = {k: (v[m] if k in PER_NETWORK else v) for k, v in metrics.items()}
        if metrics["frequencies"].ndim == 2:
            part["frequencies"] = metrics["frequencies"][idx[0]]
        atomic_write(out / "metrics.npz", lambda fh: np.savez_compressed(fh, **part))
        groups.append((sub, out, m, u))
    for path in sorted((src / CHECKPOINT_DIR).glob("step_*.pt")):
        ck = load_checkpoint(path)                  # read once, sliced for every α
        for sub, out, m, u in groups:
            _atomic_torch_save({"format": ck["format"], "step": ck["step"],
                                "config": sub.to_dict(), "networks": network_table(sub),
                                "model": _slice_model(ck["model"], m, u)},
                               checkpoint_path(out, ck["step"]))
    written = [out for _, out, _, _ in groups]
    return written
