"""Resource checks made before anything big is allocated or started: a request that needs
more memory than the machine has available, or (estimated) more time than
``TIME_LIMIT_S``, is refused with a :class:`~common.errors.ResourceError` that says how
much and what to lower. Where a big run is intended, :func:`allow_large` (the command
line's ``--allow-large``) lifts both refusals.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import warnings
from pathlib import Path

from common.errors import ResourceError

#: longer estimated runs are refused unless large runs are allowed (seconds)
TIME_LIMIT_S = 600.0
#: longer estimated runs say so before they start (seconds)
NOTICE_S = 30.0
#: the share of the available memory one request may take
MEMORY_SHARE = 0.9

_ALLOW_LARGE = contextvars.ContextVar("quanta_allow_large", default=False)


@contextlib.contextmanager
def allow_large(allow: bool = True):
    """Within this block, requests above the memory or time limits are not refused."""
    token = _ALLOW_LARGE.set(bool(allow))
    try:
        yield
    finally:
        _ALLOW_LARGE.reset(token)


def large_allowed() -> bool:
    return _ALLOW_LARGE.get()


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """What the cgroup (v2) limit of this process leaves, where one is set."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory this process can still take (the machine's available memory, or its
    container's limit if lower); None where it cannot be told."""
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(values) if values else None


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000.0
    return f"{n:.3g} PB"


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 2 * 86400:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} days"


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse ``what`` if it needs more than ``MEMORY_SHARE`` of the available memory:
    "``what`` needs about X of memory, more than the Y available here; ``fix``"."""
    if large_allowed():
        return
    avail = available_memory()
    if avail is not None and nbytes > MEMORY_SHARE * avail:
        raise ResourceError(f"{what} needs about {human_bytes(nbytes)} of memory, more than "
                            f"the {human_bytes(avail)} available here; {fix} (or pass "
                            "--allow-large if the machine can page it)")


def check_seconds(seconds: float, what: str, fix: str) -> None:
    """Refuse ``what`` if it is estimated to take longer than ``TIME_LIMIT_S``; say how
    long it will take if that is more than ``NOTICE_S`` (a warning), so that a long
    computation is never a silent wait."""
    if seconds > NOTICE_S and (large_allowed() or seconds <= TIME_LIMIT_S):
        warnings.warn(f"{what}: about {human_seconds(seconds)} to compute", stacklevel=3)
    if large_allowed() or not seconds > TIME_LIMIT_S:
        return
    raise ResourceError(f"{what} would take about {human_seconds(seconds)} here (more than "
                        f"{human_seconds(TIME_LIMIT_S)}); {fix}, or pass --allow-large to "
                        "run it (it shows its progress)")
