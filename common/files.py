"""Writing files so that nothing is ever lost or half-written: the one atomic writer, the
clean-up of what a killed writer left, several outputs committed together, and a lock per
run folder.

- :func:`atomic_write` writes through a temporary file in the same folder
  (``.NAME.PID.XXXXXXXX.tmp``), fsyncs it and renames it over ``NAME``.
- :func:`clean_stale` removes the temporary files and folders of writers that no longer run
  (the PID in their name is dead; untagged ones older than an hour) and completes a commit
  that a kill interrupted between its renames (roll-forward from its journal). Every write
  cleans its own folder's leftovers of the name it writes.
- :class:`Commit` stages files (and whole folders) under temporary names and puts them all
  in place at the end, so that a kill leaves the old set or the new one.
- :class:`FolderLock` is an advisory lock (``flock``) on ``FOLDER/.quanta.lock``, which
  records who holds it; a lock file left by a killed holder is reported and taken over.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common.errors import InputError

#: a temporary name: ``.NAME.PID.XXXXXXXX.tmp`` (PID absent in files of older versions)
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?(?P<rand>[a-z0-9_]{8})\.tmp$")
#: untagged temporary files older than this (seconds) are stale
UNTAGGED_STALE_S = 3600.0
#: the journal of a commit in progress, in the folder of its first output
JOURNAL_PATTERN = re.compile(r"^\.quanta-commit\.(?P<pid>\d+)\.[a-z0-9_]{8}\.json$")
LOCK_NAME = ".quanta.lock"


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's process counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _is_stale(path: Path, pid: str | None) -> bool:
    if pid is not None:
        return not pid_alive(int(pid))
    try:
        return time.time() - path.lstat().st_mtime > UNTAGGED_STALE_S
    except FileNotFoundError:
        return False


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def clean_stale(folder, name: str | None = None) -> list[Path]:
    """Remove from ``folder`` the temporary files and folders (of ``name`` only, if given)
    that writers which no longer run left behind, after completing any commit they had
    journaled; returns what was removed. Never touches a live writer's files."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = JOURNAL_PATTERN.match(entry.name)
        if m and not pid_alive(int(m["pid"])):
            _roll_forward(Path(entry.path))
    removed = []
    for entry in entries:
        m = TEMP_PATTERN.match(entry.name)
        if not m or (name is not None and m["name"] != name):
            continue
        path = Path(entry.path)
        if path.exists() and _is_stale(path, m["pid"]):
            _remove(path)
            removed.append(path)
    return removed


def atomic_write(path, data) -> Path:
    """Write ``data`` (bytes, or a callable that writes into a binary file) to ``path``
    through a temporary file in the same folder, fsync and ``os.replace``: a killed process
    never leaves a half-written file behind, and the next write of ``path`` removes the
    temporary file it left. The file gets the usual umask permissions."""
    path = Path(path)
    tmp = _stage_file(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _check_target(path: Path, folder: bool = False) -> None:
    """Refuse a folder where a file should go (``folder`` False), and a file where a folder
    should be (``path`` itself when ``folder``, or a parent), naming the path (an OSError,
    as the file system would)."""
    if not folder and path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))
    for parent in ([path] if folder else []) + list(path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder",
                                         str(parent))
            return


def _stage_file(path: Path, data) -> Path:
    """``data`` written and fsynced under a temporary name beside ``path``; returns it."""
    _check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            data(fh) if callable(data) else fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _remove(Path(tmp))
        raise
    return Path(tmp)


def _fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _put(tmp: Path, final: Path) -> None:
    """Move a staged file or folder into place; a folder replaces the old one whole (moved
    aside under a temporary name, then removed)."""
    if not tmp.exists():               # already put in place (a roll-forward)
        return
    if tmp.is_dir() and final.exists():
        aside = final.parent / f"{_temp_prefix(final.name)}{secrets.token_hex(4)}.tmp"
        os.rename(final, aside)
        os.rename(tmp, final)
        _remove(aside)
    else:
        os.replace(tmp, final)


def _roll_forward(journal: Path) -> None:
    """Complete the commit ``journal`` describes (every staged output was whole before the
    journal was written), then remove the journal."""
    try:
        pairs = json.loads(journal.read_text())["outputs"]
    except (OSError, ValueError, KeyError, TypeError):   # written atomically: never partial
        return
    for tmp, final in pairs:
        _put(Path(tmp), Path(final))
    _remove(journal)


