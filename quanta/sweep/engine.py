"""Running a sweep, reporting where it stands, and collecting its results into one table.

``DIR/sweep.json`` records the spec and its jobs in order; each job lives in
``DIR/jobs/<id>/`` (see :mod:`quanta.sweep.jobs`). A run takes a lock on ``DIR`` (one
driver at a time; the lock dies with its process), runs every job not yet done (a job
left running by a killed driver runs again, a parity job from its last checkpoint) and
reports each failure as it happens while the others go on.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import sys
from collections import Counter
from pathlib import Path

from common.errors import InputError
from common.files import atomic_write
from . import backends, registry, spec as specs
from .jobs import job_dir, prepare, read_json, set_status, status, write_json

SWEEP_FILE = "sweep.json"
TABLE = "summary.parquet"


@contextlib.contextmanager
def _lock(out: Path):
    """Hold ``out/.lock`` for this process (released when it exits, however it exits)."""
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{out}: another `quanta sweep run` is running on this folder "
                             "(wait for it, or use another --out)") from None
        yield


def _as_spec(spec) -> specs.Spec:
    return spec if isinstance(spec, specs.Spec) else specs.load(spec)


def run(spec, out, backend: str = "local", max_parallel: int | None = None,
        address: str | None = None, progress: bool = True) -> dict:
    """Run every job of ``spec`` (a :class:`~quanta.sweep.spec.Spec` or a spec file) that
    is not done yet in ``out``, on ``backend``. Returns the counts (``jobs``, ``skipped``:
    done before, and the states of those run now) and the ``failed`` jobs with their
    errors. A live progress bar over jobs goes to standard error when ``progress``."""
    from tqdm import tqdm

    spec = _as_spec(spec)
    backends.check(backend, max_parallel, address)
    out = Path(out).resolve()   # workers (Ray's too) may run elsewhere: absolute paths
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        write_json(out / SWEEP_FILE, {"spec": spec.to_dict(), "jobs": [j.id for j in spec.jobs]})
        command = registry.lookup(spec.command)
        tasks = []
        for job in spec.jobs:
            folder = job_dir(out, job.id)
            prepare(folder, job)
            if status(folder)["state"] != "done":
                tasks.append(backends.Task(str(folder), command.gpu(job.args)))
        counts: Counter = Counter(jobs=len(spec.jobs), skipped=len(spec.jobs) - len(tasks))
        failed: list[dict] = []
        bar = tqdm(total=len(spec.jobs), initial=counts["skipped"], unit="job",
                   desc=f"sweep {out.name}", file=sys.stderr,
                   disable=None if progress else True,   # None: only on a terminal
                   dynamic_ncols=True)

        def on_result(task: backends.Task, result: dict) -> None:
            folder = Path(task.folder)
            if status(folder)["state"] != result["state"]:   # the worker could not write it
                result = set_status(folder, result["state"], error=result.get("error"))
            counts[result["state"]] += 1
            if result["state"] == "failed":
                failed.append({"job": folder.name, "error": result.get("error")})
                bar.write(f"failed: {folder.name}: {result.get('error')} "
                          f"(log: {folder / 'log.txt'})", file=sys.stderr)
            bar.update(1)
            bar.set_postfix(failed=counts["failed"], refresh=False)

        try:
            backends.run(backend, tasks, on_result, max_parallel=max_parallel,
                         address=address)
        finally:
            bar.close()
    return {key: counts[key] for key in ("jobs", "skipped", "done", "failed", "paused")} | \
        {"failed_jobs": failed}


def read_sweep(out) -> dict:
    """``DIR/sweep.json``, or an InputError saying DIR holds no sweep."""
    doc = read_json(Path(out) / SWEEP_FILE)
    if doc is None:
        raise InputError(f"no sweep in {out} ({SWEEP_FILE} missing): run `quanta sweep run "
                         "SPEC --out DIR` first")
    return doc


def sweep_status(out) -> dict:
    """Every job's state (with its error, attempts and time) and the counts by state."""
    out = Path(out)
    doc = read_sweep(out)
    jobs = []
    for job_id in doc["jobs"]:
        st = status(job_dir(out, job_id))
        jobs.append({"job": job_id, "state": st["state"], "attempts": st.get("attempts", 0),
                     "wall_s": st.get("wall_s"), "error": st.get("error")})
    counts = Counter(j["state"] for j in jobs)
    return {"sweep": str(out), "command": doc["spec"]["command"], "jobs": jobs,
            "counts": {s: counts.get(s, 0) for s in ("done", "failed", "paused", "running",
                                                      "pending")}}


def collect(out):
    """One table of every finished job's summary numbers beside its arguments (one row
    per job; per network for ``parity train``), in the spec's job order, and the jobs not
    done. Returns ``(pandas.DataFrame, not_done)``."""
    import pandas as pd

    out = Path(out)
    doc = read_sweep(out)
    rows, not_done = [], []
    for job_id in doc["jobs"]:
        folder = job_dir(out, job_id)
        st, job = status(folder), read_json(folder / "job.json")
        if st["state"] != "done":
            not_done.append({"job": job_id, "state": st["state"], "error": st.get("error")})
            continue
        command = registry.lookup(job["command"])
        args = {k: _cell(v) for k, v in job["args"].items() if k not in command.fused}
        for numbers in command.summary_rows(folder, job["args"]):
            numbers = {(f"{k}_result" if k in args else k): v for k, v in numbers.items()}
            rows.append({"job": job_id, **args, **numbers, "wall_s": st.get("wall_s")})
    return pd.DataFrame(rows), not_done


def _cell(value):
    """A table cell: lists (an option with several values) as JSON text."""
    return json.dumps(value) if isinstance(value, list) else value


def write_table(table, path) -> Path:
    """The table as parquet, atomically."""
    return atomic_write(path, lambda fh: table.to_parquet(fh, index=False))
