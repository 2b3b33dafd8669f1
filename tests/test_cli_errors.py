"""The command line's error path and its optional dependencies.

- An expected failure (``common.errors.QuantaError``, an OSError) is one line on stderr and
  exit status 2 (1 for a failed run); anything else is a bug and keeps its traceback
  (Python's exit status 1); Ctrl-C exits 130 without one.
- Without PyTorch, scikit-learn and pyarrow (blocked in a fresh interpreter by a meta-path
  finder) ``quanta fit``, ``simulate`` and ``theory`` work, and ``parity``/``qdg`` are
  offered but name the missing extra in one line when run.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.errors import CorruptFileError, InputError, MissingExtraError, RunError
from quanta import cli

ROOT = Path(__file__).resolve().parents[1]


def _quanta(args, *, code="", cwd=None, env_path=()):
    """Run ``python -c CODE; quanta ARGS`` in a fresh interpreter (``env_path``: folders
    put first on PYTHONPATH); returns the CompletedProcess."""
    script = code + "\nimport sys\nfrom quanta.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    path = os.pathsep.join([*map(str, env_path), str(ROOT)])
    env = dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=300)


# --- the error path ------------------------------------------------------------------------

def _command_raising(monkeypatch, exc):
    """Make ``quanta theory`` raise ``exc`` when run."""
    from quanta.commands import theory

    def boom(args):
        raise exc

    monkeypatch.setattr(theory, "run", boom)


@pytest.mark.parametrize("exc, status", [
    (InputError("--alpha: must be > 0\nsecond line"), 2),
    (CorruptFileError("x.npz: not an npz file"), 2),
    (MissingExtraError("torch is not installed: pip install 'quanta[empirical]'"), 2),
    (RunError("training diverged at step 10"), 1),
    (FileNotFoundError(2, "No such file or directory", "missing.csv"), 2),
])
def test_expected_failures_are_one_line(monkeypatch, capsys, exc, status):
    _command_raising(monkeypatch, exc)
    assert cli.main(["theory", "--alpha", "0.4"]) == status
    err = capsys.readouterr().err
    assert err.startswith("quanta theory: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    first = str(exc).splitlines()[0] if not isinstance(exc, OSError) else "missing.csv"
    assert first in err


@pytest.mark.parametrize("exc", [KeyError("column"), ValueError("a bug"), TypeError("a bug"),
                                 ZeroDivisionError()])
def test_a_bug_keeps_its_traceback(monkeypatch, exc):
    """KeyError and ValueError are no longer turned into user errors: they propagate."""
    _command_raising(monkeypatch, exc)
    with pytest.raises(type(exc)):
        cli.main(["theory", "--alpha", "0.4"])


def test_interrupt_exits_130_quietly(monkeypatch, capsys):
    _command_raising(monkeypatch, KeyboardInterrupt())
    assert cli.main(["theory", "--alpha", "0.4"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "quanta theory: interrupted"


@pytest.mark.parametrize("exc, said", [(InputError("bad"), "quanta: error: bad"),
                                        (KeyboardInterrupt(), "quanta: interrupted")])
def test_a_failure_before_the_command_is_known_names_quanta_alone(monkeypatch, capsys, exc,
                                                                    said):
    """No command parsed yet (``quanta --flag …``): the prefix is ``quanta``, not
    ``quanta ``, in the error, the interrupt and a warning alike (quanta.io.prefix)."""
    import warnings

    from quanta import io

    def boom():
        raise exc

    monkeypatch.setattr(cli, "build_parser", boom)
    assert cli.main(["--flag"]) in (2, 130)
    assert capsys.readouterr().err.strip() == said
    args = argparse.Namespace(func=lambda args: warnings.warn("a  long\n warning"))
    assert io.run_command(args) == 0
    assert capsys.readouterr().err.strip() == "quanta: warning: a long warning"


PATCH = """
import quanta.commands.theory as theory
def boom(args):
    raise {exc}
theory.run = boom
"""


@pytest.mark.parametrize("exc, status, shows", [
    ("KeyError('no such column')", 1, "Traceback"),           # Python's own exit status
    ("__import__('common.errors').errors.InputError('bad --alpha')", 2, None),
    ("KeyboardInterrupt()", 130, None),
])
def test_exit_status_and_stderr_in_a_process(exc, status, shows):
    res = _quanta(["theory", "--alpha", "0.4"], code=PATCH.format(exc=exc))
    assert res.returncode == status, res.stderr
    if shows:
        assert shows in res.stderr and "KeyError: 'no such column'" in res.stderr
    else:
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_unwritable_output_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["theory", "--alpha", "0.4", "--json", str(blocker / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "quanta theory: error:" in err and len(err.strip().splitlines()) == 1


def _corrupt_run(tmp_path, what: str) -> Path:
    """A copy of a committed parity run with one file replaced by garbage."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(ROOT / "results" / "parity" / "qdg_source" / "alpha0.4", run)
    target = {"config": run / "config.json", "metrics": run / "metrics.npz",
              "checkpoint": sorted((run / "checkpoints").glob("step_*.pt"))[-1],
              "config-shape": run / "config.json"}[what]
    target.write_text('{"task": 5}' if what == "config-shape" else "{garbage")
    return run


