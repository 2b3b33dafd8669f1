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
``conf_int`` turns it into the table. ``conf_int(level=…)``, the old spelling, still works
for one release with a ``DeprecationWarning``.
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
    columns ``lower`` and ``upper`` (float)."""
    import pandas as pd

    names = list(bounds)
    return pd.DataFrame({"lower": [float(bounds[k][0]) for k in names],
                         "upper": [float(bounds[k][1]) for k in names]},
                        index=pd.Index(names, name="param"))


class Result:
    """Base of every result type (see the module docstring for the protocol)."""

    def _bounds(self, level: float, **kwargs) -> Mapping[str, tuple[float, float]]:
        raise NotImplementedError

    def conf_int(self, alpha: float = 0.05, *, level: float | None = None, **kwargs):
        """Confidence intervals at level 1 − ``alpha``: a DataFrame (rows: estimates;
        columns ``lower``, ``upper``). Extra keywords go to the type's interval method
        (e.g. ``method="bca"`` for a bootstrap)."""
        if level is not None:
            warnings.warn("conf_int(level=...) is deprecated: use conf_int(alpha=1 - level)",
                          DeprecationWarning, stacklevel=2)
            alpha = 1.0 - float(level)
        return interval_table(self._bounds(1.0 - check_alpha_level(alpha), **kwargs))

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
