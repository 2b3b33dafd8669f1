"""``quanta theory``: printed exponents, JSON interface, errors, plot and demo."""
import json

import pytest

import theory
from quanta import cli


def test_json_has_the_agreed_keys_and_exact_losses(capsys):
    code = cli.main(["theory", "--alpha", "0.4", "--tau", "2", "--n", "10", "100", "--D", "1e3", "1e9",
                     "--S", "1e3", "--batch", "100", "--json", "-"])
    assert code == 0
    out = capsys.readouterr()
    res = json.loads(out.out)
    assert "alpha_N = 0.4" in out.err  # the text report goes to stderr, stdout stays JSON
    assert {"alpha", "tau", "K", "alpha_N", "alpha_D", "alpha_S", "compute_optimal",
            "loss_n", "loss_D", "loss_S"} <= set(res)
    assert res["K"] is None and res["alpha"] == 0.4 and res["tau"] == 2
    assert res["alpha_D"] == pytest.approx(0.4 / 1.4)
    assert res["compute_optimal"]["N"] == pytest.approx(1 / 2.4)
    assert res["compute_optimal"]["D"] == pytest.approx(1.4 / 2.4)
    assert res["compute_optimal"]["L"] == pytest.approx(0.4 / 2.4)
    assert [r["x"] for r in res["loss_n"]] == [10, 100]
    assert res["loss_D"][1]["loss"] == pytest.approx(theory.expected_loss_D(1e9, 0.4, 2), rel=1e-12)
    assert res["loss_S"][0]["loss"] == pytest.approx(theory.expected_loss_D(1e5, 0.4, 2), rel=1e-12)


def test_rule_steps_reaches_the_step_rule_expectation(capsys):
    args = ["theory", "--alpha", "0.5", "--tau", "3", "--S", "10", "1000", "--batch", "64",
            "--json", "-"]
    got = {}
    for rule in ("samples", "steps"):
        assert cli.main(args + ["--rule", rule]) == 0
        got[rule] = [r["loss"] for r in json.loads(capsys.readouterr().out)["loss_S"]]
        assert got[rule] == pytest.approx(theory.expected_loss_S([10, 1000], 0.5, 64, 3, rule),
                                          rel=1e-12)
    assert got["steps"][0] > got["samples"][0]   # τ distinct steps is harder than τ samples


def test_finite_K_is_used_and_printed(capsys):
    assert cli.main(["theory", "--alpha", "1", "--K", "500", "--n", "500"]) == 0
    out = capsys.readouterr().out
    assert "K = 500" in out and "alpha_D = 0.5" in out
    # all 500 quanta learned: nothing left
    assert out.strip().splitlines()[-1].split() == ["500", "0"]


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "0.4", "--S", "10"], "--batch"),
    (["--alpha", "0"], "alpha"),
    (["--alpha", "0.4", "--tau", "0"], "tau"),
    (["--alpha", "0.4", "--K", "0"], "K"),
    (["--alpha", "0.4", "--D", "-5"], "D"),
])
def test_bad_input_is_a_one_line_error(capsys, argv, message):
    """Refused by the command (returns 2) or, for a count below 1, by argparse's type
    (exits 2): one line naming the argument either way."""
    try:
        status = cli.main(["theory", *argv])
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_plot_and_demo_write_files(tmp_path):
    assert cli.main(["theory", "--alpha", "0.4", "--plot", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 10_000
    from quanta.commands.theory import demo
    paths = demo(tmp_path / "out")
    assert sorted(p.name for p in paths) == ["theory.json", "theory.png"]
    res = json.loads((tmp_path / "out" / "theory.json").read_text())
    assert res["alpha"] == 0.4 and len(res["loss_D"]) == 16
