"""Conventions shared by every subcommand: ``--json FILE`` (``-`` for stdout),
``--plot FILE``, atomic writes, one-line errors, and log-spaced grids given as
MIN MAX COUNT."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import InputError
from common.files import atomic_write
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


def log_grid(lo: float, hi: float, count: int, *, integer: bool = True,
             names: str = "MIN MAX COUNT") -> np.ndarray:
    """``count`` log-spaced values from ``lo`` to ``hi`` (``simulate --x-min/--x-max/--points``,
    ``parity train --width-grid MIN MAX COUNT``); with ``integer``, rounded and deduplicated
    (so small ranges give fewer values). Refuses anything but 0 < lo ≤ hi and count ≥ 1,
    naming the flags ``names``."""
    if not (0 < lo <= hi) or count < 1:
        raise InputError(f"{names}: a grid needs 0 < MIN <= MAX and COUNT >= 1, got "
                         f"{lo:g} {hi:g} {count:g}")
    grid = np.geomspace(lo, hi, int(count))
    return np.unique(np.round(grid)) if integer else grid
