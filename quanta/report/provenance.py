"""The page's footer: what made it and what made its inputs (versions, commands, seeds,
devices), read from the inputs themselves, never guessed."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

#: the command that writes each kind of input
MADE_BY = {
    "theory": "quanta theory --json", "simulate": "quanta simulate --json",
    "fit": "quanta fit DATA --json", "fit-regimes": "quanta demo (its fit part)",
    "fit-groups": "quanta fit DATA --group COLUMN --json",
    "parity-alphas": "quanta parity alphas --json",
    "literature": "quanta fit literature --json", "sizes": "quanta fit sizes --json",
    "consistency": "quanta fit consistency --json",
    "parity": "quanta parity analyze --json",
    "parity-both": "quanta parity analyze --method both --json", "parity-runs": "quanta parity train",
    "qdg-toy": "quanta qdg toy --json", "qdg-parity": "quanta qdg parity --json",
    "qdg-networks": "quanta qdg parity --networks … --json",
    "qdg-bias": "quanta qdg bias --out", "tokens": "quanta tokens analyze --json",
}

#: keys whose values say how a result was made (seeds) and where (devices)
SEED_KEYS = ("seed", "seeds", "task_seed")
DEVICE_KEYS = ("device", "precision")

PACKAGES = ("numpy", "scipy", "pandas", "matplotlib", "torch", "scikit-learn", "statsmodels",
            "jinja2")


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str | None:
    """The source tree's git commit (with '+' if it has uncommitted changes), if any."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def collect(doc, keys, found: dict) -> dict:
    """key → distinct values (as JSON text) of every ``keys`` entry anywhere in ``doc``."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            values = v if isinstance(v, list) else [v]
            if k in keys and all(not isinstance(e, (dict, list)) for e in values):
                found.setdefault(k, set()).update(json.dumps(e) for e in values)
            else:
                collect(v, keys, found)
    elif isinstance(doc, list):
        for v in doc:
            collect(v, keys, found)
    return found


def _fold(found: dict) -> str:
    return "; ".join(f"{k} {', '.join(sorted(v, key=lambda s: (len(s), s))[:12])}"
                     + (" …" if len(v) > 12 else "") for k, v in sorted(found.items()))


def _digest(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _commands_note(path: Path) -> str:
    """A COMMANDS.md beside the input (or one folder up), where results keep their recipe."""
    for folder in (path if path.is_dir() else path.parent, path.parent):
        if (folder / "COMMANDS.md").is_file():
            return str(folder / "COMMANDS.md")
    return ""


def input_rows(inputs) -> list[dict]:
    """One provenance row per input."""
    rows = []
    for item in inputs:
        docs = [item.doc] if item.doc is not None else []
        for run in item.runs:   # a parity run folder's config holds its seeds and device
            docs.append(json.loads((Path(run) / "config.json").read_text()))
        seeds, devices = {}, {}
        for doc in docs:
            collect(doc, SEED_KEYS, seeds)
            collect(doc, DEVICE_KEYS, devices)
        rows.append({"path": str(item.path), "kind": item.kind,
                     "made_by": MADE_BY.get(item.kind, item.kind),
                     "sha256": _digest(item.json_file), "seeds": _fold(seeds),
                     "devices": _fold(devices), "commands": _commands_note(Path(item.path)),
                     "runs": len(item.runs)})
    return rows


def provenance(inputs, command: str | None) -> dict:
    """Everything the footer shows."""
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command or " ".join(["quanta"] + sys.argv[1:]),
        "quanta": _version("quanta"), "commit": _commit(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "packages": {name: _version(name) for name in PACKAGES},
        "inputs": input_rows(inputs),
    }
