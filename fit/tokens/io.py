"""Per-token loss matrices as users hold them, read in chunks and checked row by row.

A matrix is tokens × columns: one column per model of a family (ordered by size) or per
checkpoint of one model (ordered by step). Formats:

- ``.npy``: the matrix alone, memory-mapped (never read whole);
- ``.npz``: ``losses`` (or the only array), optionally ``sizes`` or ``steps`` and per-token
  metadata arrays (``document``, ``token``, ``position``, ``frequency``, ``group``); the
  generator's ``truth_*`` arrays and ``generator_config`` are kept for comparison. An npz
  member cannot be memory-mapped: it is read whole (use .npy, parquet or zarr for 10^7 rows);
- parquet: one numeric column per model (in file order) and optional metadata columns of
  the names above, read by row batches (pyarrow);
- zarr (the ``tokens`` extra): an array, or a group with ``losses`` and the arrays above,
  read chunk by chunk.

Every refusal is a :class:`common.errors.InputError` naming the file, the row (token,
counted from 1) and the column: ragged or non-numeric matrices, NaN, infinite or negative
losses, sizes or steps that are not positive and increasing, metadata of the wrong length.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from common.errors import CorruptFileError, InputError, require

METADATA = ("document", "token", "position", "frequency", "group")
AXES = ("sizes", "steps")


@dataclasses.dataclass
class LossMatrix:
    """A loss matrix readable in row chunks: ``chunks(size)`` yields ``(start, losses,
    metadata)`` with ``losses`` a float32 or float64 array (rows × columns), checked."""
    name: str
    n_tokens: int
    n_columns: int
    read: Callable[[int], Iterator[tuple[int, np.ndarray, dict]]]
    x: np.ndarray | None = None
    axis: str | None = None
    metadata_names: tuple = ()
    extras: dict = dataclasses.field(default_factory=dict)

    def chunks(self, size: int = 1 << 18, check: bool = True
               ) -> Iterator[tuple[int, np.ndarray, dict]]:
        """Row chunks as float arrays; ``check=False`` leaves the NaN/negative check to
        the caller (the analysis does it in its first pass's kernel)."""
        for start, block, meta in self.read(size):
            losses = _as_matrix(block, self.name, self.n_columns)
            if check:
                check_losses(losses, self.name, start, self.x)
            yield start, losses, meta


def _as_matrix(block, name: str, n_columns: int) -> np.ndarray:
    arr = np.asarray(block)
    if arr.dtype == object:
        raise InputError(f"{name}: ragged or non-numeric losses (an object array); the "
                         "matrix must be tokens × models with one loss in every cell")
    if arr.ndim != 2 or arr.shape[1] != n_columns:
        raise InputError(f"{name}: expected a 2-d matrix tokens × {n_columns} columns, "
                         f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name}: losses must be real numbers, got dtype {arr.dtype}")
    if arr.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(arr)
    return arr.astype(np.float64)


def check_losses(losses: np.ndarray, name: str, start: int = 0, x=None) -> None:
    """Refuse NaN, infinite and negative losses, naming the first bad cell."""
    for test, what in ((np.isnan, "is NaN (missing)"), (np.isinf, "is infinite"),
                       (lambda a: a < 0, "is negative")):
        bad = test(losses)
        if bad.any():
            row, col = np.unravel_index(int(np.argmax(bad)), bad.shape)
            where = f"column {col + 1}" + ("" if x is None else f" (x = {x[col]:g})")
            raise InputError(f"{name}: the loss of token {start + row + 1}, {where}, {what}; "
                             "per-token losses (cross-entropies) must be finite and >= 0")


def check_axis(x, n_columns: int, axis: str, name: str = "") -> np.ndarray:
    """Sizes or steps: one positive, finite value per column, strictly increasing."""
    where = f"{name}: " if name else ""
    try:
        arr = np.asarray(x, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{where}{axis}: not numbers ({x!r})") from None
    if arr.size != n_columns:
        raise InputError(f"{where}{axis}: {arr.size} values for {n_columns} columns of losses; "
                         "give one per model (or checkpoint), in column order")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InputError(f"{where}{axis}: every value must be a positive number, got {arr.tolist()}")
    bad = np.flatnonzero(np.diff(arr) <= 0)
    if bad.size:
        j = int(bad[0])
        raise InputError(f"{where}{axis} are not increasing: column {j + 2} ({arr[j + 1]:g}) is "
                         f"not above column {j + 1} ({arr[j]:g}); order the columns from the "
                         f"smallest model (earliest checkpoint)")
    return arr


def _check_metadata(meta: dict, n_tokens: int, name: str) -> dict:
    out = {}
    for key, value in meta.items():
        arr = np.asarray(value)
        if arr.ndim != 1 or arr.shape[0] != n_tokens:
            raise InputError(f"{name}: metadata {key!r} has shape {arr.shape} but the "
                             f"losses have {n_tokens} tokens; give one value per token")
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"{name}: metadata {key!r} must be numeric, got {arr.dtype}")
        if key == "frequency" and (not np.all(np.isfinite(arr)) or np.any(arr <= 0)):
            raise InputError(f"{name}: metadata 'frequency' must be positive numbers")
        out[key] = arr
    return out


def from_arrays(losses, *, metadata=None, name: str = "losses", x=None, axis=None,
                extras=None) -> LossMatrix:
    """A :class:`LossMatrix` over an in-memory or memory-mapped array."""
    arr = np.asarray(losses) if not isinstance(losses, np.ndarray) else losses
    if arr.dtype == object:
        _as_matrix(arr, name, -1)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a 2-d matrix tokens × models, got shape {arr.shape}")
    n, m = arr.shape
    meta = _check_metadata(dict(metadata or {}), n, name)

    def read(size):
        for start in range(0, n, size):
            stop = min(n, start + size)
            yield start, arr[start:stop], {k: v[start:stop] for k, v in meta.items()}

    return LossMatrix(name, n, m, read, x=x, axis=axis, metadata_names=tuple(meta),
                      extras=dict(extras or {}))


def _npy(path: Path) -> LossMatrix:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "object" in str(err).lower():
            raise InputError(f"{path}: ragged or non-numeric losses (an object array); the "
                             "matrix must be tokens × models with one loss in every cell") from None
        raise CorruptFileError(f"{path}: not a readable .npy file ({err})") from None
    return from_arrays(arr, name=str(path))


def _split_named(arrays: dict, name: str):
    """losses, x, axis, metadata, extras out of named arrays (npz members, zarr arrays)."""
    keys = list(arrays)
    if "losses" in arrays:
        losses = arrays["losses"]
    elif len(keys) == 1:
        losses = arrays[keys[0]]
    else:
        raise InputError(f"{name}: no array named 'losses' (arrays: {', '.join(keys)})")
    given = [a for a in AXES if a in arrays]
    if len(given) > 1:
        raise InputError(f"{name}: holds both sizes and steps; keep the one its columns are")
    axis = given[0] if given else None
    meta = {k: arrays[k] for k in METADATA if k in arrays}
    extras = {k: arrays[k] for k in keys if k.startswith("truth_")}
    if "generator_config" in arrays:
        extras["generator_config"] = json.loads(str(arrays["generator_config"][()]))
    return losses, (arrays[axis] if axis else None), axis, meta, extras


def _npz(path: Path) -> LossMatrix:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise InputError(f"{path}: ragged or non-numeric losses (an object array); the "
                             "matrix must be tokens × models with one loss in every cell") from None
        raise CorruptFileError(f"{path}: not a readable .npz file ({err})") from None
    except OSError as err:
        raise CorruptFileError(f"{path}: not a readable .npz file ({err})") from None
    losses, x, axis, meta, extras = _split_named(arrays, str(path))
    return from_arrays(losses, metadata=meta, name=str(path), x=x, axis=axis, extras=extras)


def _parquet(path: Path) -> LossMatrix:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise CorruptFileError(f"{path}: not a readable parquet file ({err})") from None
    schema = pf.schema_arrow
    meta_cols = [f.name for f in schema if f.name in METADATA]
    loss_cols = [f.name for f in schema if f.name not in METADATA]
    for f in schema:
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            raise InputError(f"{path}: column {f.name!r} holds lists (ragged losses); write "
                             "one column per model with one loss per row")
        if f.name in loss_cols and not (pa.types.is_floating(f.type) or pa.types.is_integer(f.type)):
            raise InputError(f"{path}: column {f.name!r} is {f.type}, not numeric; loss "
                             f"columns are every column but {', '.join(METADATA)}")
    if not loss_cols:
        raise InputError(f"{path}: no loss columns (only metadata: {', '.join(meta_cols)})")

    def read(size):
        start = 0
        for batch in pf.iter_batches(batch_size=size, columns=loss_cols + meta_cols):
            cols = [batch.column(c) for c in loss_cols]
            for c, col in zip(loss_cols, cols):
                if col.null_count:
                    row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                    raise InputError(f"{path}: the loss of token {start + row + 1}, column "
                                     f"{c!r}, is missing (null); per-token losses must be "
                                     "finite and >= 0")
            block = np.column_stack([col.to_numpy(zero_copy_only=False) for col in cols])
            meta = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in meta_cols}
            yield start, block, meta
            start += batch.num_rows

    return LossMatrix(str(path), pf.metadata.num_rows, len(loss_cols), read,
                      metadata_names=tuple(meta_cols), extras={"columns": loss_cols})


