"""Conventions shared by every subcommand: ``--json FILE`` (``-`` for stdout),
``--plot FILE``, one-line errors, log-spaced grids given as MIN MAX COUNT, and what keeps a
command from losing anything:

- each command names its path arguments (:func:`declare_paths`: inputs read, files
  written, folders written into) and :func:`check_paths` refuses, before anything runs, an
  output that is one of its inputs (or a data file inside an input folder), a folder where
  a file goes and a file where a folder goes, and two outputs on one path;
- the files one command writes (:func:`write_json`, :func:`save_figure`,
  :func:`write_file`) are committed together when it ends (``common.files.Commit``): a
  failure or a kill leaves the previous set, never half of a new one;
- ``--allow-large`` (:func:`add_resource_args`) lifts the memory and time refusals of
  ``common.resources``;
- warnings from the library reach the terminal as one line each.

:func:`run_command` does all this around a command; ``quanta.cli.main`` calls it."""
from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from common import resources
from common.errors import InputError
from common.files import Commit, atomic_write
from common.results import jsonable

class CommandError(InputError):
    """A usage error found by the command line itself (reported as one line, exit 2)."""


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types (``common.results.jsonable``); non-finite floats become None."""
    return jsonable(obj)


def say(text: str, json_dest=None) -> None:
    """Print a command's text report: to standard output, or to standard error when the
    JSON goes to standard output (``--json -``), so that stdout stays parseable."""
    print(text, file=sys.stderr if str(json_dest) == "-" else sys.stdout, flush=True)


#: the outputs of the command running now, committed together when it ends
_OUTPUTS: contextvars.ContextVar[Commit | None] = contextvars.ContextVar("quanta_outputs",
                                                                          default=None)


@contextlib.contextmanager
def outputs_together():
    """Within this block :func:`write_file` (and so :func:`write_json`, :func:`save_figure`)
    stages its files; they are put in place together at the end, or discarded on an error
    or Ctrl-C."""
    commit = Commit()
    token = _OUTPUTS.set(commit)
    try:
        with commit:
            yield commit
    finally:
        _OUTPUTS.reset(token)


def write_file(dest: str | os.PathLike, data) -> Path:
    """Write ``data`` (bytes, or a callable writing into a binary file) to ``dest``
    atomically: staged until the command ends (:func:`outputs_together`), else at once."""
    commit = _OUTPUTS.get()
    return commit.file(dest, data) if commit is not None else atomic_write(dest, data)


def write_json(obj: Any, dest: str | os.PathLike | None) -> None:
    """Write ``obj`` as JSON to ``dest``; ``-`` means standard output, None does nothing."""
    if dest is None:
        return
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"
    if str(dest) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_file(dest, text.encode())


def save_figure(fig, dest: str | os.PathLike | None, dpi: int = 150) -> None:
    """Save a matplotlib figure (format from the suffix) through :func:`write_file`, and
    close it."""
    import matplotlib.pyplot as plt

    try:
        if dest is not None:
            fmt = Path(dest).suffix.lstrip(".") or "png"
            write_file(dest, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi,
                                                    bbox_inches="tight"))
    finally:
        plt.close(fig)


# --------------------------------------------------------------- argument value types
def count(low: int = 1):
    """An argparse type: an integer ≥ ``low`` (counts: resamples, samples, repetitions)."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"an integer >= {low} expected, got {text!r}") \
                from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


#: an argparse type for seeds: an integer ≥ 0 (what numpy's generators take)
seed = count(0)


def number(accepts, wanted: str):
    """An argparse type: a float for which ``accepts(value)`` holds, else the refusal
    "must be ``wanted``"."""
    import argparse

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{wanted} expected, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value
    parse.__name__ = wanted
    return parse


