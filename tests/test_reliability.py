"""Issue #19's corpus: every bad input or fault a careful user tried, over every command.

Each case must end in exit status 2 (1 for a failed run) with a one-line message and no
traceback, or in a correct result, and must change no input file and no other run's folder.
The lost-data and race cases (an output onto its input, an export into another run, two
trainers on one ``--out``, two resumes of one run) failed before the fix: they were run
against main's commit 9f6b1e1 (the tree before this work) and failed there.
"""
import hashlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from quanta import cli

ROOT = Path(__file__).resolve().parents[1]
SOURCE_RUN = ROOT / "results" / "parity" / "qdg_source" / "alpha0.4"
#: a tiny parity sweep (2 networks, 300 steps: ~1 s on one core)
TINY = ["--n-tasks", "6", "--n-bits", "8", "--widths", "3", "7", "--steps", "300", "--batch",
        "100", "--eval-points", "8", "--checkpoints", "3", "--test-per-task", "8", "--device",
        "cpu", "--threads", "1", "--quiet"]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) and a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(argv, capsys) -> tuple[int, str]:
    """``quanta ARGV`` in this process: (exit status, stderr); argparse's usage errors
    (SystemExit) count as their status."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err


def assert_one_line(err: str, *words) -> None:
    lines = [line for line in err.strip().splitlines() if "warning:" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of inputs: a data table, a file, a parity run with checkpoints and a
    second (another user's) run."""
    base = tmp_path_factory.mktemp("inputs")
    (base / "victim.csv").write_text("N,loss\n1000,0.5\n3000,0.4\n10000,0.32\n30000,0.25\n"
                                     "100000,0.2\n300000,0.16\n")
    (base / "file").write_text("a file, not a folder\n")
    shutil.copytree(SOURCE_RUN, base / "run")
    shutil.copytree(SOURCE_RUN, base / "other")
    (base / "other" / "mine.txt").write_text("another run's notes\n")
    (base / "notes").mkdir()
    (base / "notes" / "a.txt").write_text("not a run\n")
    return base


def _paths(base: Path, tmp_path: Path) -> dict:
    return dict(csv=base / "victim.csv", file=base / "file", run=base / "run",
                other=base / "other", inputs=base, tmp=tmp_path)


