"""The commands a sweep can run, each described once: how its job writes its outputs into
the job's folder, which of its arguments are paths, whether it wants a GPU, and how its
outputs become rows of the collected table.

Adding a command to sweeps is one :func:`register` call (``tokens analyze``, a command
with ``--json FILE``, needs nothing beyond its name)."""
from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from common.errors import InputError

#: the file a ``--json`` command writes in its job's folder
RESULT_JSON = "result.json"


@dataclass(frozen=True)
class SweepCommand:
    """How a sweep runs one ``quanta`` command.

    ``outputs``: arguments the sweep sets to a file or folder inside the job's folder (a
    spec may not set them). ``resume``: arguments added on every run of the job, so that a
    job interrupted earlier continues (the command must accept them on a fresh start too).
    ``paths``: arguments holding input paths, made absolute from the spec file's folder.
    ``job_files``: output-file arguments a spec may set, a relative name landing in the
    job's folder (``plot = "fit.png"``: each job draws its own).
    ``fused``: for a command that trains many networks in one job, each argument it varies
    per network → that network's column in the collected table (see :func:`pack`).
    ``gpu(args)``: whether the job wants a GPU. ``check(namespace)``: validation beyond
    argparse, run on every job before any runs. ``rows(job_dir, args)``: the job's
    summary numbers as table rows (one per job, or one per network).
    """
    name: str
    outputs: dict[str, str] = field(default_factory=lambda: {"json": RESULT_JSON})
    resume: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    job_files: tuple[str, ...] = ("plot",)
    fused: dict[str, str] = field(default_factory=dict)
    gpu: Callable[[dict], bool] = lambda args: False
    check: Callable[[argparse.Namespace], object] | None = None
    rows: Callable[[Path, dict], list[dict]] | None = None

    @property
    def words(self) -> list[str]:
        """The command line's words: ``parity train`` → ["parity", "train"]."""
        return self.name.split()

    def summary_rows(self, job_dir: Path, args: dict) -> list[dict]:
        return (self.rows or json_rows)(Path(job_dir), args)


REGISTRY: dict[str, SweepCommand] = {}


def register(command: SweepCommand) -> SweepCommand:
    """Make ``command`` runnable from sweep specs."""
    REGISTRY[command.name] = command
    return command


#: names a spec may use for a registered command, as on the command line
#: (``quanta fit DATA`` is ``quanta fit curve DATA``)
ALIASES = {"fit": "fit curve"}


def lookup(name: str) -> SweepCommand:
    """The registered command ``name``, or an InputError listing those there are."""
    name = ALIASES.get(name, name)
    if name not in REGISTRY:
        raise InputError(f"command {name!r} is not one a sweep runs "
                         f"(one of: {', '.join(REGISTRY)})")
    return REGISTRY[name]


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises InputError (one line) instead of exiting."""

    def error(self, message):
        raise InputError(message)

    def exit(self, status=0, message=None):
        raise InputError((message or f"the command line asked to exit ({status})").strip())


@functools.lru_cache(maxsize=None)
def parser(name: str) -> _Parser:
    """``quanta``'s own parser for the command ``name`` (its module's ``add_parser``), raising
    InputError on bad arguments: a job's arguments mean exactly what they mean on the
    command line."""
    root = _Parser(prog="quanta")
    sub = root.add_subparsers(dest="command", required=True)
    importlib.import_module(f"quanta.commands.{name.split()[0]}").add_parser(sub)
    return root


def subparser(name: str) -> argparse.ArgumentParser:
    """The innermost parser of ``name`` (``parity train`` → the ``train`` parser)."""
    p = parser(name)
    for word in name.split():
        actions = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            raise InputError(f"`quanta {name}` does not exist in this version of quanta")
        p = actions[0].choices[word]
    return p


def argv(command: SweepCommand, args: dict) -> list[str]:
    """The command line (a list, never a shell string) that ``args`` (argument name →
    value) stands for: positionals in the parser's order, then ``--option value…``;
    a true flag is ``--flag``, a false one is left out, a list gives several values."""
    actions = {a.dest: a for a in subparser(command.name)._actions}
    words = list(command.words)
    positional = [a.dest for a in actions.values() if not a.option_strings]
    for dest in positional:
        if dest in args and args[dest] is not None:
            words.append(str(args[dest]))
    for dest, value in args.items():
        action = actions[dest]
        if not action.option_strings or value is None:
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:
            if bool(value) != bool(action.default):
                words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, *map(_word, value)]
        else:
            words += [flag, _word(value)]
    return words


def _word(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def argument_names(command: SweepCommand) -> list[str]:
    """The argument names (argparse dests) a spec may set for ``command``."""
    skip = {"help", *command.outputs, *command.resume}
    return [a.dest for a in subparser(command.name)._actions
            if a.dest not in skip and a.dest != argparse.SUPPRESS]


def parse(command: SweepCommand, words: list[str]) -> argparse.Namespace:
    """``words`` (from :func:`argv`, plus outputs) parsed by the command's own parser."""
    return parser(command.name).parse_args(words)


