"""Deprecated: the atomic writer moved to :mod:`common.files` (kept for one release)."""
from common.files import atomic_write  # noqa: F401