# Each case: argv (formatted with the paths above), exit status, words of the message.
CASES = {
    # lost data
    "fit --json onto its own input": (
        ["fit", "{csv}", "--x", "N", "--y", "loss", "--json", "{csv}"], 2,
        ["--json", "input"]),
    "fit --plot onto its own input": (
        ["fit", "curve", "{csv}", "--x", "N", "--y", "loss", "--plot", "{csv}"], 2, ["--plot"]),
    "export into another run's folder": (
        ["parity", "export", "{run}", "{other}"], 2, ["another run", "--force"]),
    "export into the run itself": (["parity", "export", "{run}", "{run}"], 2, ["DEST"]),
    "export into a folder holding other files": (
        ["parity", "export", "{run}", "{inputs}/notes", "--force"], 2, ["no parity run"]),
    "analyze --json onto a run's metrics": (
        ["parity", "analyze", "{run}", "--json", "{run}/metrics.npz"], 2, ["--json"]),
    "qdg parity --npz onto a run's metrics": (
        ["qdg", "parity", "{run}", "--npz", "{run}/metrics.npz"], 2, ["--npz"]),
    "train over another run": (["parity", "train", "--out", "{other}", *TINY], 2,
                               ["already holds a run", "--force"]),
    # silent wrong answers
    "theory at alpha 1e-300": (["theory", "--alpha", "1e-300", "--n", "10"], 2, ["1e-300"]),
    "theory at alpha 1e-15": (["theory", "--alpha", "1e-15", "--n", "10"], 2, ["1e-15"]),
    "theory at alpha 1e3": (["theory", "--alpha", "1000", "--n", "10"], 2, ["above 20"]),
    "resume with default-valued flags that differ": (
        ["parity", "train", "--out", "{run}", "--resume", "--steps", "200000", "--batch",
         "20000"], 2, ["train.steps = 200000", "train.batch = 20000"]),
    # tracebacks: output paths
    "theory --json under a file": (
        ["theory", "--alpha", "0.4", "--json", "{file}/x.json"], 2, ["is a file"]),
    "fit --json onto a folder": (
        ["fit", "{csv}", "--x", "N", "--y", "loss", "--json", "{tmp}"], 2, ["is a folder"]),
    "simulate --plot under a file": (
        ["simulate", "--regime", "N", "--alpha", "0.4", "--reps", "2", "--plot",
         "{file}/x.png"], 2, ["--plot", "is a file"]),
    "qdg toy --json under a file": (
        ["qdg", "toy", "--alpha", "0.4", "--json", "{file}/x.json"], 2, ["is a file"]),
    "demo --out under a file": (["demo", "--out", "{file}/demo"], 2, ["--out", "is a file"]),
    "json and plot on one path": (
        ["theory", "--alpha", "0.4", "--n", "10", "--json", "{tmp}/o", "--plot", "{tmp}/o"], 2,
        ["same path"]),
    "a folder as the data file": (["fit", "{inputs}", "--x", "N", "--y", "loss"], 2,
                                  [str("{inputs}")]),
    # tracebacks: memory (refused before allocating)
    "theory tau 1e9 and D 1e18": (["theory", "--alpha", "0.4", "--tau", "1000000000",
                                   "--D", "1e18"], 2, ["tau = 1,000,000,000"]),
    "simulate 1e8 points": (["simulate", "--regime", "N", "--alpha", "0.4", "--points",
                             "100000000"], 2, ["memory", "--points"]),
    "simulate K 1e11": (["simulate", "--regime", "N", "--alpha", "0.4", "--K",
                         "100000000000"], 2, ["K"]),
    "qdg toy 1e6 samples": (["qdg", "toy", "--alpha", "0.4", "--samples", "1000000"], 2,
                            ["memory", "samples"]),
    # the hang: refused up front (or, with --allow-large, shown with a progress bar)
    "simulate 1e9 reps": (["simulate", "--regime", "D", "--alpha", "0.4", "--reps",
                           "1000000000"], 2, ["--reps"]),
    # argument checks, named
    "parity --device banana": (["parity", "train", "--out", "{tmp}/r", "--device", "banana"],
                               2, ["--device", "banana"]),
    "parity --threads -1": (["parity", "train", "--out", "{tmp}/r", "--threads", "-1"], 2,
                            ["--threads"]),
    "parity --threads 0": (["parity", "train", "--out", "{tmp}/r", "--threads", "0"], 2,
                           ["--threads"]),
    "parity --seeds -1": (["parity", "train", "--out", "{tmp}/r", "--seeds", "-1"], 2,
                          ["--seeds"]),
    "parity --lr 0": (["parity", "train", "--out", "{tmp}/r", "--lr", "0"], 2, ["--lr"]),
    "parity --out is a file": (["parity", "train", "--out", "{file}", *TINY], 2,
                               ["--out", "is a file"]),
    "export --max-evals 1": (["parity", "export", "{run}", "{tmp}/e", "--max-evals", "1"], 2,
                             ["--max-evals"]),
    "analyze --bootstrap 0": (["parity", "analyze", "{run}", "--method", "paper",
                               "--bootstrap", "0"], 2, ["--bootstrap"]),
    "qdg bias --reps 0": (["qdg", "bias", "--alphas", "0.4", "--dims", "8", "--sigmas", "0.1",
                           "--reps", "0", "--out", "{tmp}/b"], 2, ["--reps"]),
    "qdg toy --samples 0": (["qdg", "toy", "--alpha", "0.4", "--samples", "0"], 2,
                            ["--samples"]),
    "simulate --C 0": (["simulate", "--regime", "N", "--alpha", "0.4", "--C", "0"], 2,
                       ["--C"]),
    "simulate --reps 0": (["simulate", "--regime", "N", "--alpha", "0.4", "--reps", "0"], 2,
                          ["--reps"]),
    "simulate --seed -1": (["simulate", "--regime", "N", "--alpha", "0.4", "--seed", "-1"],
                           2, ["seed"]),
    "fit --level 1.5": (["fit", "{csv}", "--x", "N", "--y", "loss", "--level", "1.5"], 2,
                        ["--level"]),
    "fit --bootstrap -1": (["fit", "{csv}", "--x", "N", "--y", "loss", "--bootstrap", "-1"],
                           2, ["--bootstrap"]),
    "tokens generate --n-tokens 0": (["tokens", "generate", "{tmp}/t.npz", "--n-tokens", "0"],
                                     2, ["--n-tokens"]),
    "tokens analyze a missing file": (["tokens", "analyze", "{tmp}/none.npz"], 2,
                                      ["none.npz"]),
    "tokens analyze --level 0": (["tokens", "analyze", "{csv}", "--level", "0"], 2,
                                 ["--level"]),
    "report a missing input": (["report", "{tmp}/none.json", "--out", "{tmp}/r.html"], 2,
                               ["none.json"]),
    "report --out onto its input": (["report", "{csv}", "--out", "{csv}"], 2,
                                    ["--out", "that is the input {csv};"]),   # not its metavar
    "sweep run a missing spec": (["sweep", "run", "{tmp}/none.toml", "--out", "{tmp}/s"], 2,
                                 ["none.toml"]),
    "sweep status of no sweep": (["sweep", "status", "{tmp}"], 2, ["sweep.json"]),
    "sweep collect --table onto a run's metrics": (
        ["sweep", "collect", "{run}", "--table", "{run}/metrics.npz"], 2, ["--table"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(name, inputs, tmp_path, capsys):
    if name.startswith(("parity", "export", "train", "resume", "analyze", "qdg")):
        pytest.importorskip("torch")
    argv, status, words = CASES[name]
    paths = _paths(inputs, tmp_path)
    before = snapshot(inputs)
    got, err = run_cli([a.format(**paths) for a in argv], capsys)
    assert got == status, err
    assert_one_line(err, *[w.format(**paths) for w in words])
    assert snapshot(inputs) == before          # no input, no other run changed
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    status, err = run_cli(["theory", "--alpha", "0.4", "--json", tmp_path / "ro" / "x.json"],
                          capsys)
    assert status == 2
    assert_one_line(err, "permission denied")


def test_a_full_disk_is_one_line_and_leaves_the_old_outputs(tmp_path, capsys, monkeypatch):
    """ENOSPC while writing the plot: neither the JSON nor the plot is replaced."""
    import errno

    import common.files

    json_out, png = tmp_path / "o.json", tmp_path / "o.png"
    json_out.write_text("old"), png.write_text("old")
    real = common.files._stage_file

    def full(path, data):
        if Path(path).suffix == ".png":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(common.files, "_stage_file", full)
    status, err = run_cli(["theory", "--alpha", "0.4", "--n", "10", "100", "--json", json_out,
                           "--plot", png], capsys)
    assert status == 2
    assert_one_line(err, "disk is full")
    assert json_out.read_text() == "old" and png.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "o.png"]


# -------------------------------------------------------------------- parity run cases
def test_export_force_replaces_the_other_run_whole(inputs, tmp_path, capsys):
    pytest.importorskip("torch")
    other = tmp_path / "other"
    shutil.copytree(inputs / "other", other)
    (other / "mine.txt").unlink()
    stale = other / "checkpoints" / "step_99999999.pt"
    stale.write_bytes(b"an old checkpoint")
    status, err = run_cli(["parity", "export", inputs / "run", other, "--force",
                           "--checkpoints", "last"], capsys)
    assert status == 0, err
    assert not stale.exists()                 # replaced whole: none of the old files kept
    assert snapshot(other)["config.json"] == snapshot(inputs / "run")["config.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _nan_run(tmp_path: Path, which) -> Path:
    """A copy of the source run whose final losses of networks ``which`` are NaN, or
    negative (``which`` = (indices, value))."""
    run = tmp_path / "run"
    shutil.copytree(SOURCE_RUN, run, ignore=shutil.ignore_patterns("checkpoints"))
    with np.load(run / "metrics.npz") as f:
        m = dict(f)
    idx, value = which
    n = int(m["n_evals"])
    m["test_loss"][idx, n - 1] = value
    m["mean_test_loss"][idx, n - 1] = value
    np.savez(run / "metrics.npz", **m)
    return run


@pytest.mark.filterwarnings("default")      # as on the command line: shown, not raised
@pytest.mark.parametrize("value", [np.nan, -1.0])
def test_analyze_leaves_out_a_network_with_unusable_losses_and_names_it(tmp_path, capsys,
                                                                        value):
    pytest.importorskip("torch")
    run = _nan_run(tmp_path, ([0], value))
    status, err = run_cli(["parity", "analyze", run, "--json", tmp_path / "a.json"], capsys)
    assert status == 0, err
    report = json.loads((tmp_path / "a.json").read_text())["runs"][0]
    left_out = report["excluded_networks"]
    with np.load(run / "metrics.npz") as m:
        width, seed = int(m["widths"][0]), int(m["seeds"][0])
    assert [n["width"] for n in left_out] == [width]
    # named as the trainer's divergence names networks (train.network_name)
    assert "warning" in err and f"unusable losses: width {width}, seed {seed}:" in err


def test_analyze_of_all_nan_losses_says_so(tmp_path, capsys):
    pytest.importorskip("torch")
    run = _nan_run(tmp_path, (slice(None), np.nan))
    status, err = run_cli(["parity", "analyze", run], capsys)
    assert status == 2
    assert_one_line(err, "metrics.npz", "no network has usable test losses")


def test_training_to_nan_stops_with_status_1_naming_the_networks(tmp_path, capsys):
    pytest.importorskip("torch")
    status, err = run_cli(["parity", "train", "--out", tmp_path / "r", *TINY, "--lr", "1e30"],
                          capsys)
    assert status == 1
    assert_one_line(err, "diverged", "width 3, seed 0; width 7, seed 0")


@pytest.mark.filterwarnings("default")
def test_resume_falls_back_to_the_last_readable_checkpoint(tmp_path, capsys):
    pytest.importorskip("torch")
    from empirical.parity import load_run

    full, cut = tmp_path / "full", tmp_path / "cut"
    assert run_cli(["parity", "train", "--out", full, *TINY], capsys)[0] == 0
    shutil.copytree(full, cut)
    last = sorted((cut / "checkpoints").glob("step_*.pt"))[-1]
    last.write_bytes(last.read_bytes()[:100])            # a copy cut short
    status, err = run_cli(["parity", "train", "--out", cut, "--resume", *TINY], capsys)
    assert status == 0, err
    assert last.name in err and "last readable checkpoint" in err
    a, b = load_run(full).metrics, load_run(cut).metrics
    for key in a:
        if key != "wall_time":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_compares_given_flags_but_may_change_how_a_step_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "r"
    assert run_cli(["parity", "train", "--out", out, *TINY, "--time-limit", "0"],
                   capsys)[0] == 75
    before = snapshot(out)
    status, err = run_cli(["parity", "train", "--out", out, "--resume", "--steps", "200000",
                           "--batch", "20000"], capsys)       # the defaults, given
    assert status == 2
    assert_one_line(err, "train.steps = 200000 (saved: 300)", "train.batch = 20000 (saved: 100)")
    assert snapshot(out) == before
    status, err = run_cli(["parity", "train", "--out", out, "--resume", *TINY, "--step",
                           "manual"], capsys)
    assert status == 0, err
    assert json.loads((out / "config.json").read_text())["train"]["step"] == "manual"


def test_resume_while_the_run_is_locked_is_refused(inputs, tmp_path, capsys):
    """Two resumes of one run at once: the second is refused by the first's lock."""
    pytest.importorskip("torch")
    from common.files import FolderLock

    run = tmp_path / "run"
    shutil.copytree(inputs / "run", run)
    before = snapshot(run)
    with FolderLock(run, "quanta parity train --resume"):
        for argv in (["parity", "train", "--out", run, "--resume"],
                     ["parity", "export", run, tmp_path / "e"]):
            status, err = run_cli(argv, capsys)
            assert status == 2
            assert_one_line(err, "in use by PID", str(os.getpid()))
    assert snapshot(run) == before and not (tmp_path / "e").exists()


# ------------------------------------------------------------------ processes: races, kills
def test_two_trainers_on_one_out_one_wins_and_nothing_is_lost(tmp_path, monkeypatch):
    """Two trainers started together on one --out, config.json's existence check and its
    writing 1 s apart (so both check before either writes): one trains, the other is
    refused; the run left is whole and is the winner's. (Threads of one process: the lock
    is an flock of the lock file, which two opens of it contend for as two processes
    would.)"""
    pytest.importorskip("torch")
    import threading

    trainer = importlib.import_module("empirical.parity.train")
    from common.errors import InputError
    from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig, load_run

    real = trainer.atomic_write

    def slow(path, data):
        if Path(path).name == "config.json":
            time.sleep(1.0)
        return real(path, data)
    monkeypatch.setattr(trainer, "atomic_write", slow)
    out, outcome = tmp_path / "r", {}

    def trainer_with(seed):
        config = RunConfig(TaskConfig(n_tasks=6, n_bits=8, k=3), ModelConfig(widths=[3, 7]),
                           TrainConfig(steps=20, batch=100, seeds=[seed], eval_points=5,
                                       checkpoints=2, test_per_task=8, device="cpu"))
        try:
            trainer.train(config, out)
            outcome[seed] = "done"
        except InputError as err:
            outcome[seed] = str(err)
    threads = [threading.Thread(target=trainer_with, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winners = [s for s, o in outcome.items() if o == "done"]
    assert len(outcome) == 2 and len(winners) == 1, outcome
    loser = outcome[1 - winners[0]]
    assert "in use by" in loser or "already holds a run" in loser
    assert trainer.is_complete(out) and load_run(out).config.train.seeds == winners


def _quanta(args, code=""):
    script = code + "\nimport sys\nfrom quanta.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def test_sigint_exits_130_quietly_and_leaves_no_partial_output(tmp_path):
    """Ctrl-C while the Monte Carlo kernel runs (its progress bar is up): exit 130, one
    line, the old output kept, no temporary file left."""
    import threading

    out = tmp_path / "o.json"
    out.write_text("old")
    proc = _quanta(["simulate", "--regime", "D", "--alpha", "0.4", "--reps", "200000",
                    "--allow-large", "--json", out])
    err, running = [], threading.Event()

    def read():
        for chunk in iter(lambda: proc.stderr.read(1), ""):
            err.append(chunk)
            if "realization" in "".join(err[-40:]):
                running.set()
    threading.Thread(target=read, daemon=True).start()
    assert running.wait(120), "".join(err)
    proc.send_signal(signal.SIGINT)
    status = proc.wait(timeout=60)
    time.sleep(0.2)
    text = "".join(err)
    assert status == 130, text
    assert "Traceback" not in text and "interrupted" in text
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["o.json"]
