"""Output conventions shared by every subcommand: ``--json FILE`` (``-`` for stdout),
``--plot FILE``, atomic writes and one-line errors."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from empirical.files import atomic_write


class CommandError(Exception):
    """An error reported to the user as one line, without a traceback."""


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses and paths into plain JSON types.

    Non-finite floats become ``None`` so the output is strict JSON.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def say(text: str, json_dest=None) -> None:
    """Print a command's text report: to standard output, or to standard error when the
    JSON goes to standard output (``--json -``), so that stdout stays parseable."""
    print(text, file=sys.stderr if str(json_dest) == "-" else sys.stdout, flush=True)


def write_json(obj: Any, dest: str | os.PathLike | None) -> None:
    """Write ``obj`` as JSON to ``dest``; ``-`` means standard output, None does nothing."""
    if dest is None:
        return
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"
    if str(dest) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(dest, text.encode())


def save_figure(fig, dest: str | os.PathLike | None, dpi: int = 150) -> None:
    """Save a matplotlib figure atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    try:
        if dest is not None:
            fmt = Path(dest).suffix.lstrip(".") or "png"
            atomic_write(dest, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi,
                                                      bbox_inches="tight"))
    finally:
        plt.close(fig)


def add_output_args(parser, plot: bool = True) -> None:
    """Add the standard ``--json FILE`` and (optionally) ``--plot FILE`` options."""
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write results as JSON to FILE ('-' for standard output)")
    if plot:
        parser.add_argument("--plot", metavar="FILE", default=None,
                            help="save a figure to FILE (format from the suffix)")
