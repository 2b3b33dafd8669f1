"""Sweeps on the local backend: specs and their one-line errors, packing of parity
networks into fused jobs, a failing job that does not stop the others, a driver killed
mid-sweep and re-run, a paused parity job resumed from its checkpoint."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from common.errors import InputError, MissingExtraError
from quanta import cli, sweep
from quanta.sweep import backends, engine, registry
from quanta.sweep.jobs import job_dir, status

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "quanta" / "sweep" / "examples"

SIMULATE = """command = "simulate"
[fixed]
regime = "D"
K = 1000
reps = 20
points = 10
x-max = 1e6
[grid]
alpha = [0.3, 0.6]
tau = [1, 2]
"""


def write(tmp_path, text, name="spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def quanta(*argv) -> int:
    return cli.main([str(a) for a in argv])


# ---------------------------------------------------------------- specs

BAD_SPECS = [
    ("comand = 'simulate'\n", "unknown key 'comand'"),
    ("[fixed]\nalpha = 0.4\n", "'command' must name the command"),
    ("command = 'simulte'\n", "command 'simulte' is not one a sweep runs"),
    ("command = 'simulate'\n[fixed]\nregime = 'D'\nalpah = 0.4\n",
     "fixed.alpah: not an argument of `quanta simulate`"),
    ("command = 'simulate'\n[fixed]\nregime = 'D'\n[grid]\nalpha = 0.4\n",
     "grid.alpha must be a non-empty list"),
    ("command = 'simulate'\n[fixed]\nregime = 'D'\n[grid]\nalpha = []\n",
     "grid.alpha must be a non-empty list"),
    ("command = 'simulate'\n[fixed]\nregime = 'D'\nalpha = 0.4\n[grid]\nalpha = [0.5]\n",
     "'alpha' is in both [fixed] and [grid]"),
    ("command = 'simulate'\n[fixed]\nregime = 'D'\n[grid]\nalpha = [0.4, 'abc']\n",
     "argument --alpha: invalid float value: 'abc'"),
    ("command = 'simulate'\n[fixed]\nregime = 'X'\nalpha = 0.4\n",
     "argument --regime: invalid choice: 'X'"),
    ("command = 'simulate'\n[fixed]\nalpha = 0.4\n",
     "the following arguments are required: --regime"),
    ("command = 'simulate'\n[fixed]\nregime = 'D'\nalpha = 0.4\njson = 'x.json'\n",
     "fixed.json: set by the sweep itself"),
    ("command = 'simulate'\n[fixed]\nregime = 'D'\nalpha = {a = 1}\n",
     "fixed.alpha: {'a': 1} is not a number"),
    ("command = 'simulate'\n[fixed\nregime = 'D'\n", "line 2"),
    ("command = 'parity train'\n[fixed]\nwidths = [8]\nwidth-grid = [4, 8, 2]\n",
     "give --widths or --width-grid, not both"),
    ("command = 'parity train'\n[fixed]\nsteps = 0\n", "--steps: must be an integer >= 1"),
]


@pytest.mark.parametrize("text, expected", BAD_SPECS, ids=[e for _, e in BAD_SPECS])
def test_malformed_spec_is_one_line_error_naming_the_file(tmp_path, capsys, text, expected):
    path = write(tmp_path, text)
    out = tmp_path / "out"
    assert quanta("sweep", "run", path, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"quanta sweep: error: {path}") and expected in err, err
    assert not out.exists(), "a refused spec must not create the sweep's folder"


@pytest.mark.parametrize("path, expected", [
    ("missing.toml", "no such spec file"), ("spec.json", "a spec is a .toml, .yaml or .yml")])
def test_spec_file_errors(tmp_path, path, expected):
    if path.endswith(".json"):
        write(tmp_path, "{}", path)
    with pytest.raises(InputError, match=expected):
        sweep.load(tmp_path / path)


def test_grid_is_the_product_of_axes_with_fixed_arguments(tmp_path):
    spec = sweep.load(write(tmp_path, SIMULATE))
    got = [(j.args["alpha"], j.args["tau"]) for j in spec.jobs]
    assert got == [(0.3, 1), (0.3, 2), (0.6, 1), (0.6, 2)]
    assert all(j.args["K"] == 1000 and j.args["x_max"] == 1e6 for j in spec.jobs)
    assert len({j.id for j in spec.jobs}) == 4


def test_yaml_spec_gives_the_same_jobs_as_toml(tmp_path):
    pytest.importorskip("yaml")
    yaml_text = ("command: simulate\nfixed: {regime: D, K: 1000, reps: 20, points: 10, "
                 "x-max: 1.0e+6}\ngrid: {alpha: [0.3, 0.6], tau: [1, 2]}\n")
    a = sweep.load(write(tmp_path, SIMULATE))
    b = sweep.load(write(tmp_path, yaml_text, "spec.yaml"))
    assert [j.id for j in a.jobs] == [j.id for j in b.jobs]


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.toml")))
def test_shipped_examples_validate(name):
    assert sweep.load(EXAMPLES / f"{name}.toml").jobs


def test_figure10_example_packs_one_fused_job_per_alpha():
    spec = sweep.load(EXAMPLES / "figure10.toml")
    assert [j.args["alpha"] for j in spec.jobs] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert all(j.args["seeds"] == [0, 1, 2] and j.args["width_grid"] == [9, 300, 12]
               for j in spec.jobs)
    # the trainer varying α per network is one more entry in what it fuses: one job
    points = [dict(j.args, seeds=s) for j in spec.jobs for s in j.args["seeds"]]
    fused = sweep.pack(points, {**registry.PARITY_FUSED, "alpha": "alpha"})
    assert len(fused) == 1 and fused[0]["alpha"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def _networks(job: dict, fused) -> set:
    """The networks a packed job trains: the product of its fused lists, with the rest."""
    import itertools
    rest = tuple(sorted((k, v) for k, v in job.items() if k not in fused))
    names = [f for f in fused if f in job]
    return {(rest, combo) for combo in itertools.product(*(job[f] for f in names))}


@given(alphas=st.lists(st.sampled_from([0.1, 0.2, 0.4, 0.8]), min_size=1, max_size=3,
                       unique=True),
       widths=st.lists(st.integers(1, 500), min_size=1, max_size=4, unique=True),
       seeds=st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True),
       steps=st.lists(st.sampled_from([100, 1000]), min_size=1, max_size=2, unique=True),
       widths_fixed=st.booleans())
def test_pack_trains_exactly_the_grid_in_one_job_per_unfused_setting(alphas, widths, seeds,
                                                                     steps, widths_fixed):
    import itertools
    fused = registry.PARITY_FUSED
    grid = dict(alpha=alphas, seeds=seeds, steps=steps)
    if not widths_fixed:
        grid["widths"] = widths
    points = [dict(zip(grid, combo), **({"widths": widths} if widths_fixed else {}))
              for combo in itertools.product(*grid.values())]
    jobs = sweep.pack(points, fused)
    assert len(jobs) == len(alphas) * len(steps)
    wanted = set()
    for p in points:
        wanted |= _networks({k: v if isinstance(v, list) or k not in fused else [v]
                             for k, v in p.items()}, fused)
    trained = [n for job in jobs for n in _networks(job, fused)]
    assert len(trained) == len(set(trained)) and set(trained) == wanted


@given(alpha=st.floats(0.01, 5), tau=st.integers(1, 50), reps=st.integers(1, 10**6),
       noisy=st.booleans(), x_max=st.floats(1e3, 1e12))
def test_job_command_line_parses_back_to_its_arguments(alpha, tau, reps, noisy, x_max):
    command = registry.lookup("simulate")
    args = dict(regime="N", alpha=alpha, tau=tau, reps=reps, noisy=noisy, x_max=x_max)
    ns = registry.parse(command, registry.argv(command, args))
    assert {k: getattr(ns, k) for k in args} == args


# ---------------------------------------------------------------- running

def test_sweep_runs_reruns_and_collects(tmp_path, capsys):
    spec, out = write(tmp_path, SIMULATE), tmp_path / "out"
    assert quanta("sweep", "run", spec, "--out", out, "--max-parallel", "2",
                  "--no-progress") == 0
    first = {p.parent.name: p.read_bytes() for p in out.glob("jobs/*/status.json")}
    assert len(first) == 4
    capsys.readouterr()
    assert quanta("sweep", "run", spec, "--out", out, "--json", "-", "--no-progress") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["skipped"] == 4 and again["done"] == 0
    assert first == {p.parent.name: p.read_bytes() for p in out.glob("jobs/*/status.json")}
    assert quanta("sweep", "collect", out, "--json", tmp_path / "c.json") == 0
    import pandas as pd
    table = pd.read_parquet(out / "summary.parquet")
    assert list(table["alpha"]) == [0.3, 0.3, 0.6, 0.6] and list(table["tau"]) == [1, 2, 1, 2]
    # the numbers are the jobs' own: each row's exponent is its result.json's
    for _, row in table.iterrows():
        doc = json.loads((job_dir(out, row["job"]) / "result.json").read_text())
        assert row["exponent"] == doc["exponent"]
        assert row["theory_exponent"] == pytest.approx(row["alpha"] / (row["alpha"] + 1))
    doc = json.loads((tmp_path / "c.json").read_text())
    assert len(doc["rows"]) == 4 and doc["not_done"] == []


def test_fit_sweep_reads_data_beside_the_spec_and_draws_each_plot_in_its_job(tmp_path):
    import pandas as pd
    (tmp_path / "data").mkdir()
    x = np.geomspace(10, 1e5, 12)
    for alpha in (0.3, 0.7):   # exact power laws: the fits must return their exponents
        pd.DataFrame({"N": x, "loss": 2.0 * x ** -alpha}).to_csv(
            tmp_path / "data" / f"a{alpha}.csv", index=False)
    spec = write(tmp_path / "data", 'command = "fit"\n[fixed]\nx = "N"\ny = "loss"\n'
                 'bootstrap = 0\nplot = "fit.png"\n[grid]\ndata = ["a0.3.csv", "a0.7.csv"]\n')
    result = sweep.run(sweep.load(spec), tmp_path / "out", progress=False)
    assert result["done"] == 2, sweep.sweep_status(tmp_path / "out")
    table, _ = sweep.collect(tmp_path / "out")
    assert list(table["data"]) == [str(tmp_path / "data" / f) for f in ("a0.3.csv", "a0.7.csv")]
    np.testing.assert_allclose(table["params.alpha"], [0.3, 0.7], rtol=1e-6)
    assert all((job_dir(tmp_path / "out", j) / "fit.png").stat().st_size > 0
               for j in table["job"])


def test_failing_job_is_reported_and_the_others_go_on(tmp_path, capsys):
    # x-min 1e7 is not below x-max 1e6: that job raises when it runs
    text = SIMULATE.replace("alpha = [0.3, 0.6]", "alpha = [0.3]").replace(
        "tau = [1, 2]", "tau = [1, 2]\nx-min = [100.0, 1e7]")
    spec, out = write(tmp_path, text), tmp_path / "out"
    assert quanta("sweep", "run", spec, "--out", out, "--max-parallel", "1",
                  "--no-progress") == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == (
        f"quanta sweep: error: 2 of 4 jobs failed (`quanta sweep status {out}` lists their "
        "errors; a re-run retries them)")
    assert "failed: alpha=0.3_tau=1_x_min=1e+07-" in captured.err
    assert "--x-min (1e+07) must be <" in captured.err
    doc = sweep.sweep_status(out)
    assert doc["counts"]["done"] == 2 and doc["counts"]["failed"] == 2
    bad = [j for j in doc["jobs"] if j["state"] == "failed"]
    assert [j["error"] for j in bad] == ["InputError: --x-min (1e+07) must be < --x-max "
                                         "(1e+06)"] * 2
    assert "Traceback" in (job_dir(out, bad[0]["job"]) / "log.txt").read_text()
    table, not_done = sweep.collect(out)
    assert list(table["x_min"]) == [100.0, 100.0]
    assert [n["job"] for n in not_done] == [j["job"] for j in bad]
    result = sweep.run(spec, out, progress=False)   # a re-run retries only the failed ones
    assert result["skipped"] == 2 and result["failed"] == 2
    assert [status(job_dir(out, j["job"]))["attempts"] for j in bad] == [2, 2]


def _done(out: Path) -> dict:
    return {p.parent.name: p for p in out.glob("jobs/*/status.json")
            if json.loads(p.read_text())["state"] == "done"}


def test_killed_driver_rerun_finishes_only_the_missing_jobs(tmp_path):
    text = SIMULATE.replace("K = 1000", "K = 10000").replace("reps = 20", "reps = 1000") \
        .replace("tau = [1, 2]", "tau = [1, 2, 3, 4]")
    spec, out = write(tmp_path, text), tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "quanta", "sweep", "run", str(spec),
                             "--out", str(out), "--max-parallel", "1", "--no-progress"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(_done(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {name: (p.read_bytes(), (p.parent / "result.json").read_bytes())
              for name, p in _done(out).items()}
    assert 3 <= len(before) < 8, "the driver must be killed mid-sweep"
    result = sweep.run(spec, out, progress=False)
    assert result["skipped"] == len(before) and result["done"] == 8 - len(before)
    for name, (st, res) in before.items():   # the jobs done before are untouched
        folder = out / "jobs" / name
        assert (folder / "status.json").read_bytes() == st
        assert (folder / "result.json").read_bytes() == res
    assert sweep.sweep_status(out)["counts"]["done"] == 8


PARITY = """command = "parity train"
[fixed]
n-tasks = 6
n-bits = 8
widths = [4, 16]
quiet = false
steps = 3
batch = 100
eval-points = 6
checkpoints = 4
test-per-task = 20
device = "cpu"
threads = 1
{extra}
[grid]
alpha = [0.4]
seeds = [0, 1]
"""


def test_paused_parity_job_resumes_from_its_checkpoint_exactly(tmp_path):
    from empirical.parity import train
    from quanta.commands.parity import config_from_args

    spec = sweep.load(write(tmp_path, PARITY.format(extra="time-limit = 0")))
    [job] = spec.jobs
    assert job.args["seeds"] == [0, 1] and job.args["widths"] == [4, 16]
    # a zero time limit pauses after every step: steps 1 and 2 pause, the third call ends
    results = [sweep.run(spec, tmp_path / "out", progress=False) for _ in range(3)]
    assert [(r["paused"], r["done"]) for r in results] == [(1, 0), (1, 0), (0, 1)]
    folder = job_dir(tmp_path / "out", job.id)
    log = (folder / "log.txt").read_text()
    assert re.search("resumed from .* at step 1", log)
    assert re.search("resumed from .* at step 2", log)
    # the same networks trained in one go, by the trainer's Python API
    command = registry.lookup("parity train")
    config = config_from_args(registry.parse(command, registry.argv(command, dict(
        job.args, out="."))))
    train(config, tmp_path / "straight")
    with np.load(tmp_path / "straight" / "metrics.npz") as a, \
            np.load(folder / "metrics.npz") as b:
        for key in a.files:
            if key != "wall_time":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    table, _ = sweep.collect(tmp_path / "out")
    assert sorted(zip(table["width"], table["seed"])) == [(4, 0), (4, 1), (16, 0), (16, 1)]


def test_second_driver_on_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with engine._lock(out):
        with pytest.raises(InputError, match="another `quanta sweep run` is running"):
            sweep.run(sweep.load(write(tmp_path, SIMULATE)), out, progress=False)


# ---------------------------------------------------------------- backends

def test_ray_backend_without_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    spec = write(tmp_path, SIMULATE)
    assert quanta("sweep", "run", spec, "--out", tmp_path / "o", "--backend", "ray") == 2
    assert capsys.readouterr().err.strip() == (
        "quanta sweep: error: ray is not installed: pip install 'quanta[ray]'")
    with pytest.raises(MissingExtraError):
        backends.run("ray", [backends.Task("x", False)], lambda *a: None)


def test_address_needs_the_ray_backend():
    with pytest.raises(InputError, match="--address names a Ray cluster"):
        backends.run("local", [], lambda *a: None, address="auto")


@pytest.mark.parametrize("gpu, cluster_gpus, expected", [
    (True, 8, {"num_gpus": 1, "num_cpus": 1}), (True, 0, {"num_gpus": 0, "num_cpus": 1}),
    (False, 8, {"num_gpus": 0, "num_cpus": 1})])
def test_parity_tasks_ask_ray_for_one_gpu_cpu_jobs_for_one_cpu(gpu, cluster_gpus, expected):
    assert backends.resources(backends.Task("x", gpu), cluster_gpus) == expected


@pytest.mark.parametrize("device, gpu", [("auto", True), ("cuda:1", True), ("cpu", False)])
def test_parity_jobs_want_a_gpu_unless_on_the_cpu(device, gpu):
    assert registry.lookup("parity train").gpu({"device": device}) is gpu
    assert registry.lookup("simulate").gpu({}) is False


def test_gpu_jobs_run_one_at_a_time_per_gpu_pinned_to_it(tmp_path, monkeypatch):
    lane = backends._Lane([], 1, gpu="5")
    try:
        assert lane.pool.submit(os.getenv, "CUDA_VISIBLE_DEVICES").result() == "5"
    finally:
        lane.pool.shutdown()
    # two (pretend) GPUs: the jobs wanting one share two single-worker pools
    monkeypatch.setattr(backends, "visible_gpus", lambda: ["3", "5"])
    spec = sweep.load(write(tmp_path, SIMULATE))
    out = tmp_path / "out"
    for job in spec.jobs:
        sweep.jobs.prepare(job_dir(out, job.id), job)
    tasks = [backends.Task(str(job_dir(out, j.id)), gpu=True) for j in spec.jobs]
    states = []
    backends.run_local(tasks, lambda task, result: states.append(result["state"]))
    assert states == ["done"] * 4
    assert len({status(Path(t.folder))["pid"] for t in tasks}) == 2
