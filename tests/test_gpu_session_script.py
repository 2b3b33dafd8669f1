"""benchmarks/gpu_session.sh, the GPU sessions' driver, on its CPU-sized plan: a call that
runs out of time pauses (status 75) and packs its resume state; after the machine is lost,
the carried pieces resume the run, which ends equal to an uninterrupted one."""
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from empirical.parity import is_complete, load_run

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.sh"


def session(tmp: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(tmp / out), RUNS=str(tmp / "runs"),
               RESULTS=str(tmp / "results"), CARRY=str(tmp / "carry"))
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def unpack(parts_dir: Path, dest: Path) -> None:
    dest.mkdir()
    with open(dest / "all.tar", "wb") as f:
        for part in sorted(parts_dir.glob("gpu_tiny.tar.part-*")):
            f.write(part.read_bytes())
    with tarfile.open(dest / "all.tar") as t:
        t.extractall(dest, filter="data")


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("split") is None,
                    reason="needs bash and coreutils")
def test_paused_call_then_lost_machine_then_resume_equals_one_call(tmp_path):
    first = session(tmp_path, "out1", "run", "tiny", "0.5")
    assert first.returncode == 75, first.stdout + first.stderr
    parts = sorted((tmp_path / "out1").glob("tiny.resume.tar.part-*"))
    assert parts and not is_complete(tmp_path / "runs" / "tiny")

    shutil.rmtree(tmp_path / "runs")                  # the machine went back
    (tmp_path / "carry").mkdir()
    for p in parts:
        shutil.copy(p, tmp_path / "carry")
    second = session(tmp_path, "out2", "run", "tiny", "300")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "unpacked the carried resume state" in second.stdout
    unpack(tmp_path / "out2", tmp_path / "got")

    shutil.rmtree(tmp_path / "runs")
    shutil.rmtree(tmp_path / "carry")
    whole = session(tmp_path, "out3", "run", "tiny", "300")   # one uninterrupted call
    assert whole.returncode == 0, whole.stdout + whole.stderr
    unpack(tmp_path / "out3", tmp_path / "want")

    got, want = load_run(tmp_path / "got" / "gpu_tiny"), load_run(tmp_path / "want" / "gpu_tiny")
    assert is_complete(got.path) and got.checkpoint_steps() == want.checkpoint_steps()
    for key, value in want.metrics.items():
        if key != "wall_time":
            np.testing.assert_array_equal(got.metrics[key], value, err_msg=key)


def test_unknown_plan_is_an_error(tmp_path):
    res = session(tmp_path, "out", "run", "fig3")
    assert res.returncode == 2 and "unknown plan fig3" in res.stderr
