"""Check that ``pip install .`` (no extras) gives a working quanta without PyTorch.

    python scripts/check_install.py [--keep DIR]

In a fresh virtual environment (a temporary folder, or ``--keep DIR``): ``pip install`` this
checkout without extras (from PyPI, through pip's wheel cache), then check that

- neither torch, scikit-learn nor pyarrow was installed;
- ``quanta fit`` (curve, sizes, literature), ``quanta simulate`` and ``quanta theory`` run;
- ``quanta parity analyze`` and ``quanta qdg toy`` exit with status 2 and one line naming
  the ``empirical`` extra.

``--no-jit`` runs the Monte Carlo kernels as Python, skipping Numba's first compilation.

Prints each step with its time; exits 1 on the first failed check, 3 when pip could not
install at all (no package index, no cached wheel: nothing was checked).
tests/test_install.py runs it with ``--no-jit`` (a slow test).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


#: extra environment of the quanta runs (``--no-jit``: NUMBA_DISABLE_JIT=1)
RUN_ENV: dict[str, str] = {}


#: exit status when pip itself could not install (no network, no wheel): nothing was checked
EXIT_NOT_INSTALLED = 3


def step(what: str, cmd: list[str], cwd: Path, expect: int = 0,
         fail_status: int = 1) -> subprocess.CompletedProcess:
    """Run ``cmd``; exit with ``fail_status`` unless its status is ``expect``."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                         env=dict(os.environ, MPLBACKEND="Agg", PYTHONPATH="", **RUN_ENV))
    print(f"[install] {what}: exit {res.returncode} ({time.perf_counter() - t0:.1f} s)",
          flush=True)
    if res.returncode != expect:
        print(f"[install] FAILED {what} (expected exit {expect}):\n{res.stdout[-2000:]}\n"
              f"{res.stderr[-2000:]}", file=sys.stderr)
        sys.exit(fail_status)
    return res


def check(venv: Path) -> None:
    """The checks of the module docstring, in a new virtual environment at ``venv``."""
    py = venv / "bin" / "python"
    quanta = str(venv / "bin" / "quanta")
    step("create the virtual environment", [sys.executable, "-m", "venv", str(venv)], ROOT)
    source = venv / "source"  # a copy: pip builds in the tree it installs (build/, egg-info)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".hypothesis", "results",
        "quanta-out", "runs", ".gpu", ".pytest_cache"))
    step("pip install . (no extras)", [str(py), "-m", "pip", "install", "--quiet",
                                       "--disable-pip-version-check", str(source)], venv,
         fail_status=EXIT_NOT_INSTALLED)
    missing = step("the optional dependencies are absent", [str(py), "-c", (
        "import importlib.util as u; print([m for m in ('torch', 'sklearn', 'pyarrow') "
        "if u.find_spec(m) is None])")], venv)
    if missing.stdout.strip() != "['torch', 'sklearn', 'pyarrow']":
        sys.exit(f"[install] FAILED: an extra was installed without being asked for: "
                 f"{missing.stdout.strip()} are missing")
    work = venv / "work"
    work.mkdir()
    (work / "t.csv").write_text("N,loss\n" + "".join(
        f"{n},{2 * n ** -0.4}\n" for n in (10, 30, 100, 300, 1000, 3000, 10000)))
    (work / "s.csv").write_text("s\n" + "".join(
        f"{round(1e4 * k ** -1.4)}\n" for k in range(1, 80)))
    runs = [("quanta fit curve", ["fit", "t.csv", "--x", "N", "--y", "loss",
                                  "--bootstrap", "50"]),
            ("quanta fit sizes", ["fit", "sizes", "s.csv", "--bootstrap", "50"]),
            ("quanta fit literature", ["fit", "literature"]),
            ("quanta simulate", ["simulate", "--regime", "D", "--alpha", "0.4", "--K", "1000",
                                 "--reps", "20", "--points", "6", "--x-max", "1e4"]),
            ("quanta theory", ["theory", "--alpha", "0.4", "--D", "1e3"])]
    for what, args in runs:
        out = step(what, [quanta, *args, "--json", "-"], work)
        json.loads(out.stdout)
    for what, args in (("quanta parity analyze", ["parity", "analyze", "."]),
                       ("quanta qdg toy", ["qdg", "toy", "--alpha", "0.5"])):
        res = step(f"{what} names the missing extra", [quanta, *args], work, expect=2)
        err = res.stderr.strip()
        if len(err.splitlines()) != 1 or "pip install 'quanta[empirical]'" not in err:
            sys.exit(f"[install] FAILED: {what} said {err!r}")
    print("[install] ok: pip install . works without PyTorch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="build the environment in DIR (new)")
    parser.add_argument("--no-jit", action="store_true",
                        help="run the kernels as Python (NUMBA_DISABLE_JIT=1): skips Numba's "
                             "first compilation (about a minute on 2 cores), checks the rest")
    args = parser.parse_args()
    if args.no_jit:
        RUN_ENV["NUMBA_DISABLE_JIT"] = "1"
    t0 = time.perf_counter()
    if args.keep:
        check(Path(args.keep).resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="quanta_install_") as d:
            check(Path(d) / "venv")
    print(f"[install] total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
