"""Reading the report's inputs: what each file or folder is, judged from its content.

An input is a JSON file written by a ``quanta … --json`` command (or a demo), a parity run
folder (``config.json`` + ``metrics.npz``), a folder of run folders, a ``qdg bias`` folder
(``report.json`` + ``summary.csv`` + ``runs.csv``), or any other folder, which stands for
the inputs found inside it. Anything that is none of these is returned as
:class:`Unreadable` with the reason, for the page and stderr to name. docs/report.md lists
the formats and the keys each is recognised by.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Input:
    """One thing to report on: its kind, where it came from and what it holds."""
    kind: str
    path: Path                        # the file or folder given (or found)
    doc: Any = None                   # the parsed JSON (None for run folders)
    json_file: Path | None = None     # the file the JSON came from
    runs: list = field(default_factory=list)    # parity run folders
    tables: dict = field(default_factory=dict)  # CSV tables of a folder (name → DataFrame)


@dataclass
class Unreadable:
    """An input the report could not use, and why."""
    path: str
    reason: str


def _is_simulation(doc) -> bool:
    return isinstance(doc, dict) and {"config", "points", "theory_exponent"} <= set(doc)


def _fits_by_regime(doc) -> bool:
    regimes = doc.get("regimes")
    return isinstance(regimes, dict) and bool(regimes) and all(
        isinstance(v, dict) and {"form", "params", "ci"} <= set(v) for v in regimes.values())


#: (kind, test on a JSON object): the first that matches names the document's kind
KINDS: list[tuple[str, Callable[[dict], bool]]] = [
    ("theory", lambda d: {"alpha_N", "alpha_D", "alpha_S", "compute_optimal"} <= set(d)),
    ("simulate", lambda d: _is_simulation(d) or
     (bool(d) and all(_is_simulation(v) for v in d.values()))),
    ("fit", lambda d: {"form", "params", "ci"} <= set(d)),
    ("fit-groups", lambda d: {"group_by", "groups"} <= set(d) and isinstance(d["groups"], dict)
     and all(isinstance(v, dict) and {"form", "params", "ci"} <= set(v)
             for v in d["groups"].values())),
    ("fit-regimes", _fits_by_regime),
    ("literature", lambda d: {"points", "median_gap"} <= set(d)),
    ("sizes", lambda d: {"method", "alpha_hat", "rank_exponent", "ci"} <= set(d)),
    ("consistency", lambda d: {"alpha_N", "alpha_D", "gap", "gap_ci"} <= set(d)),
    ("parity", lambda d: isinstance(d.get("runs"), list)
     and ({"threshold", "unit"} <= set(d) or d.get("method") in ("quanta", "paper"))),
    ("parity-both", lambda d: d.get("method") == "both" and {"quanta", "paper"} <= set(d)),
    ("parity-alphas", lambda d: {"method", "rows", "coverage", "mixed", "theory"} <= set(d)
     and isinstance(d["rows"], list) and bool(d["rows"])),
    ("qdg-parity", lambda d: {"run_dir", "checkpoints", "alpha_true"} <= set(d)),
    ("qdg-networks", lambda d: {"run_dir", "networks"} <= set(d) and bool(d["networks"])
     and isinstance(d["networks"], list)),
    ("qdg-toy", lambda d: {"alpha_true", "estimators", "sizes"} <= set(d)),
    ("qdg-bias", lambda d: {"estimators", "recommended"} <= set(d)),
    ("tokens", lambda d: {"axis", "x", "mean_loss", "estimates", "classification"} <= set(d)),
]


def kind_of(doc: Any) -> str | None:
    """The kind of a parsed JSON document, or None if it is none the report reads."""
    if not isinstance(doc, dict):
        return None
    return next((kind for kind, test in KINDS if test(doc)), None)


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "metrics.npz").is_file()


def is_bias_dir(path: Path) -> bool:
    return all((path / f).is_file() for f in ("report.json", "summary.csv", "runs.csv"))


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text()), None
    except UnicodeDecodeError:
        return None, "not a text file"
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg} at line {err.lineno})"
    except OSError as err:
        return None, err.strerror or str(err)


def read_file(path: Path) -> Input | Unreadable:
    """A JSON file as an :class:`Input` of its kind, or :class:`Unreadable`."""
    doc, error = _read_json(path)
    if error and path.suffix.lower() != ".json":
        error = "not a JSON file, a parity run folder or a qdg bias folder"
    if error:
        return Unreadable(str(path), error)
    kind = kind_of(doc)
    if kind is None:
        keys = ", ".join(list(doc)[:8]) if isinstance(doc, dict) else type(doc).__name__
        return Unreadable(str(path), f"JSON of no kind quanta report reads (top level: {keys}); "
                                     "docs/report.md lists the formats")
    return Input(kind, path, doc, json_file=path)


def read_bias_dir(path: Path) -> Input | Unreadable:
    """A ``quanta qdg bias`` folder: report.json and its two CSV tables."""
    import pandas as pd

    item = read_file(path / "report.json")
    if isinstance(item, Unreadable):
        return item
    try:
        item.tables = {name: pd.read_csv(path / f"{name}.csv") for name in ("summary", "runs")}
    except (OSError, ValueError) as err:
        return Unreadable(str(path), f"its CSV tables cannot be read: {err}")
    item.path = path
    return item


def _runs_input(path: Path, runs: list[Path]) -> Input:
    return Input("parity-runs", path, runs=list(dict.fromkeys(p.resolve() for p in runs)))


def _folder(path: Path, found: list, runs: list) -> None:
    """What a folder holds: a run (added to ``runs``), a bias study, or its JSON files and
    subfolders; the run folders directly inside a folder are one group, analysed together
    as ``quanta parity analyze FOLDER`` would."""
    if is_run_dir(path):
        runs.append(path)
        return
    if is_bias_dir(path):
        found.append(read_bias_dir(path))
        return
    children = sorted(path.iterdir())
    inner_runs = [c for c in children if c.is_dir() and is_run_dir(c)]
    if inner_runs:
        found.append(_runs_input(path, inner_runs))
    for child in children:
        if child.is_dir() and child not in inner_runs:
            _folder(child, found, runs)
        elif child.suffix.lower() == ".json":
            found.append(read_file(child))


def read_inputs(paths) -> tuple[list[Input], list[Unreadable]]:
    """Every input these paths hold, in the order given; the parity run folders named one
    by one become one ``parity-runs`` input (analysed together, as one ``parity analyze``),
    and each folder of runs another."""
    found: list = []
    runs: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            found.append(Unreadable(str(path), "no such file or folder"))
        elif path.is_dir():
            before = len(found) + len(runs)
            _folder(path, found, runs)
            if len(found) + len(runs) == before:
                found.append(Unreadable(str(path), "a folder with no JSON file or run folder"))
        else:
            found.append(read_file(path))
    if runs:                     # run folders named one by one: one analysis of them all
        found.append(_runs_input(runs[0].parent if len(runs) > 1 else runs[0], runs))
    inputs = [f for f in found if isinstance(f, Input)]
    return inputs, [f for f in found if isinstance(f, Unreadable)]
