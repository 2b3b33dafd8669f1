"""The sweep spec: one command, its fixed arguments and the grid axes, read from TOML
(the standard library's ``tomllib``) or YAML (with pyyaml), validated up front with one-line
errors, and expanded into jobs.

    command = "simulate"        # or "parity train", "fit"
    [fixed]                     # arguments every job gets (names as on the command line)
    regime = "D"
    K = 10000
    [grid]                      # axes: every combination is one job
    alpha = [0.2, 0.4, 0.8]
    tau = [1, 2]

A job is a command and its arguments; its id is a hash of both, so a re-run (or a spec
that grew an axis value) finds the jobs already done.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from common.errors import InputError
from . import registry
from .registry import SweepCommand

SPEC_KEYS = ("command", "fixed", "grid")


@dataclass(frozen=True)
class Job:
    """One run of a command: ``args`` maps argument names to values (lists for options
    that take several)."""
    command: str
    args: dict
    label: str

    @property
    def id(self) -> str:
        """A folder name: the grid values, then a hash of the command and all arguments."""
        digest = hashlib.sha256(canonical([self.command, self.args]).encode()).hexdigest()
        return f"{self.label[:60]}-{digest[:10]}" if self.label else digest[:10]

    def to_dict(self) -> dict:
        return {"id": self.id, "command": self.command, "args": self.args, "label": self.label}


@dataclass(frozen=True)
class Spec:
    """A validated spec: where it came from, the command, and its jobs."""
    path: Path
    command: str
    fixed: dict
    grid: dict
    jobs: tuple[Job, ...]

    def to_dict(self) -> dict:
        return {"path": str(self.path), "command": self.command, "fixed": self.fixed,
                "grid": self.grid}


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def read(path) -> dict:
    """The raw spec document of a ``.toml``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such spec file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib
            doc = tomllib.loads(path.read_text())
        elif suffix in (".yaml", ".yml"):
            from common.errors import require
            yaml = require("yaml", "yaml")
            try:
                doc = yaml.safe_load(path.read_text())
            except yaml.YAMLError as err:
                raise InputError(" ".join(str(err).split())) from None
        else:
            raise InputError(f"a spec is a .toml, .yaml or .yml file, got {path.name!r}")
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: {' '.join(str(err).split())}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a spec is a table of 'command', 'fixed' and 'grid'")
    return doc


def load(path) -> Spec:
    """Read, validate and expand the spec in ``path``; an InputError names the file and
    the key at fault."""
    path = Path(path)
    try:
        return from_dict(read(path), base=path.parent, path=path)
    except InputError as err:
        msg = str(err)
        raise InputError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def from_dict(doc: dict, base=".", path=None) -> Spec:
    """A :class:`Spec` from a spec document; relative input paths resolve from ``base``."""
    unknown = [k for k in doc if k not in SPEC_KEYS]
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} (a spec has {', '.join(SPEC_KEYS)})")
    if not isinstance(doc.get("command"), str):
        raise InputError("'command' must name the command to run, e.g. command = \"simulate\"")
    command = registry.lookup(" ".join(doc["command"].split()))
    fixed = _arguments(command, doc.get("fixed", {}), "fixed")
    grid = _arguments(command, doc.get("grid", {}), "grid")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"grid.{name} must be a non-empty list of values "
                             "(a single value goes in [fixed])")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise InputError(f"{both[0]!r} is in both [fixed] and [grid]")
    points = [{**fixed, **dict(zip(grid, combo))} for combo in itertools.product(*grid.values())]
    points = [_resolve_paths(command, p, Path(base)) for p in points]
    if command.fused:
        points = pack(points, command.fused)
    labels = [_label(p, grid, command) for p in points]
    jobs = tuple(Job(command.name, p, label) for p, label in zip(points, labels))
    for job in jobs:
        validate_job(command, job)
    return Spec(Path(path) if path else None, command.name, fixed, grid, jobs)


def _arguments(command: SweepCommand, table, where: str) -> dict:
    """``table``'s keys as argument names (``n-tasks`` and ``n_tasks`` alike), checked
    against the command's parser."""
    if not isinstance(table, dict):
        raise InputError(f"[{where}] must be a table of argument = value")
    known = registry.argument_names(command)
    out: dict = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in command.outputs or name in command.resume:
            raise InputError(f"{where}.{key}: set by the sweep itself (each job writes into "
                             "its own folder and resumes by itself)")
        if name not in known:
            raise InputError(f"{where}.{key}: not an argument of `quanta {command.name}` "
                             f"(it takes: {', '.join(known)})")
        if name in out:
            raise InputError(f"{where}.{key}: given twice")
        for v in value if isinstance(value, list) else [value]:
            _check_value(f"{where}.{key}", v)
        out[name] = value
    return out


def _check_value(where: str, value) -> None:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int, float, bool)) for v in items):
        raise InputError(f"{where}: {value!r} is not a number, a string, a boolean or a list")


def _resolve_paths(command: SweepCommand, args: dict, base: Path) -> dict:
    """Input paths given relative to the spec's folder, made absolute where that file
    exists (so jobs read the same file wherever they run); other values as given."""
    out = dict(args)
    for name in command.paths:
        value = out.get(name)
        if isinstance(value, str) and not Path(value).is_absolute() and (base / value).exists():
            out[name] = str((base / value).resolve())
    return out


def pack(points: list[dict], fused: dict) -> list[dict]:
    """Jobs of a command that trains many networks at once (``parity train``): points that
    agree on every argument the trainer cannot vary per network (all but ``fused``) become
    one job whose ``fused`` arguments list the union of their values.

    A point's fused argument may be one value (a grid axis) or a list (a fixed argument);
    the spec's grid is a product, so each group's networks are the full product of those
    unions, which is exactly what the fused trainer trains."""
    groups: dict[str, dict] = {}
    for p in points:
        key = canonical([sorted(set(p) & set(fused)),
                         {k: v for k, v in p.items() if k not in fused}])
        job = groups.setdefault(key, {k: (v if k not in fused else []) for k, v in p.items()})
        for name in set(p) & set(fused):
            values = p[name] if isinstance(p[name], list) else [p[name]]
            job[name] = sorted(set(job[name]) | set(values))
    return list(groups.values())


def _label(args: dict, grid: dict, command: SweepCommand) -> str:
    """The job's grid values, readable as a folder name (fused axes left out: one job
    holds them all)."""
    parts = [f"{k}={_short(args[k])}" for k in grid if k not in command.fused]
    return re.sub(r"[^\w.=,+-]", "_", "_".join(parts))


def _short(value) -> str:
    if isinstance(value, list):
        return ",".join(map(_short, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def validate_job(command: SweepCommand, job: Job) -> None:
    """Parse the job's command line with the command's own parser (types, choices,
    required arguments) and run the command's own checks, before anything runs."""
    outputs = {k: "." for k in command.outputs}
    try:
        namespace = registry.parse(command, registry.argv(command, {**job.args, **outputs}))
        if command.check is not None:
            command.check(namespace)
    except InputError as err:
        where = f"job {job.label}" if job.label else "the job"
        raise InputError(f"{where}: {err}") from None