# ---------------------------------------------------------------- summary numbers

def scalars(doc, prefix: str = "", skip=("config",)) -> dict:
    """The numbers of a JSON document flattened to ``a.b`` names; short lists of numbers
    (an interval, a window) give ``a.0``, ``a.1``; longer lists, strings and ``skip`` keys
    (the config, which the arguments already give) are left out."""
    out: dict = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if key in skip:
            continue
        if isinstance(value, dict):
            out.update(scalars(value, name + ".", skip=()))
        elif isinstance(value, list) and 0 < len(value) <= 4 and \
                all(v is None or isinstance(v, (int, float)) for v in value):
            out.update({f"{name}.{i}": v for i, v in enumerate(value)})
        elif value is None or isinstance(value, (bool, int, float)):
            out[name] = value
    return out


def json_rows(job_dir: Path, args: dict) -> list[dict]:
    """One row: the numbers of the job's ``result.json``."""
    return [scalars(json.loads((job_dir / RESULT_JSON).read_text()))]


# ---------------------------------------------------------------- parity train

#: What the fused trainer varies per network within one job: argument → the network's
#: column (the argument is also the name of its per-network array in ``metrics.npz``).
#: Everything else splits jobs. Once the trainer takes one α per group of networks, the
#: α × width × seed grid becomes one job by adding ``"alpha": "alpha"`` here.
PARITY_FUSED = {"widths": "width", "seeds": "seed", "D": "D"}


def parity_rows(job_dir: Path, args: dict) -> list[dict]:
    """One row per network: its width, seed, D (0 = online), parameter count and the last
    evaluation's frequency-weighted test loss and accuracy and its batch loss."""
    with np.load(job_dir / "metrics.npz") as m:
        last = int(m["n_evals"]) - 1
        rows = []
        for i in range(len(m["widths"])):
            row = {col: m[key][i].item() for key, col in PARITY_FUSED.items()}
            row.update(n_params=int(m["n_params"][i]), step=int(m["steps"][last]),
                       mean_test_loss=float(m["mean_test_loss"][i, last]),
                       mean_test_acc=float(m["mean_test_acc"][i, last]),
                       train_loss=float(m["train_loss"][i, last]))
            rows.append(row)
    return rows


def _parity_check(namespace) -> None:
    from quanta.commands.parity import config_from_args
    config_from_args(namespace)


register(SweepCommand("simulate"))
register(SweepCommand("fit curve", paths=("data", "file")))
register(SweepCommand("fit sizes", paths=("file",)))
register(SweepCommand(
    "parity train", outputs={"out": "."}, resume=("resume",), fused=PARITY_FUSED,
    gpu=lambda args: not str(args.get("device", "auto")).startswith("cpu"),
    check=_parity_check, rows=parity_rows))
# `quanta tokens analyze` (another engineer is writing it) writes --json like the others:
# registered as soon as its module exists
if importlib.util.find_spec("quanta.commands.tokens") is not None:
    register(SweepCommand("tokens analyze"))
