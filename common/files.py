"""Atomic file writes: the one writer every layer and the command line use."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path, data) -> Path:
    """Write ``data`` (bytes, or a callable that writes into a binary file) to ``path``
    through a temporary file in the same folder, fsync and ``os.replace``: a killed process
    never leaves a half-written file behind. The file gets the usual umask permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            data(fh) if callable(data) else fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
