"""The result protocol: one idiom for every result the toolkit returns.

After statsmodels' results and lmfit's ``ModelResult``, every result type has

- ``params``: the estimates, name → value (a mapping of floats, or a pandas Series);
- ``conf_int(alpha=0.05)``: a table (pandas DataFrame) with one row per estimate that has
  an interval and the columns ``lower`` and ``upper``, at confidence level 1 − alpha;
- ``summary()``: a text report;
- ``to_dict()``: plain JSON-ready types (what ``--json`` writes);
- ``plot(ax=None)`` where a picture exists, returning the Axes.

Estimators (scikit-learn's contract: hyperparameters in ``__init__``, learned state with a
trailing underscore, ``fit`` returns ``self``) are not results; what they estimate is.

A subclass of :class:`Result` implements ``_bounds(level)`` (name → (low, high)), and
``conf_int`` turns it into the table; ``alpha`` defaults to 1 − the result's own ``level``
where it has one. ``conf_int(level=…)``, the old spelling, still works for one release with
a ``DeprecationWarning``; a positional ``conf_int(0.95)`` (the old spelling of a 95 %
interval) is refused rather than read as a 5 % one. The protocol test,
tests/test_result_protocol.py, holds a factory for every result type.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any, Mapping


def check_alpha_level(alpha) -> float:
    """The significance level of an interval: a float strictly between 0 and 1."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = math.nan
    if not 0.0 < a < 1.0:
        from common.errors import InputError

        raise InputError(f"alpha (1 − confidence level) must be in (0, 1), got {alpha!r}")
    return a


def interval_table(bounds: Mapping[str, tuple[float, float]]):
    """name → (low, high) as the protocol's table: a DataFrame indexed by name with the
    columns ``lower`` and ``upper`` (float). An estimate whose interval is missing (None,
    or a NaN end: e.g. every bootstrap refit failed) has no row; infinite ends are kept."""
    import pandas as pd

    rows = {str(k): (float(v[0]), float(v[1])) for k, v in bounds.items()
            if v is not None and not (math.isnan(float(v[0])) or math.isnan(float(v[1])))}
    return pd.DataFrame({"lower": [lo for lo, _ in rows.values()],
                         "upper": [hi for _, hi in rows.values()]},
                        index=pd.Index(list(rows), name="param", dtype=object), dtype=float)


def percentile_interval(samples, level: float) -> tuple[float, float]:
    """The equal-tailed percentile interval at ``level`` of the finite bootstrap samples
    ((NaN, NaN) when none is finite)."""
    import numpy as np

    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return (math.nan, math.nan)
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(s, [tail, 100.0 - tail])
    return (float(lo), float(hi))


class Result:
    """Base of every result type (see the module docstring for the protocol).

    A result made at a confidence level (a ``level`` attribute, e.g. a fit run with
    ``level=0.9``) uses it as ``conf_int``'s default; otherwise the default is 95 %.
    """

    def _bounds(self, level: float, **kwargs) -> Mapping[str, tuple[float, float]]:
        raise NotImplementedError

    def conf_int(self, alpha: float | None = None, *, level: float | None = None, **kwargs):
        """Confidence intervals at level 1 − ``alpha``: a DataFrame (rows: the estimates
        that have an interval; columns ``lower``, ``upper``). ``alpha`` defaults to 1 − the
        result's own ``level`` (0.05 without one). Extra keywords go to the type's interval
        method (e.g. ``method="bca"`` for a bootstrap).

        ``alpha`` above 0.5 is refused: ``conf_int(0.95)``, the old spelling of a 95 %
        interval, would otherwise silently give a 5 % one.
        """
        return interval_table(self._bounds(1.0 - self._alpha(alpha, level), **kwargs))

    def _alpha(self, alpha, level, stacklevel: int = 3) -> float:
        """``alpha`` checked, from the deprecated ``level`` (with a warning attributed
        ``stacklevel`` frames up: the caller of ``conf_int``) or the result's default."""
        from common.errors import InputError

        if level is not None:
            if alpha is not None:
                raise InputError("conf_int: give alpha or the deprecated level, not both")
            warnings.warn("conf_int(level=...) is deprecated: use conf_int(alpha=1 - level)",
                          DeprecationWarning, stacklevel=stacklevel)
            alpha = 1.0 - float(level)
        if alpha is None:
            alpha = 1.0 - float(getattr(self, "level", None) or 0.95)
        alpha = check_alpha_level(alpha)
        if alpha > 0.5:
            raise InputError(f"alpha={alpha:g} asks for a {1 - alpha:.0%} interval: conf_int "
                             f"takes alpha = 1 − level (for a {alpha:.0%} interval pass "
                             f"alpha={1 - alpha:.2g})")
        return alpha

    def summary(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.summary()


def jsonable(obj: Any) -> Any:
    """Numpy scalars/arrays, pandas objects, dataclasses and paths as plain JSON types;
    non-finite floats become ``None`` so the output is strict JSON."""
    if hasattr(obj, "to_dict") and not isinstance(obj, (dict, type)) and \
            type(obj).__module__.split(".")[0] in ("pandas",):
        return jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if type(obj).__module__ == "numpy":
        if hasattr(obj, "tolist"):
            return jsonable(obj.tolist())
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj
