"""``quanta simulate``: JSON interface, plot, one-line errors, demo."""
import json
import subprocess
import sys

import pytest

from quanta.cli import main


def test_json_holds_config_points_and_exponents(tmp_path):
    out, plot = tmp_path / "sim.json", tmp_path / "sim.png"
    code = main(["simulate", "--regime", "D", "--alpha", "0.4", "--K", "20000", "--reps", "60",
                 "--x-min", "1e2", "--x-max", "1e8", "--points", "12", "--json", str(out),
                 "--plot", str(plot)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["config"]["alpha"] == 0.4 and doc["config"]["reps"] == 60
    assert len(doc["points"]) == 12
    assert set(doc["points"][0]) == {"x", "mean", "sem", "theory"}
    assert doc["points"][0]["x"] == 100 and doc["points"][-1]["x"] == 1e8
    assert abs(doc["theory_exponent"] - 0.4 / 1.4) < 1e-12
    assert abs(doc["exponent"] - doc["theory_exponent"]) < 0.02
    assert plot.stat().st_size > 10_000


@pytest.mark.parametrize("regime, extra", [
    ("S", ["--batch", "8", "--rule", "steps", "--x-max", "1e5"]),
    ("N", ["--x-max", "1e3"]),
    ("N", ["--x-max", "1e3", "--noisy", "--D", "1e5"]),
])
def test_other_regimes_write_json_to_stdout(capsys, regime, extra):
    code = main(["simulate", "--regime", regime, "--alpha", "0.8", "--K", "5000", "--reps",
                 "20", "--points", "6", "--json", "-", *extra])
    assert code == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["config"]["regime"] == regime and len(doc["points"]) <= 6
    assert "exponent" in out.err  # the text report goes to stderr, stdout stays JSON


@pytest.mark.parametrize("args, word", [
    (["--alpha", "0"], "alpha"),
    (["--alpha", "-0.5"], "alpha"),
    (["--alpha", "0.4", "--tau", "0"], "tau"),
    (["--alpha", "0.4", "--reps", "0"], "reps"),
    (["--alpha", "0.4", "--K", "0"], "K"),
    (["--alpha", "0.4", "--x-min", "1e5", "--x-max", "1e3"], "x-min"),
    (["--alpha", "0.4", "--x-min", "1e3", "--x-max", "1e3"], "x-min"),
    (["--alpha", "0.4", "--regime", "S", "--batch", "0"], "batch"),
    (["--alpha", "0.4", "--regime", "N", "--K", "0"], "--K"),
    (["--alpha", "0.4", "--N", "inf"], "N must be a finite"),
    (["--alpha", "0.4", "--regime", "N", "--noisy", "--D", "1e19"], "2^62"),
    (["--alpha", "0.4", "--regime", "N", "--noisy", "--D", "1.5"], "D must be an integer"),
    (["--alpha", "0.4", "--D", "1000"], "noisy"),
    (["--alpha", "70"], "alpha = 70 is above 20"),   # theory.zipf.ALPHA_MAX
    # the flags' own ranges are their argparse types (quanta.io.count, positive, seed) ...
    (["--alpha", "0.4", "--C", "0"], "argument --C: must be a finite number > 0"),
    (["--alpha", "0.4", "--C", "nan"], "argument --C: must be a finite number > 0"),
    (["--alpha", "0.4", "--reps", "1.5"], "argument --reps: an integer >= 1 expected"),
    (["--alpha", "0.4", "--points", "1"], "argument --points: must be an integer >= 2"),
    (["--alpha", "0.4", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
    # ... and simulate.check_run refuses the rest: a run that does not fit in memory
    (["--alpha", "0.4", "--reps", "10000000000000"],
     "lower reps (--reps) or the number of grid points (--points)"),
])
def test_bad_input_is_one_line_error(capsys, args, word):
    argv = ["simulate", "--reps", "2", *args]
    if "--regime" not in args:
        argv += ["--regime", "D"]
    try:
        status = main(argv)
    except SystemExit as usage:     # argparse's refusal of a flag's value
        status = usage.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err and "Traceback" not in err


def test_bad_input_exits_with_status_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "quanta", "simulate", "--regime", "D",
                           "--alpha", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_demo_writes_three_figures_and_json(tmp_path):
    from quanta.commands.simulate import demo

    paths = demo(tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["simulate.json", "simulate_D.png", "simulate_N.png", "simulate_S.png"]
    doc = json.loads((tmp_path / "simulate.json").read_text())
    for regime in "DSN":
        assert abs(doc[regime]["exponent"] - doc[regime]["theory_exponent"]) < 0.01