class Commit:
    """Outputs written under temporary names and put in place together by :meth:`commit`:
    a kill before it leaves the old set (the next write there removes the temporary files),
    a kill during its renames is completed by the next :func:`clean_stale` of that folder
    (its journal lists them). As a context manager: commit on success, discard on error."""

    def __init__(self):
        self.staged: list[tuple[Path, Path]] = []

    def file(self, path, data) -> Path:
        """Stage ``data`` (bytes or a writer callable) for ``path``; returns ``path``."""
        path = Path(path)
        self._forget(path)
        self.staged.append((_stage_file(path, data), path))
        return path

    def folder(self, path) -> Path:
        """A new empty folder to fill, which replaces ``path`` whole on commit."""
        path = Path(path)
        _check_target(path, folder=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(path.parent, path.name)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path.name),
                                    suffix=".tmp"))
        self._forget(path)
        self.staged.append((tmp, path))
        return tmp

    def _forget(self, path: Path) -> None:
        """A second output to the same path replaces the first one staged."""
        for tmp, final in [s for s in self.staged if s[1] == path]:
            _remove(tmp)
            self.staged.remove((tmp, final))

    def commit(self) -> None:
        """Put every staged output in place (a journal covers the renames)."""
        if not self.staged:
            return
        journal = None
        if len(self.staged) > 1 or any(tmp.is_dir() for tmp, _ in self.staged):
            folder = self.staged[0][1].parent
            journal = folder / f".quanta-commit.{os.getpid()}.{secrets.token_hex(4)}.json"
            text = json.dumps({"outputs": [[str(t.resolve()), str(f.resolve())]
                                           for t, f in self.staged]})
            atomic_write(journal, text.encode())
        for tmp, final in self.staged:
            _put(tmp, final)
        for folder in {f.parent for _, f in self.staged}:
            _fsync_dir(folder)
        if journal is not None:
            _remove(journal)
        self.staged = []

    def abort(self) -> None:
        """Discard every staged output."""
        for tmp, _ in self.staged:
            _remove(tmp)
        self.staged = []

    def __enter__(self) -> "Commit":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# ------------------------------------------------------------------------------ locks
class LockedError(InputError):
    """A folder another process holds the lock of (names the holder)."""


def check_unlocked(folder) -> None:
    """Refuse to read ``folder`` while another process holds its lock (a run being trained
    or exported into); a lock file left by a killed holder does not count."""
    import fcntl

    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise LockedError(f"{folder} is in use by {_holder_text(_read_lock(fd))}: wait for "
                          "it to finish") from None
    finally:
        os.close(fd)


def _holder_text(info: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return (f"PID {info.get('pid', '?')} on {info.get('host', '?')} "
            f"({info.get('purpose', '?')}, since {since})")


class FolderLock:
    """An exclusive advisory lock on ``folder`` (``folder/.quanta.lock``, created with the
    folder if needed), held by train, resume and export. The lock is the ``flock`` of the
    file, so the operating system drops it when its holder dies; the file's contents (PID,
    host, purpose, start) name the holder in the refusal. A file found unlocked but not
    empty was left by a holder that was killed: it is taken over with a warning (``stale``
    holds what it said); one written on another host is refused, since the lock may not
    reach across machines. A folder the lock created is removed on release if it is still
    empty (a refused command leaves no trace)."""

    def __init__(self, folder, purpose: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.purpose = purpose or " ".join(["quanta", *sys.argv[1:3]])
        self.stale: dict | None = None
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> "FolderLock":
        import fcntl

        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.folder}: is a file; give a folder")
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                info = _read_lock(fd)
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise LockedError(f"{self.folder} is in use by {_holder_text(info)}: wait "
                                  "for it to finish, or stop it first") from None
            if _same_file(fd, self.path):   # not unlinked by a holder releasing meanwhile
                break
            os.close(fd)
        self._fd = fd
        self._take_over(_read_lock(fd))
        record = dict(pid=os.getpid(), host=socket.gethostname(), purpose=self.purpose,
                      started=time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        return self

    def _take_over(self, info: dict) -> None:
        """Report (and take over) a lock file its killed holder left; refuse one of another
        host."""
        if not info:
            return
        if info.get("host") not in (None, socket.gethostname()):
            os.close(self._fd)       # leave that machine's lock file alone
            self._fd = None
            raise LockedError(f"{self.folder} holds a lock of {_holder_text(info)}, another "
                              f"machine: if nothing runs there any more, delete {self.path}")
        self.stale = info
        warnings.warn(f"{self.folder}: a stale lock of {_holder_text(info)} was found (that "
                      "process no longer runs: it was killed); taking it over", stacklevel=3)
        clean_stale(self.folder)
        for sub in self.folder.iterdir():
            if sub.is_dir() and not sub.name.startswith("."):
                clean_stale(sub)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if _same_file(self._fd, self.path):
                self.path.unlink()
        os.close(self._fd)       # closing drops the flock
        self._fd = None
        if self._created:
            with contextlib.suppress(OSError):     # not empty: kept
                self.folder.rmdir()

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_lock(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?", "purpose": "unreadable lock file"}


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
