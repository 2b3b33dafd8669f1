"""The project's exception types.

The command line catches :class:`QuantaError` and prints its first line (exit status
``exit_status``: 2 for bad input, 1 for a run that failed); any other exception is a bug and
keeps its traceback. :class:`InputError` is also a ``ValueError``, so Python callers who
catch ``ValueError`` for bad arguments keep working.
"""
from __future__ import annotations


class QuantaError(Exception):
    """An expected failure, reported to the user in one line."""

    exit_status = 2


class InputError(QuantaError, ValueError):
    """A bad argument, a bad or missing input file, an output path that cannot be used."""


class CorruptFileError(InputError):
    """A file that exists but cannot be read as what it should be (names the file)."""


class ResourceError(InputError):
    """A request that would exceed the machine's memory or a sensible time, refused
    before anything is allocated."""


class MissingExtraError(QuantaError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class RunError(QuantaError, RuntimeError):
    """A run that started and failed (e.g. training diverged): exit status 1."""

    exit_status = 1


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{module} is not installed: pip install 'quanta[{extra}]'") from None