#: argparse types: a confidence level, a positive finite number, seconds
fraction = number(lambda v: 0 < v < 1, "a number strictly between 0 and 1")
positive = number(lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
seconds = number(lambda v: math.isfinite(v) and v >= 0, "a finite number of seconds >= 0")


def track_given(parser) -> None:
    """Record in the parsed namespace's ``given`` (a frozenset of dests) which of
    ``parser``'s arguments the command line gave: argparse keeps no trace of an option given
    its default value, and a resume must compare every flag given, default-valued or not.
    Each action's class is swapped for a subclass whose call also records its dest."""
    for action in parser._actions:
        if action.dest != "help":
            action.__class__ = _recording(type(action))
    parser.set_defaults(given=frozenset())


@functools.cache
def _recording(cls):
    def __call__(self, parser, namespace, values, option_string=None):
        cls.__call__(self, parser, namespace, values, option_string)
        namespace.given = frozenset(getattr(namespace, "given", ())) | {self.dest}
    return type(f"Recording{cls.__name__}", (cls,), {"__call__": __call__})


def add_output_args(parser, plot: bool = True) -> None:
    """Add the standard ``--json FILE`` and (optionally) ``--plot FILE`` options."""
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write results as JSON to FILE ('-' for standard output)")
    if plot:
        parser.add_argument("--plot", metavar="FILE", default=None,
                            help="save a figure to FILE (format from the suffix)")
    declare_paths(parser, files=("json", "plot") if plot else ("json",))


def add_resource_args(parser) -> None:
    """Add ``--allow-large``: run even above the memory and time limits."""
    parser.add_argument("--allow-large", action="store_true",
                        help="run even if the estimated memory or time is above the limits "
                             "(the run shows its progress)")


# --------------------------------------------------------------------- path arguments
#: files inside an input folder that an output may never replace (a run's data)
PROTECTED_NAMES = ("config.json", "metrics.npz", "job.json", "status.json", "sweep.json")
PROTECTED_FOLDERS = ("checkpoints",)
PROTECTED_SUFFIXES = (".csv", ".parquet", ".npy", ".npz", ".pt", ".zarr", ".txt", ".toml",
                      ".yaml", ".yml")


def declare_paths(parser, *, inputs=(), files=(), folders=()) -> None:
    """Name the parser's path arguments (argparse dests) for :func:`check_paths`: ``inputs``
    are read (files or folders), ``files`` written, ``folders`` written into."""
    roles = dict(parser.get_default("path_roles") or {})
    for role, dests in (("input", inputs), ("file", files), ("folder", folders)):
        roles.update({dest: role for dest in dests})
    parser.set_defaults(path_roles=roles)


def _flag(args, dest: str) -> str:
    """How the user wrote the argument ``dest``: its long option, or its metavar."""
    for action in getattr(getattr(args, "parser", None), "_actions", ()):
        if action.dest == dest:
            if action.option_strings:
                return max(action.option_strings, key=len)
            return str(action.metavar or dest)
    return dest


def _paths(args) -> list[tuple[str, str, Path]]:
    """(role, flag, path) of every path argument given (``-`` and unset ones left out)."""
    out = []
    for dest, role in (getattr(args, "path_roles", None) or {}).items():
        values = getattr(args, dest, None)
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if isinstance(value, (str, os.PathLike)) and str(value) != "-":
                out.append((role, _flag(args, dest), Path(value)))
    return out


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name the same file or folder (links and ``..`` resolved)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> Path | None:
    """``path`` relative to ``folder`` if it lies inside it, else None."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def _protected(rel: Path) -> bool:
    return (rel.name in PROTECTED_NAMES or rel.parts[0] in PROTECTED_FOLDERS
            or rel.suffix.lower() in PROTECTED_SUFFIXES)


def _check_destination(flag: str, path: Path, role: str) -> None:
    """A file output must not be a folder, a folder output not a file; neither may lie
    under a file, nor in a folder this process cannot write."""
    if role == "file" and path.is_dir():
        raise InputError(f"{flag} {path}: is a folder; give a file name")
    if role == "folder" and path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: is a file; give a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{flag} {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"{flag} {path}: cannot write in {parent} (permission "
                                 "denied); choose another place")
            break


def check_paths(args) -> None:
    """Refuse, before the command runs, outputs that would destroy an input or cannot be
    written (see the module docstring), naming the arguments."""
    paths = _paths(args)
    inputs = [(f, p) for role, f, p in paths if role == "input" and p.exists()]
    seen: list[tuple[str, Path]] = []
    for role, flag, path in paths:
        if role == "input":
            continue
        _check_destination(flag, path, role)
        for iflag, ipath in inputs:
            # a positional input is named by its path (its metavar, INPUT, says nothing)
            named = f"{iflag} {ipath}" if iflag.startswith("-") else str(ipath)
            if same_path(path, ipath):
                raise InputError(f"{flag} {path}: that is the input {named}; writing there "
                                 "would destroy it: choose another path")
            rel = _inside(path, ipath) if ipath.is_dir() else None
            if rel is not None and role == "file" and path.exists() and _protected(rel):
                raise InputError(f"{flag} {path}: that is a data file of the input {named}; "
                                 "choose another path")
        for oflag, opath in seen:
            if same_path(path, opath):
                raise InputError(f"{flag} and {oflag} name the same path {path}: give each "
                                 "its own")
        seen.append((flag, path))


def prefix(command: str = "") -> str:
    """Who speaks in a one-line message: ``quanta COMMAND``, or ``quanta`` before a command
    is known (``f"{prefix(command)}: error: …"``)."""
    return f"quanta {command}" if command else "quanta"


def _one_line_warnings(command: str):
    """A ``warnings.showwarning`` that prints each distinct warning once, on one line."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            print(f"{prefix(command)}: warning: {text}", file=file or sys.stderr, flush=True)
    return show


def run_command(args) -> int:
    """Run a parsed command: paths checked first, ``--allow-large`` honoured, outputs
    committed together, library warnings as one line each. Returns its exit status."""
    check_paths(args)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(getattr(args, "command", ""))
        with resources.allow_large(bool(getattr(args, "allow_large", False))):
            if getattr(args, "outputs_together", True):
                with outputs_together():
                    return int(args.func(args) or 0)
            return int(args.func(args) or 0)


def log_grid(lo: float, hi: float, count: int, *, integer: bool = True,
             names: str = "MIN MAX COUNT") -> np.ndarray:
    """``count`` log-spaced values from ``lo`` to ``hi`` (``simulate --x-min/--x-max/--points``,
    ``parity train --width-grid MIN MAX COUNT``); with ``integer``, rounded and deduplicated
    (so small ranges give fewer values). Refuses anything but 0 < lo ≤ hi and count ≥ 1,
    and a count whose grid would not fit in memory, naming the flags ``names``."""
    if not (0 < lo <= hi) or count < 1:
        raise InputError(f"{names}: a grid needs 0 < MIN <= MAX and COUNT >= 1, got "
                         f"{lo:g} {hi:g} {count:g}")
    # the grid, its rounded copy and unique's sorted copies, before any deduplication
    resources.check_memory(32.0 * count, f"{names}: a grid of {count:,} points",
                           "lower the count")
    grid = np.geomspace(lo, hi, int(count))
    return np.unique(np.round(grid)) if integer else grid
