"""``analyze``: the whole per-token analysis of one loss matrix, streamed in chunks."""
from __future__ import annotations

import dataclasses
import warnings as _warnings

import numpy as np

from common.errors import InputError
from fit.tokens.curves import calibrate, design, fit_curves
from fit.tokens.io import LossMatrix, check_axis, from_arrays, open_losses, with_metadata
from fit.tokens.result import TokenAnalysis
from fit.tokens.stream import Pass2, accumulate, scan


@dataclasses.dataclass(frozen=True)
class TokenOptions:
    """The analysis' settings (saved with every result).

    ``threshold``: the loss below which a token counts as solved (default 0.1 × the mean
    loss of the last column); ``floor``: added before taking logs of a curve (default 0.05 ×
    that mean, so that near-zero losses do not dominate); ``min_log_drop``: the least fall,
    in ln(L + floor), of a sharp or gradual token; ``false_alarm``: the calibrated rate of
    step-free curves called sharp; ``unit``: what the bootstrap resamples ("document" when
    the matrix has document ids, else "token"); ``groups``: buckets the units are hashed into.
    """
    bootstrap: int = 1000
    fit_bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95
    unit: str | None = None
    threshold: float | None = None
    floor: float | None = None
    min_log_drop: float = 1.0
    false_alarm: float = 0.01
    smooth: float = 0.1
    groups: int = 1 << 12
    chunk_size: int = 1 << 18
    n_calibration: int = 20_000
    n_examples: int = 6
    n_heatmap: int = 300
    n_order: int = 200_000


def _matrix(losses, metadata) -> LossMatrix:
    if isinstance(losses, LossMatrix):
        matrix = losses
        return with_metadata(matrix, metadata) if metadata else matrix
    if isinstance(losses, np.ndarray) or isinstance(losses, (list, tuple)):
        return from_arrays(losses, metadata=metadata)
    return open_losses(losses, metadata=metadata)


def _axis(matrix: LossMatrix, sizes, steps):
    if sizes is not None and steps is not None:
        raise InputError("give --sizes (a model family) or --steps (checkpoints), not both")
    axis, x = ("sizes", sizes) if sizes is not None else ("steps", steps)
    if x is None:
        if matrix.x is None:
            raise InputError(f"{matrix.name}: no sizes or steps in the file; give the models' "
                             "parameter counts (--sizes) or the checkpoints' steps (--steps)")
        axis, x = matrix.axis, matrix.x
    elif matrix.x is not None:
        given = check_axis(x, matrix.n_columns, axis, matrix.name)
        if axis != matrix.axis or not np.allclose(given, matrix.x, rtol=1e-9):
            raise InputError(f"{matrix.name}: the file's {matrix.axis} differ from the "
                             f"{axis} given; leave them out or make them agree")
    return axis, check_axis(x, matrix.n_columns, axis, matrix.name)


def _options(options: TokenOptions | None, overrides) -> TokenOptions:
    opts = dataclasses.replace(options or TokenOptions(), **overrides)
    for name in ("bootstrap", "fit_bootstrap"):
        if not isinstance(getattr(opts, name), (int, np.integer)) or getattr(opts, name) < 0:
            raise InputError(f"{name} must be an integer >= 0, got {getattr(opts, name)!r}")
    if opts.bootstrap < 2:
        raise InputError("bootstrap: need at least 2 resamples for an interval")
    if not 0 < opts.level < 1:
        raise InputError(f"level must lie in (0, 1), got {opts.level!r}")
    if opts.unit not in (None, "document", "token"):
        raise InputError(f"unit must be 'document' or 'token', got {opts.unit!r}")
    for name in ("threshold", "floor"):
        v = getattr(opts, name)
        if v is not None and not (np.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive loss, got {v!r}")
    if opts.groups < 2 or opts.groups & (opts.groups - 1):
        raise InputError(f"groups must be a power of two >= 2, got {opts.groups!r}")
    if opts.chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {opts.chunk_size!r}")
    return opts


def analyze(losses, *, sizes=None, steps=None, metadata=None,
            options: TokenOptions | None = None, **overrides) -> TokenAnalysis:
    """Analyse a per-token loss matrix (tokens × models of increasing ``sizes``, or × the
    checkpoints at increasing ``steps`` of one model).

    ``losses``: a file (.npy, .npz, .parquet, .zarr; see ``fit.tokens.io``), an array or a
    ``LossMatrix``; ``metadata``: name → per-token array (``document``, ``token``,
    ``position``, ``frequency``, ``group``). ``options`` (or keywords of
    :class:`TokenOptions`) tune it. Two passes over the matrix in chunks; memory does not
    grow with the number of tokens.
    """
    matrix = _matrix(losses, metadata)
    axis, x = _axis(matrix, sizes, steps)
    opts = _options(options, overrides)
    unit = opts.unit or ("document" if "document" in matrix.metadata_names else "token")
    if unit == "document" and "document" not in matrix.metadata_names:
        raise InputError("unit 'document' needs document ids (metadata 'document')")
    d = design(x, opts.smooth)
    first = scan(matrix, opts.chunk_size, opts.n_calibration, opts.seed)
    last_mean = float(first.col_mean[-1])
    floor = opts.floor or max(0.05 * last_mean, 1e-12)
    threshold = opts.threshold or max(0.1 * last_mean, 1e-12)
    sample = fit_curves(first.sample["losses"], d, floor)
    cal = calibrate(d, sample.slope, sample.noise, target=opts.false_alarm,
                    min_log_drop=opts.min_log_drop, n_null=opts.n_calibration, seed=opts.seed)
    settings = Pass2(d, floor, threshold, cal.threshold, opts.min_log_drop, unit, opts.groups,
                     opts.n_examples, opts.n_heatmap, opts.n_order, float(first.col_max.max()))
    truth = _truth_arrays(matrix)
    totals = accumulate(matrix, settings, opts.chunk_size, opts.seed, truth)
    from fit.tokens.report import build

    return build(matrix, axis, x, opts, unit, first, totals, cal, settings)


def _truth_arrays(matrix: LossMatrix) -> dict | None:
    """The generator's per-token truth, when the file carries it."""
    ex = matrix.extras
    if "truth_kind" not in ex or "truth_emergence" not in ex:
        return None
    return {"kind": ex["truth_kind"], "emergence": ex["truth_emergence"]}


def fit_mean_loss(x, mean, form: str, bootstrap: int, seed, level: float):
    """``fit.fit`` of the mean loss (its own pairs bootstrap over the columns), with fit's
    small-sample warnings kept in the result rather than printed."""
    import fit

    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        return fit.fit(form, x, mean, bootstrap=bootstrap, seed=seed, level=level)


def fit_interval(result, name: str, level: float) -> tuple[float, float]:
    """(lower, upper) of ``name`` from a ``fit.FitResult``, whether its ``conf_int`` is
    the result protocol's (``alpha=`` → a table with columns lower/upper) or the older
    one (``level`` → name → (low, high)). The one place to adapt when FitResult changes."""
    try:
        table = result.conf_int(alpha=1.0 - level)
    except TypeError:
        table = result.conf_int(level)
    if hasattr(table, "loc"):
        return float(table.loc[name, "lower"]), float(table.loc[name, "upper"])
    low, high = table[name]
    return float(low), float(high)