@pytest.mark.parametrize("what, argv, name", [
    ("config", ["parity", "analyze", "{run}"], "config.json"),
    ("config-shape", ["parity", "analyze", "{run}"], "config.json"),
    ("metrics", ["parity", "analyze", "{run}"], "metrics.npz"),
    ("config", ["parity", "export", "{run}", "{run}_copy"], "config.json"),
    ("config", ["parity", "train", "--out", "{run}", "--resume"], "config.json"),
    ("metrics", ["qdg", "parity", "{run}", "--samples", "100"], "metrics.npz"),
    ("checkpoint", ["qdg", "parity", "{run}", "--samples", "100"], ".pt"),
])
def test_a_corrupt_run_file_is_named_in_one_line(tmp_path, capsys, what, argv, name):
    pytest.importorskip("torch")
    run = _corrupt_run(tmp_path, what)
    assert cli.main([a.format(run=run) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err and str(run) in err


@pytest.mark.parametrize("content, suffix", [(b"\xff\xfe\x00garbage\n", ".csv"),
                                             (b"not parquet", ".parquet"),
                                             (b"\xff\xfe\x00garbage\n", ".txt")])
def test_a_corrupt_table_is_named_in_one_line(tmp_path, capsys, content, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    argv = ["fit", "sizes", str(path)] if suffix == ".txt" else \
        ["fit", str(path), "--x", "N", "--y", "loss"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "not a readable" in err


# --- optional dependencies -----------------------------------------------------------------

BLOCKER = '''
"""Block the optional dependencies, as if they were not installed."""
import sys

BLOCKED = {"torch", "sklearn", "pyarrow"}


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
'''


@pytest.fixture(scope="module")
def without_extras(tmp_path_factory):
    """A folder whose sitecustomize.py blocks torch, sklearn and pyarrow, and some data."""
    d = tmp_path_factory.mktemp("no_extras")
    (d / "sitecustomize.py").write_text(BLOCKER)
    x = np.geomspace(10, 1e4, 10)
    (d / "t.csv").write_text("N,loss\n" + "".join(f"{a},{2 * a ** -0.4}\n" for a in x))
    (d / "s.csv").write_text("s\n" + "".join(
        f"{v:g}\n" for v in np.round(1e4 * np.arange(1, 80.0) ** -1.4)))
    (d / "t.parquet").write_bytes(b"PAR1")
    return d


def _blocked(args, d):
    return _quanta(args, cwd=d, env_path=[d],
                   code="import sys\nassert 'sitecustomize' in sys.modules")


def test_the_blocker_blocks(without_extras):
    res = _quanta(["theory", "--alpha", "0.4"], cwd=without_extras, env_path=[without_extras],
                  code="try:\n    import torch\nexcept ImportError:\n"
                       "    pass\nelse:\n    raise SystemExit('torch imported')")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("args, key", [
    (["fit", "t.csv", "--x", "N", "--y", "loss", "--bootstrap", "50"], "params"),
    (["fit", "sizes", "s.csv", "--bootstrap", "50"], "alpha_hat"),
    (["fit", "literature"], "points"),
    (["simulate", "--regime", "D", "--alpha", "0.4", "--K", "1000", "--reps", "20",
      "--points", "6", "--x-max", "1e4"], "points"),
    (["theory", "--alpha", "0.4", "--D", "1e3"], None),
])
def test_fit_simulate_theory_run_without_the_extras(without_extras, args, key):
    res = _blocked(args + ["--json", "-"], without_extras)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert key is None or key in out


@pytest.mark.parametrize("args, extra", [
    (["parity", "analyze", str(ROOT / "results" / "parity" / "N_alpha0.4")], "empirical"),
    (["parity", "train", "--out", "run", "--steps", "1"], "empirical"),
    (["qdg", "toy", "--alpha", "0.5"], "empirical"),
    (["fit", "t.parquet", "--x", "N", "--y", "loss"], "parquet"),
])
def test_a_missing_extra_is_named_in_one_line(without_extras, args, extra):
    res = _blocked(args, without_extras)
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"pip install 'quanta[{extra}]'" in err and err.startswith(f"quanta {args[0]}: error:")


def test_help_offers_every_command_without_the_extras(without_extras):
    res = _blocked(["--help"], without_extras)
    assert res.returncode == 0 and all(c in res.stdout for c in cli.COMMANDS)
    res = _blocked(["parity", "analyze", "--help"], without_extras)
    assert res.returncode == 0 and "DIR" in res.stdout


def test_demo_skips_a_layer_whose_extra_is_missing(monkeypatch, tmp_path, capsys):
    class Layer:
        __name__ = "quanta.commands.fake"

        @staticmethod
        def demo(out):
            raise MissingExtraError("torch is not installed: pip install 'quanta[empirical]'")

    class Other:
        __name__ = "quanta.commands.other"

        @staticmethod
        def demo(out):
            (out / "x.txt").write_text("x")
            return [out / "x.txt"]

    monkeypatch.setattr(cli, "available_commands", lambda: [Layer, Other])
    assert cli.run_demo(argparse.Namespace(out=str(tmp_path))) == 0
    out = capsys.readouterr().out
    assert "skipped: torch is not installed" in out and "wrote" in out
