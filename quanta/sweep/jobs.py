"""A job's folder and the function a worker runs.

``DIR/jobs/<id>/`` holds ``job.json`` (the command and its arguments), ``status.json``
(written atomically: pending, running, done, paused or failed, with the error, the
attempt count and times), ``log.txt`` (everything the command printed, every attempt) and
the command's outputs (``result.json``; for ``parity train`` the run itself:
``config.json``, ``metrics.npz``, ``checkpoints/``, so ``quanta parity analyze DIR/jobs``
reads a parity sweep directly).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path

from common.files import atomic_write
from quanta.commands.parity import EXIT_PAUSED
from . import registry

JOBS = "jobs"
STATES = ("pending", "running", "done", "paused", "failed")


def job_dir(out, job_id: str) -> Path:
    return Path(out) / JOBS / job_id


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def write_json(path: Path, doc: dict) -> None:
    atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode())


def status(folder: Path) -> dict:
    """The job's status (``pending`` when none was written yet)."""
    return read_json(Path(folder) / "status.json", {"state": "pending", "attempts": 0})


def prepare(folder: Path, job) -> None:
    """Create the job's folder with its ``job.json`` (kept if already there)."""
    folder = Path(folder)
    if not (folder / "job.json").exists():
        write_json(folder / "job.json", job.to_dict())


def set_status(folder: Path, state: str, **fields) -> dict:
    """Replace the job's status atomically, keeping earlier fields not given."""
    doc = {**status(folder), **fields, "state": state}
    write_json(Path(folder) / "status.json", doc)
    return doc


def run_job(folder: str) -> dict:
    """Run the job in ``folder`` in this process (a pool worker or a Ray task): the
    command's own entry point on its parsed arguments, its output going to ``log.txt``.
    Never raises for a failing command: the returned (and saved) status says what failed."""
    folder = Path(folder)
    job = read_json(folder / "job.json")
    command = registry.lookup(job["command"])
    previous = status(folder)
    t0 = time.time()
    set_status(folder, "running", attempts=int(previous.get("attempts", 0)) + 1, started=t0,
               host=socket.gethostname(), pid=os.getpid(), error=None)
    extra = {name: str(folder / rel) for name, rel in command.outputs.items()}
    extra.update({name: str(folder / job["args"][name]) for name in command.job_files
                  if isinstance(job["args"].get(name), str)})
    extra.update({name: True for name in command.resume})
    words = registry.argv(command, {**job["args"], **extra})
    with open(folder / "log.txt", "a") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}: "
              f"quanta {' '.join(words)}", flush=True)
        try:
            namespace = registry.parse(command, words)
            code = int(namespace.func(namespace) or 0)
            error = None if code in (0, EXIT_PAUSED) else f"exit status {code}"
        except BaseException as err:  # a job's failure is its own; the sweep goes on
            traceback.print_exc(file=sys.stdout)
            code, error = 1, _one_line(err)
            if isinstance(err, KeyboardInterrupt):
                raise
        sys.stdout.flush()
    state = "done" if code == 0 else "paused" if code == EXIT_PAUSED else "failed"
    return set_status(folder, state, error=error, finished=time.time(),
                      wall_s=round(time.time() - t0, 3))


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
