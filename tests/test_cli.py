"""The command-line conventions every subcommand shares."""
import json
import subprocess
import sys

import numpy as np
import pytest

from quanta import cli, io


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2


def test_json_dash_writes_stdout(capsys):
    io.write_json({"a": np.float64(1.5), "b": np.arange(3), "c": float("nan")}, "-")
    out = json.loads(capsys.readouterr().out)
    assert out == {"a": 1.5, "b": [0, 1, 2], "c": None}


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "x.json"
    io.write_json({"v": 1}, target)
    io.write_json({"v": 2}, target)
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_console_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "quanta", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "quanta" in res.stdout


def test_atomic_write_uses_umask_permissions(tmp_path):
    import os

    from common.files import atomic_write
    umask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "f.bin", b"x")
    finally:
        os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o644


@pytest.mark.parametrize("lo, hi, count, integer", [
    (9, 500, 30, True), (1, 1e9, 30, True), (2.5, 7.0, 5, False), (3, 3, 4, True),
    (1, 4, 50, True)])
def test_log_grid_is_log_spaced_and_rounds_to_distinct_integers(lo, hi, count, integer):
    grid = io.log_grid(lo, hi, count, integer=integer)
    raw = np.geomspace(lo, hi, count)
    if integer:   # the rounded raw grid, each value once, in order
        assert grid.tolist() == sorted({float(round(v)) for v in raw})
        assert len(grid) <= count and np.all(np.diff(grid) > 0)
    else:
        np.testing.assert_allclose(np.diff(np.log(grid)), np.log(hi / lo) / (count - 1))


@pytest.mark.parametrize("lo, hi, count", [(0, 10, 3), (10, 1, 3), (1, 10, 0), (-1, 10, 3),
                                           (1, 10, 10**13)])   # 10^13 points: no memory
def test_log_grid_refusals_name_the_flags(lo, hi, count):
    from common.errors import InputError
    with pytest.raises(InputError, match="--width-grid"):
        io.log_grid(lo, hi, count, names="--width-grid")
