"""common.files: the atomic writer cleans what killed writers left, outputs committed
together survive a kill at every sync and rename as the old set or the new one, and a
folder lock refuses a second holder, names it, and takes over the lock of a killed one."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from common.files import (TEMP_PATTERN, Commit, FolderLock, LockedError, atomic_write,
                          check_unlocked, clean_stale)

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *args, wait=True, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    cmd = [sys.executable, "-c", textwrap.dedent(code), *map(str, args)]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, **kw)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kw)


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    return int(proc.stdout)


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------ stale temps
def test_temporary_names_carry_the_writer_pid(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        real(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    atomic_write(tmp_path / "metrics.npz", b"x")
    m = TEMP_PATTERN.match(seen[0])
    assert m and m["name"] == "metrics.npz" and int(m["pid"]) == os.getpid()


def test_a_write_removes_what_a_killed_writer_left_and_keeps_live_ones(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".out.json.{dead}.abcd1234.tmp"
    live = tmp_path / f".out.json.{alive}.efgh5678.tmp"
    other = tmp_path / f".other.json.{dead}.ijkl9012.tmp"       # another name: not ours
    old_untagged = tmp_path / ".out.json.mnop3456.tmp"         # an older version's file
    young_untagged = tmp_path / ".out.json.qrst7890.tmp"
    staged_dir = tmp_path / f".out.json.{dead}.uvwx1234.tmp"
    for p in (stale, live, other, old_untagged, young_untagged):
        p.write_bytes(b"half")
    staged_dir.mkdir()
    (staged_dir / "inner").write_bytes(b"half")
    hour_ago = time.time() - 7200
    os.utime(old_untagged, (hour_ago, hour_ago))
    atomic_write(tmp_path / "out.json", b"{}")
    assert _temps(tmp_path) == sorted([live.name, other.name, young_untagged.name])
    assert clean_stale(tmp_path) == [tmp_path / other.name]     # any name when none given
    assert (tmp_path / "out.json").read_bytes() == b"{}"


def test_a_folder_where_a_file_goes_is_named(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("")
    with pytest.raises(IsADirectoryError) as err:
        atomic_write(tmp_path / "d", b"x")
    assert err.value.filename == str(tmp_path / "d")
    with pytest.raises(NotADirectoryError) as err:
        atomic_write(tmp_path / "f" / "x.json", b"x")
    assert err.value.filename == str(tmp_path / "f")


# ------------------------------------------------------------------------ commits
def test_a_commit_puts_every_output_in_place_or_none(tmp_path):
    (tmp_path / "a.json").write_text("old a")
    with pytest.raises(RuntimeError):
        with Commit() as c:
            c.file(tmp_path / "a.json", b"new a")
            c.file(tmp_path / "b.png", b"new b")
            raise RuntimeError("the command failed after staging")
    assert (tmp_path / "a.json").read_text() == "old a" and not (tmp_path / "b.png").exists()
    assert _temps(tmp_path) == []
    with Commit() as c:
        c.file(tmp_path / "a.json", b"new a")
        c.file(tmp_path / "b.png", b"new b")
        c.file(tmp_path / "a.json", b"newer a")                 # the last one wins
    assert (tmp_path / "a.json").read_text() == "newer a"
    assert (tmp_path / "b.png").read_text() == "new b" and _temps(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_commit_replaces_the_old_folder_whole(tmp_path):
    dest = tmp_path / "run"
    dest.mkdir()
    (dest / "old_only.pt").write_text("old")
    with Commit() as c:
        staged = c.folder(dest)
        (staged / "config.json").write_text("new")
        assert not (dest / "config.json").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


#: a command that commits a JSON file and a figure together, killed (os._exit) at its
#: K-th file sync or rename when K > 0
COMMIT_SCRIPT = """
import os, sys
from pathlib import Path
from common.files import Commit
folder, tag, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
calls = [0]
def counting(real):
    def call(*a, **kw):
        calls[0] += 1
        if calls[0] == kill_at:
            os._exit(137)
        return real(*a, **kw)
    return call
os.fsync, os.replace, os.rename = (counting(f) for f in (os.fsync, os.replace, os.rename))
with Commit() as c:
    c.file(folder / "result.json", tag.encode())
    c.file(folder / "figure.png", tag.encode())
    sub = c.folder(folder / "export")
    (sub / "data.bin").write_bytes(tag.encode())
