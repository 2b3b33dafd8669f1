"""Input for the fits: arrays or a table (CSV or parquet), checked with one-line messages.

Every refusal is a ``ValueError`` whose message names the column (and row, counted from 1
as a spreadsheet shows data rows) at fault, so the command line prints it as one line.
Units are the user's: sizes in parameters/tokens/steps, losses in nats (or any unit; the
exponents do not depend on it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import CorruptFileError, InputError, require

#: The fewest points a fit accepts beyond its parameter count (one for the noise scale).
EXTRA_POINTS = 1


def read_table(path, columns=None):
    """Read a CSV (``.csv``, ``.txt``) or parquet (``.parquet``, ``.pq``: the ``parquet``
    extra, pyarrow) file into a DataFrame; a file that is neither is a ``CorruptFileError``.

    ``columns``: names that must be present; a missing one is refused with the list of the
    columns the file has.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    if parquet:
        require("pyarrow", "parquet")
    try:
        table = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CorruptFileError(f"{path}: the file is empty") from None
    except ValueError as err:  # pandas' ParserError, a bad encoding, pyarrow's ArrowInvalid
        what = "parquet file" if parquet else "CSV"
        raise CorruptFileError(f"{path}: not a readable {what} "
                               f"({str(err).splitlines()[0]})") from None
    for col in columns or ():
        if col not in table.columns:
            have = ", ".join(map(str, table.columns))
            raise InputError(f"{path}: no column {col!r} (columns: {have})")
    return table


def column_values(table, name):
    """Column ``name`` of a DataFrame as float64, refusing non-numeric cells by row."""
    import pandas as pd

    raw = table[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values) & raw.notna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise InputError(f"column {name!r}, row {i + 1}: not a number ({raw.iloc[i]!r})")
    return values


def check_positive_array(values, name):
    """``values`` as a 1-d float array, refusing NaN, infinite and non-positive entries by row."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not numeric") from None
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-d array, got shape {arr.shape}")
    for test, what in ((np.isnan, "is NaN (missing)"), (np.isinf, "is infinite"),
                       (lambda a: a <= 0, "is not positive")):
        bad = np.flatnonzero(test(arr))
        if bad.size:
            i = int(bad[0])
            value = "" if what.startswith("is NaN") else f" ({arr[i]:g})"
            raise InputError(f"{name}, row {i + 1}: {what}{value}; "
                             f"sizes and losses must be positive numbers")
    return arr


def check_xy(x, y, *, x2=None, sigma=None, n_params=2, names=("x", "y", "x2", "sigma")):
    """Validate the data of one fit; returns float arrays ``(x, y, x2, sigma)``.

    Refuses: NaN, infinite or non-positive values (naming the row), arrays of different
    lengths, fewer than ``n_params + 1`` points, a single distinct x (or x2), and for one variable
    fewer distinct x than parameters.
    """
    xn, yn, x2n, sn = names
    x, y = check_positive_array(x, xn), check_positive_array(y, yn)
    arrays = [(xn, x), (yn, y)]
    if x2 is not None:
        x2 = check_positive_array(x2, x2n)
        arrays.append((x2n, x2))
    if sigma is not None:
        sigma = check_positive_array(sigma, sn)
        arrays.append((sn, sigma))
    n = len(x)
    for name, arr in arrays[1:]:
        if len(arr) != n:
            raise InputError(f"{name} has {len(arr)} values but {xn} has {n}")
    if n < n_params + EXTRA_POINTS:
        raise InputError(f"{n} points for {n_params} parameters: need at least "
                         f"{n_params + EXTRA_POINTS} points")
    for name, arr in arrays[:1] + ([(x2n, x2)] if x2 is not None else []):
        if np.unique(arr).size < 2:
            raise InputError(f"{name}: a single distinct value ({arr[0]:g}); "
                             f"a scaling law needs at least two sizes")
    distinct = np.unique(x).size
    if x2 is None and distinct < n_params:
        raise InputError(f"{xn}: {distinct} distinct sizes for a law of {n_params} "
                         f"parameters; its curve through them is not determined (need at "
                         f"least {n_params} distinct sizes)")
    return x, y, x2, sigma


def load_xy(path, x, y, *, x2=None, sigma=None):
    """Read columns ``x``, ``y`` (and ``x2``, ``sigma``) of a CSV/parquet table as arrays.

    Rows are checked as in :func:`check_xy` when the fit runs; here non-numeric cells are
    refused with their column and row.
    """
    names = [c for c in (x, y, x2, sigma) if c is not None]
    table = read_table(path, names)
    return {c: column_values(table, c) for c in names}
