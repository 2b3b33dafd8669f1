"""Where jobs run: a process pool on this machine (``local``), or Ray (``ray``), locally or
on a cluster. Both call :func:`quanta.sweep.jobs.run_job` on a job's folder and hand each
returned status to ``on_result`` as it arrives; a job that crashes its worker is reported
as failed, and the other jobs go on.

GPU jobs (``parity train`` not on the CPU) get one GPU each: on Ray by asking for
``num_gpus=1`` (Ray sets ``CUDA_VISIBLE_DEVICES``); locally through one single-worker pool
per visible GPU, pinned with ``CUDA_VISIBLE_DEVICES``. Where there is no GPU at all they
run as CPU jobs (as ``--device auto`` does). CPU jobs ask for ``num_cpus=1``.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

from common.errors import InputError, require
from .jobs import run_job

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """A job to run: its folder and whether it wants a GPU."""
    folder: str
    gpu: bool


OnResult = Callable[[Task, dict], None]


def check(backend: str, max_parallel: int | None = None, address: str | None = None) -> None:
    """Refuse an unknown backend, a bad ``max_parallel``, an address without Ray, and Ray
    where it is not installed, before anything is written."""
    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if max_parallel is not None and max_parallel < 1:
        raise InputError(f"--max-parallel must be at least 1, got {max_parallel}")
    if address is not None and backend != "ray":
        raise InputError("--address names a Ray cluster: use it with --backend ray")
    if backend == "ray":
        require("ray", "ray")


def run(backend: str, tasks: list[Task], on_result: OnResult, max_parallel: int | None = None,
        address: str | None = None) -> None:
    """Run ``tasks`` on ``backend``, at most ``max_parallel`` at a time."""
    check(backend, max_parallel, address)
    if not tasks:
        return
    if backend == "ray":
        run_ray(tasks, on_result, max_parallel, address)
    else:
        run_local(tasks, on_result, max_parallel)


def crashed(err: BaseException) -> dict:
    """The status of a job whose worker died before it could write one."""
    text = " ".join(str(err).split())[:300]
    return {"state": "failed", "error": f"worker died: {type(err).__name__}: {text}"}


# ---------------------------------------------------------------- local

def visible_gpus() -> list[str]:
    """The GPUs this machine shows (as ``CUDA_VISIBLE_DEVICES`` entries); none without
    torch or CUDA."""
    try:
        import torch
    except ImportError:
        return []
    n = torch.cuda.device_count()
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g.strip() for g in given.split(",")] if given else [str(i) for i in range(n)]
    return ids[:n]


def _pin_gpu(gpu: str) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def _context():
    """Workers start clean (forkserver, spawn off Linux): a driver that imported torch or
    started threads is never forked."""
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


class _Lane:
    """A process pool fed from a queue, at most ``workers`` jobs in it at a time; rebuilt
    when a worker dies (a crash, the out-of-memory killer) so the jobs after go on."""

    def __init__(self, queue: list[Task], workers: int, gpu: str | None = None):
        self.queue, self.workers, self.gpu = queue, workers, gpu
        self.pool, self.broken = self._pool(), False

    def _pool(self) -> ProcessPoolExecutor:
        pin = dict(initializer=_pin_gpu, initargs=(self.gpu,)) if self.gpu is not None else {}
        return ProcessPoolExecutor(self.workers, mp_context=_context(), **pin)

    def feed(self, running: dict) -> None:
        busy = sum(lane is self for _, lane in running.values())
        if self.broken and not busy:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool, self.broken = self._pool(), False
        while self.queue and busy < self.workers and not self.broken:
            task = self.queue.pop(0)
            running[self.pool.submit(run_job, task.folder)] = (task, self)
            busy += 1


def run_local(tasks: list[Task], on_result: OnResult, max_parallel: int | None = None) -> None:
    """A process pool of ``max_parallel`` workers (default: the CPU count) for CPU jobs,
    and one single-worker pool per GPU for GPU jobs."""
    from concurrent.futures.process import BrokenProcessPool

    from .jobs import status

    gpus = visible_gpus() if any(t.gpu for t in tasks) else []
    gpus = gpus[:max_parallel] if max_parallel else gpus
    gpu_queue = [t for t in tasks if t.gpu and gpus]
    cpu_queue = [t for t in tasks if not (t.gpu and gpus)]
    lanes = [_Lane(cpu_queue, min(max_parallel or os.cpu_count() or 1, max(len(cpu_queue), 1)))]
    lanes += [_Lane(gpu_queue, 1, gpu) for gpu in gpus]
    running: dict = {}
    requeued: set[str] = set()
    try:
        for lane in lanes:
            lane.feed(running)
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                task, lane = running.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool as err:   # a worker died; the pool is rebuilt
                    lane.broken = True
                    never_started = status(task.folder)["state"] == "pending"
                    if never_started and task.folder not in requeued:   # once more
                        requeued.add(task.folder)
                        lane.queue.insert(0, task)
                        continue
                    result = crashed(err)
                on_result(task, result)
            for lane in lanes:
                lane.feed(running)
    finally:
        for lane in lanes:
            lane.pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- Ray

def ray_init(ray, address: str | None, max_parallel: int | None) -> bool:
    """Connect to the cluster at ``address``, or start a small local Ray (no dashboard,
    a 128 MB object store: jobs exchange only their status); reuse a Ray this process
    already started. Returns whether this call started it (and so should stop it)."""
    if ray.is_initialized():
        return False
    if address is not None:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=max_parallel or os.cpu_count(), include_dashboard=False,
                 object_store_memory=128 * 2**20, log_to_driver=False)
    return True


def resources(task: Task, cluster_gpus: float) -> dict:
    """What one job asks Ray for: a GPU for a GPU job (where the cluster has any), else
    one CPU."""
    return {"num_gpus": 1, "num_cpus": 1} if task.gpu and cluster_gpus > 0 \
        else {"num_gpus": 0, "num_cpus": 1}


def run_ray(tasks: list[Task], on_result: OnResult, max_parallel: int | None = None,
            address: str | None = None) -> None:
    """Each job a Ray task (retried by Ray if its worker or node dies; a parity job then
    resumes from its checkpoints), at most ``max_parallel`` submitted at a time."""
    ray = require("ray", "ray")
    started = ray_init(ray, address, max_parallel)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        remote = ray.remote(run_job)
        queue, running = list(tasks), {}
        while queue or running:
            while queue and (max_parallel is None or len(running) < max_parallel):
                t = queue.pop(0)
                running[remote.options(**resources(t, gpus)).remote(t.folder)] = t
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                task = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:   # RayTaskError, WorkerCrashedError, node lost
                    result = crashed(err)
                on_result(task, result)
    finally:
        if started:
            ray.shutdown()