print(calls[0])
"""


def _state(folder: Path) -> tuple:
    return tuple((folder / n).read_text() if (folder / n).exists() else None
                 for n in ("result.json", "figure.png", "export/data.bin"))


def test_a_kill_at_any_sync_or_rename_leaves_the_old_set_or_the_new_one(tmp_path):
    res = _python(COMMIT_SCRIPT, tmp_path / "count", "new", 0)
    assert res.returncode == 0, res.stderr
    n_calls = int(res.stdout)
    assert n_calls >= 8            # 3 staged syncs, the journal, 4 renames and more
    outcomes = set()
    for k in range(1, n_calls + 1):
        folder = tmp_path / f"kill{k}"
        assert _python(COMMIT_SCRIPT, folder, "old", 0).returncode == 0
        res = _python(COMMIT_SCRIPT, folder, "new", k)
        assert res.returncode == 137, (k, res.stderr)
        clean_stale(folder)        # what the next write into the folder does first
        state = _state(folder)
        assert state in {("old",) * 3, ("new",) * 3}, (k, state)
        outcomes.add(state[0])
        leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert leftovers == [], (k, leftovers)
    assert outcomes == {"old", "new"}   # kills before the journal roll back, after it forward


# ------------------------------------------------------------------------ locks
HOLD_SCRIPT = """
import sys, time
from common.files import FolderLock
with FolderLock(sys.argv[1], "quanta parity train (test)"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_holder_is_refused_with_the_first_ones_name(tmp_path):
    proc = _python(HOLD_SCRIPT, tmp_path / "run", wait=False)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockedError) as err:
            FolderLock(tmp_path / "run").acquire()
        msg = str(err.value)
        assert f"PID {proc.pid}" in msg and "quanta parity train (test)" in msg
        with pytest.raises(LockedError):
            check_unlocked(tmp_path / "run")
    finally:
        proc.kill()
        proc.wait()
    # the kill dropped the flock: the stale lock file is reported and taken over
    check_unlocked(tmp_path / "run")
    with pytest.warns(UserWarning, match=f"stale lock of PID {proc.pid}"):
        lock = FolderLock(tmp_path / "run", "second").acquire()
    assert lock.stale["pid"] == proc.pid
    record = json.loads((tmp_path / "run" / ".quanta.lock").read_text())
    assert record["pid"] == os.getpid() and record["purpose"] == "second"
    lock.release()
    assert not (tmp_path / "run" / ".quanta.lock").exists()


def test_a_lock_of_another_machine_is_refused_and_left_alone(tmp_path):
    (tmp_path / ".quanta.lock").write_text(json.dumps(
        {"pid": 1, "host": "elsewhere.example", "purpose": "quanta parity train", "started": 0}))
    with pytest.raises(LockedError, match="another machine"):
        FolderLock(tmp_path).acquire()
    assert "elsewhere.example" in (tmp_path / ".quanta.lock").read_text()


def test_a_released_lock_leaves_the_folder_as_it_was(tmp_path):
    with FolderLock(tmp_path / "a") as lock:
        assert lock.stale is None and (tmp_path / "a" / ".quanta.lock").exists()
        with pytest.raises(LockedError):      # the same process, a second lock: refused
            FolderLock(tmp_path / "a").acquire()
    assert not (tmp_path / "a").exists()      # the folder the lock created, still empty
    (tmp_path / "b").mkdir()
    with FolderLock(tmp_path / "b"):
        (tmp_path / "b" / "kept").write_text("x")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["kept"]


def test_a_folder_output_may_replace_a_folder_that_holds_any_name(tmp_path):
    """Commit.folder replaces a folder whole, whatever it holds (a subfolder named 'x' was
    taken for a folder where a file should go), and refuses a file where the folder goes."""
    dest = tmp_path / "run"
    (dest / "x").mkdir(parents=True)
    with Commit() as c:
        (c.folder(dest) / "new.txt").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    (tmp_path / "file").write_text("keep")
    with pytest.raises(NotADirectoryError):
        Commit().folder(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "keep"
