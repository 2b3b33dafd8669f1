"""Input validation shared by the theory modules: every bad argument raises a
``ValueError`` whose message names the argument."""
from __future__ import annotations

import math
import numbers

import numpy as np

from common.errors import InputError


def check_alpha(alpha, name: str = "alpha") -> float:
    """α as a finite float > 0."""
    return check_positive(alpha, name)


def check_tau(tau) -> int:
    """τ as an int ≥ 1 (a number of occurrences)."""
    try:
        value = float(tau)
    except (TypeError, ValueError):
        raise InputError(f"tau must be an integer >= 1, got {tau!r}") from None
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise InputError(f"tau must be an integer >= 1, got {tau!r}")
    return int(value)


def check_K(K) -> int | None:
    """K as None (infinitely many quanta) or an int ≥ 1."""
    if K is None:
        return None
    if isinstance(K, bool) or not isinstance(K, (numbers.Real, np.integer)):
        raise InputError(f"K must be None (infinite) or an integer >= 1, got {K!r}")
    value = float(K)
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise InputError(f"K must be None (infinite) or an integer >= 1, got {K!r}")
    return int(value)


def check_positive(value, name: str) -> float:
    """A finite scalar > 0 (C, batch)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_sizes(x, name: str) -> np.ndarray:
    """Sizes (n, N, D, S, k) as a float array of finite values ≥ 0."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers >= 0, got {x!r}") from None
    if arr.size and (np.isnan(arr).any() or not np.isfinite(arr).all()):
        raise InputError(f"{name} must be finite numbers >= 0 (got NaN or inf)")
    if arr.size and (arr < 0).any():
        raise InputError(f"{name} must be >= 0, got {arr[arr < 0].flat[0]!r}")
    return arr


def check_rule(rule) -> str:
    """The step rule: 'samples' or 'steps'."""
    if rule not in ("samples", "steps"):
        raise InputError(f"rule must be 'samples' or 'steps', got {rule!r}")
    return rule


def finish(arr):
    """A 0-d result as a Python float, otherwise the array."""
    arr = np.asarray(arr, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def broadcast(**arrays):
    """Broadcast named arrays together; a shape mismatch names the arguments."""
    try:
        return np.broadcast_arrays(*arrays.values())
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items())
        raise InputError(f"{' and '.join(arrays)} must broadcast together, got shapes {shapes}") from None