def _zarr(path: Path) -> LossMatrix:
    zarr = require("zarr", "tokens")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:   # zarr raises several types for an unreadable store
        raise CorruptFileError(f"{path}: not a readable zarr store ({type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if hasattr(node, "shape"):
        arrays = {"losses": node}
    else:
        arrays = {k: v for k, v in node.arrays()}
    losses, x, axis, meta, extras = _split_named(arrays, str(path))
    if losses.ndim != 2:
        raise InputError(f"{path}: expected a 2-d matrix tokens × models, got shape {losses.shape}")
    n, m = losses.shape
    meta = _check_metadata({k: v[:] for k, v in meta.items()}, n, str(path))
    extras = {k: (v[:] if hasattr(v, "shape") else v) for k, v in extras.items()}

    def read(size):
        for start in range(0, n, size):
            stop = min(n, start + size)
            yield start, losses[start:stop], {k: v[start:stop] for k, v in meta.items()}

    return LossMatrix(str(path), n, m, read, x=None if x is None else x[:], axis=axis,
                      metadata_names=tuple(meta), extras=extras)


def open_losses(path, *, metadata=None) -> LossMatrix:
    """Open a per-token loss matrix file (.npy, .npz, .parquet/.pq, .zarr) for chunked
    reading. ``metadata``: optional name → array (one value per token) added to the
    file's own."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    readers = {".npy": _npy, ".npz": _npz, ".parquet": _parquet, ".pq": _parquet,
               ".zarr": _zarr}
    if suffix not in readers:
        raise InputError(f"{path}: unknown format {suffix!r}; use .npy, .npz, .parquet or .zarr")
    matrix = readers[suffix](path)
    if metadata:
        matrix = with_metadata(matrix, metadata)
    return matrix


def with_metadata(matrix: LossMatrix, metadata: dict) -> LossMatrix:
    """The same matrix with extra per-token metadata arrays (checked for length)."""
    extra = _check_metadata(dict(metadata), matrix.n_tokens, matrix.name)
    clash = set(extra) & set(matrix.metadata_names)
    if clash:
        raise InputError(f"{matrix.name}: metadata {sorted(clash)} given twice")
    inner = matrix.read

    def read(size):
        for start, block, meta in inner(size):
            stop = start + len(block)
            yield start, block, {**meta, **{k: v[start:stop] for k, v in extra.items()}}

    return dataclasses.replace(matrix, read=read,
                               metadata_names=matrix.metadata_names + tuple(extra))


def read_metadata(path) -> dict:
    """Per-token metadata from a file: npz arrays or parquet columns of the names in
    ``METADATA`` (other names are refused)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as data:
            table = {k: data[k] for k in data.files}
    elif path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        data = pq.read_table(path)
        table = {c: data.column(c).to_numpy() for c in data.column_names}
    else:
        raise InputError(f"{path}: metadata must be .npz or .parquet")
    unknown = sorted(set(table) - set(METADATA))
    if unknown:
        raise InputError(f"{path}: unknown metadata {unknown}; known: {', '.join(METADATA)}")
    return table
