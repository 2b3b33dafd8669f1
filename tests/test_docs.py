"""Every example in the README and in docs/*.md runs as written.

A document's examples run in the order a reader meets them, in one fresh folder where
``results/`` is the repository's: fenced blocks tagged ``python`` in one namespace per
document, blocks tagged ``console`` as each ``$ quanta …`` line (continued with a trailing
backslash) run by ``python -m quanta …``, which must exit 0, so a command can read the file a
Python block before it wrote. A block preceded by ``<!-- no-test: reason -->`` is skipped (GPU
runs, runs of many minutes); the reason is required.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!--\s*no-test:\s*(?P<why>[^>]*?)\s*-->\s*\n)?```(?P<lang>[\w-]*)\n"
                   r"(?P<body>.*?)```", re.S)


def runnable(path: Path) -> list[tuple[str, str]]:
    """(language, body) of the python and console blocks of ``path`` in order, skipped ones
    left out."""
    out = []
    for m in FENCE.finditer(path.read_text()):
        if m["lang"] not in ("python", "console"):
            continue
        if m["why"] is not None:
            assert m["why"], f"{path.name}: a no-test marker needs its reason"
            continue
        out.append((m["lang"], m["body"]))
    return out


def blocks(path: Path, lang: str) -> list[str]:
    """The runnable blocks of ``lang`` in ``path`` (skipped ones left out)."""
    return [body for kind, body in runnable(path) if kind == lang]


def commands(block: str) -> list[str]:
    """The ``$ quanta …`` command lines of a console block, continuations joined."""
    cmds, cur = [], None
    for line in block.splitlines():
        if cur is not None:
            cur += " " + line.strip().rstrip("\\").strip()
            if not line.rstrip().endswith("\\"):
                cmds.append(cur)
                cur = None
        elif line.startswith("$ "):
            text = line[2:].strip()
            if text.endswith("\\"):
                cur = text.rstrip("\\").strip()
            else:
                cmds.append(text)
    return cmds


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "results").symlink_to(ROOT / "results")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=_doc_id)
def test_examples_run(path, workdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace: dict = {"__name__": "__doc_example__"}
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        for i, (kind, body) in enumerate(runnable(path)):
            if kind == "python":
                exec(compile(body, f"{path.name}[block {i + 1}]", "exec"), namespace)
                continue
            for cmd in commands(body):
                _run_console(path, cmd, workdir, env)
    finally:
        plt.close("all")


def _run_console(path: Path, cmd: str, workdir: Path, env: dict) -> None:
    argv = shlex.split(cmd)
    assert argv[0] == "quanta", f"{path.name}: console examples run quanta, got {cmd!r}"
    proc = subprocess.run([sys.executable, "-m", "quanta", *argv[1:]], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{path.name}: `{cmd}` failed:\n{proc.stderr[-2000:]}"


def test_commands_join_continuations():
    block = "$ quanta fit a.csv \\\n    --x N --y loss\nsome output\n$ quanta theory --alpha 0.4\n"
    assert commands(block) == ["quanta fit a.csv --x N --y loss", "quanta theory --alpha 0.4"]


def test_skip_marker_needs_and_keeps_reason(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("<!-- no-test: GPU -->\n```python\nraise SystemExit\n```\n"
                   "```python\nx = 1\n```\n```console\n$ quanta theory\n```\n")
    assert blocks(doc, "python") == ["x = 1\n"]
    assert runnable(doc) == [("python", "x = 1\n"), ("console", "$ quanta theory\n")]
