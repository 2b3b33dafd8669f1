"""``quanta fit``'s actions: ``curve`` (the default), ``literature`` and ``sizes``, each a
real argparse sub-command with only its own flags."""
import json

import numpy as np
import pytest

from quanta import cli
from quanta.commands import fit as fit_command


def _table(path, seed=0):
    rng = np.random.default_rng(seed)
    x = np.geomspace(10, 1e4, 10)
    y = 2 * x ** -0.4 * np.exp(0.01 * rng.standard_normal(x.size))
    path.write_text("N,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(x, y)))
    return path


def _json(argv, capsys):
    assert cli.main(argv + ["--json", "-"]) == 0
    return json.loads(capsys.readouterr().out)


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_curve_is_the_default_action(tmp_path, capsys):
    data = str(_table(tmp_path / "t.csv"))
    flags = ["--x", "N", "--y", "loss", "--bootstrap", "30", "--seed", "4"]
    plain = _json(["fit", data, *flags], capsys)
    assert plain == _json(["fit", "curve", data, *flags], capsys)
    # flags before DATA: the word after 'fit' is a flag, not an action
    assert plain == _json(["fit", *flags, data], capsys)
    assert plain["form"] == "power" and plain["source"] == data


@pytest.mark.parametrize("name", fit_command.ACTIONS)
def test_a_file_named_like_an_action_can_be_fitted(tmp_path, capsys, monkeypatch, name):
    """A data file literally named 'sizes' (or 'curve', 'literature'): ``fit curve NAME``
    and ``fit ./NAME`` fit it; ``fit NAME`` is the action."""
    monkeypatch.chdir(tmp_path)
    _table(tmp_path / name)
    flags = ["--x", "N", "--y", "loss", "--bootstrap", "0"]
    named = _json(["fit", "curve", name, *flags], capsys)
    dotted = _json(["fit", f"./{name}", *flags], capsys)
    assert named["params"] == dotted["params"] and named["source"] == name


@pytest.mark.parametrize("argv, words", [
    (["fit", "sizes", "s.csv", "--x", "N"], "quanta fit sizes: error: unrecognized arguments: --x"),
    (["fit", "sizes", "s.csv", "--form", "offset"], "quanta fit sizes: error: unrecognized"),
    (["fit", "t.csv", "--x", "N", "--y", "loss", "--column", "c"],
     "quanta fit curve: error: unrecognized arguments: --column"),
    (["fit", "literature", "--bootstrap", "5"],
     "quanta fit literature: error: unrecognized arguments: --bootstrap"),
    (["fit", "literature", "extra.csv"], "quanta fit literature: error: unrecognized"),
    (["fit", "t.csv", "--y", "loss"], "quanta fit curve: error: the following arguments are "
                                      "required: --x"),
    (["fit", "sizes"], "quanta fit sizes: error: the following arguments are required: SIZES"),
    (["fit"], "quanta fit: error: the following arguments are required: ACTION"),
])
def test_each_action_refuses_what_it_does_not_read(capsys, argv, words):
    assert words in _usage_error(argv, capsys)


def test_actions_read_their_own_flags(tmp_path, capsys):
    sizes = tmp_path / "s.csv"
    sizes.write_text("s\n" + "".join(f"{v:g}\n" for v in np.round(1e4 * np.arange(1, 80.0) ** -1.4)))
    out = _json(["fit", "sizes", str(sizes), "--method", "ols", "--rank-window", "1", "40",
                 "--bootstrap", "40", "--level", "0.9", "--seed", "2"], capsys)
    assert out["method"] == "ols" and out["n_bootstrap"] == 40 and out["level"] == 0.9
    assert out["alpha_hat"] == pytest.approx(0.4, abs=0.05) and out["source"] == str(sizes)
    lit = _json(["fit", "literature"], capsys)
    assert lit["n_points"] == 16


def test_help_names_the_actions_and_the_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    text = capsys.readouterr().out
    assert all(a in text for a in fit_command.ACTIONS) and "quanta fit curve DATA" in text


def _broken_curve(path, seed=0):
    """A smoothly broken curve (Caballero et al.'s law, one break, with an offset) with 1 %
    log-normal noise, written as a CSV of D and loss."""
    rng = np.random.default_rng(seed)
    D = np.geomspace(1e3, 1e9, 30)
    loss = 1.5 + 30 * D ** -0.1 * (1 + (D / 1e6) ** 2.0) ** (-0.4 * 0.5)
    loss = loss * np.exp(0.01 * rng.standard_normal(D.size))
    path.write_text("D,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(D, loss)))
    return path, D, loss


def test_bnsl_holdout_predicts_the_held_back_points(tmp_path, capsys):
    """The issue's check: ``--form bnsl --holdout 3 --json -`` reports the holdout block,
    and the three largest sizes of a smoothly broken curve are predicted within 5 %."""
    data, D, loss = _broken_curve(tmp_path / "curve.csv")
    out = _json(["fit", str(data), "--x", "D", "--y", "loss", "--form", "bnsl",
                 "--holdout", "3", "--bootstrap", "200"], capsys)
    hold = out["holdout"]
    assert {"x", "observed", "predicted", "lower", "upper", "rel_error", "rmsle"} <= set(hold)
    assert hold["x"] == D[-3:].tolist() and hold["observed"] == loss[-3:].tolist()
    rel = np.array(hold["rel_error"])
    assert np.all(np.abs(rel) < 0.05), rel
    np.testing.assert_allclose(rel, np.array(hold["predicted"]) / loss[-3:] - 1, rtol=1e-12)
    assert hold["rmsle"] == pytest.approx(np.sqrt(np.mean(np.log1p(rel) ** 2)), rel=1e-12)
    assert all(lo < p < hi for lo, p, hi in zip(hold["lower"], hold["predicted"], hold["upper"]))
    assert out["n_points"] == 27 and len(out["data"]["x"]) == 27


def test_predict_prints_and_writes_bands(tmp_path, capsys):
    data, _, _ = _broken_curve(tmp_path / "curve.csv")
    assert cli.main(["fit", str(data), "--x", "D", "--y", "loss", "--form", "bnsl",
                     "--bootstrap", "100", "--predict", "1e10", "1e11", "--json", "-",
                     "--plot", str(tmp_path / "p.png")]) == 0
    captured = capsys.readouterr()
    pred = json.loads(captured.out)["predictions"]
    assert pred["x"] == [1e10, 1e11] and pred["interval"] == "observation"
    assert all(lo < p < hi for lo, p, hi in zip(pred["lower"], pred["predicted"], pred["upper"]))
    assert "predictions (the band: where a new observation should fall)" in captured.err
    assert (tmp_path / "p.png").stat().st_size > 0


def _joint_table(path, seed=0, n=40):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), n))
    L = (1.69 + 406.4 * N ** -0.3 + 410.7 * D ** -0.3) * np.exp(0.005 * rng.standard_normal(n))
    path.write_text("N,D,loss\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(N, D, L)))
    return path


def test_tie_fix_and_joint_predictions_from_the_command_line(tmp_path, capsys):
    data = str(_joint_table(tmp_path / "nd.csv"))
    flags = ["--x", "N", "--x2", "D", "--y", "loss", "--bootstrap", "50"]
    tied = _json(["fit", data, *flags, "--tie", "alpha=beta", "--fix", "E=1.69",
                  "--predict", "7e10,1.4e12"], capsys)
    assert tied["params"]["alpha"] == tied["params"]["beta"] and tied["params"]["E"] == 1.69
    assert tied["config"]["tie"] == ["alpha=beta"] and tied["config"]["fix"] == {"E": 1.69}
    assert tied["constraints"] == "beta = alpha (tied); E = 1.69 (fixed)"
    assert tied["predictions"]["x2"] == [1.4e12]
    assert tied["derived"]["N_opt_exponent"]["value"] == pytest.approx(0.5)
    for bad, words in ((["--predict", "7e10"], "each an N,D pair"),
                       (["--tie", "alpha=A"], "a prefactor cannot equal an exponent"),
                       (["--breaks", "2"], "--breaks: only the bnsl form has breaks")):
        assert cli.main(["fit", data, *flags, *bad]) == 2
        assert words in capsys.readouterr().err


def test_compute_is_a_variable(tmp_path, capsys):
    C = np.geomspace(1e18, 1e23, 12)
    path = tmp_path / "c.csv"
    path.write_text("C,loss\n" + "".join(f"{c},{2 + 1e3 * c ** -(0.4 / 2.4)}\n" for c in C))
    out = _json(["fit", str(path), "--x", "C", "--y", "loss", "--form", "offset",
                 "--bootstrap", "0"], capsys)
    assert set(out["alpha_implied"]) == {"C"}
    assert out["alpha_implied"]["C"]["value"] == pytest.approx(0.4, rel=1e-4)


def test_group_fits_each_group_into_one_document(tmp_path, capsys):
    """``--group``: one fit per group; the JSON maps each group to a fit document with the
    usual keys; one table on the terminal, one figure."""
    rng = np.random.default_rng(1)
    N = np.geomspace(1e6, 1e9, 10)
    rows = [(n, 1.7 + a * n ** -0.34 * np.exp(0.01 * rng.standard_normal()), name)
            for name, a in (("c4", 400.0), ("pile", 600.0)) for n in N]
    path = tmp_path / "g.tsv"
    path.write_text("N\tloss\tdataset\n" + "".join(f"{n}\t{v}\t{d}\n" for n, v, d in rows))
    assert cli.main(["fit", str(path), "--x", "N", "--y", "loss", "--form", "offset",
                     "--group", "dataset", "--bootstrap", "40", "--holdout", "2", "--json", "-",
                     "--plot", str(tmp_path / "g.png")]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["group_by"] == "dataset" and set(out["groups"]) == {"c4", "pile"}
    for name, doc in out["groups"].items():
        assert {"form", "params", "ci", "holdout", "data", "source"} <= set(doc)
        assert doc["selection"]["group"] == {"column": "dataset", "value": name}
        assert doc["n_points"] == 8
    assert out["groups"]["pile"]["params"]["A"] > out["groups"]["c4"]["params"]["A"]
    assert "offset fits by dataset (2 groups)" in captured.err
    assert "held out [c4]:" in captured.err
    assert (tmp_path / "g.png").stat().st_size > 0


def test_consistency_reads_saved_fits_against_the_model(tmp_path, capsys):
    data = str(_joint_table(tmp_path / "nd.csv"))
    joint = tmp_path / "joint.json"
    assert cli.main(["fit", data, "--x", "N", "--x2", "D", "--y", "loss", "--bootstrap", "60",
                     "--json", str(joint), "--plot", str(tmp_path / "joint.png")]) == 0
    capsys.readouterr()
    assert (tmp_path / "joint.png").stat().st_size > 0      # fit, residuals, against compute
    out = _json(["fit", "consistency", str(joint)], capsys)
    saved = json.loads(joint.read_text())
    assert out["alpha_N"] == saved["params"]["alpha"] and out["paired"] is True
    assert out["alpha_D"] == saved["params"]["beta"]
    # two separate fits, L(N) then L(D)
    x = np.geomspace(1e6, 1e9, 10)
    for name, e in (("N", 0.4), ("D", 0.4 / 1.4)):
        (tmp_path / f"{name}.csv").write_text(f"{name},loss\n" + "".join(
            f"{v},{3 * v ** -e * (1 + 0.01 * np.sin(v))}\n" for v in x))
        assert cli.main(["fit", str(tmp_path / f"{name}.csv"), "--x", name, "--y", "loss",
                         "--bootstrap", "50", "--json", str(tmp_path / f"{name}.json")]) == 0
    capsys.readouterr()
    out = _json(["fit", "consistency", str(tmp_path / "N.json"), str(tmp_path / "D.json")],
                capsys)
    assert out["paired"] is False and out["gap"] == pytest.approx(0.0, abs=0.01)
    assert out["alpha_from_N"] == pytest.approx(out["alpha_from_D"], abs=0.02)
    no_boot = tmp_path / "nb.json"
    assert cli.main(["fit", data, "--x", "N", "--x2", "D", "--y", "loss", "--bootstrap", "0",
                     "--json", str(no_boot)]) == 0
    capsys.readouterr()
    assert cli.main(["fit", "consistency", str(no_boot)]) == 2
    assert "the fit has no bootstrap" in capsys.readouterr().err


def test_the_command_offers_every_form_the_library_fits():
    from fit.forms import FORMS

    assert set(fit_command.FORMS) == set(FORMS)


def test_the_chinchilla_runs_as_published_from_the_command_line(capsys):
    """The shipped Chinchilla table (model size, training FLOP, loss; fit/data/README.md) as
    a user holds it: D made from the columns, the 240 runs Besiroglu et al. 2024 fit kept
    (the five highest losses, above 3.44, left out). Their eq. 3: alpha = 0.3478,
    beta = 0.3658, E = 1.82, so the compute-optimal a = beta/(alpha+beta) = 0.513."""
    from pathlib import Path

    data = Path(fit_command.__file__).resolve().parents[2] / "fit/data/chinchilla-svg-extracted.csv"
    out = _json(["fit", str(data), "--x", "Model Size", "--x2", "D", "--y", "loss",
                 "--assign", "D = `Training FLOP` / (6 * `Model Size`)",
                 "--where", "loss < 3.44", "--bootstrap", "0"], capsys)
    assert out["selection"]["rows"] == {"read": 245, "selected": 240, "dropped_missing": 0,
                                        "used": 240, "held_out": 0, "fitted": 240}
    assert out["params"]["alpha"] == pytest.approx(0.3478, abs=0.002)
    assert out["params"]["beta"] == pytest.approx(0.3658, abs=0.002)
    assert out["params"]["E"] == pytest.approx(1.82, abs=0.01)
    assert out["derived"]["N_opt_exponent"]["value"] == pytest.approx(0.3658 / 0.7136, abs=0.003)


def test_breaks_sets_the_bnsl_breaks(tmp_path, capsys):
    D = np.geomspace(1e2, 1e10, 40)
    loss = 0.8 + 8 * D ** -0.05 * (1 + (D / 1e4) ** (1 / 0.3)) ** (-0.3 * 0.3) \
        * (1 + (D / 1e7) ** (1 / 0.8)) ** (-0.4 * 0.8)
    path = tmp_path / "two.csv"
    path.write_text("D,loss\n" + "".join(f"{a},{b}\n" for a, b in zip(D, loss)))
    out = _json(["fit", str(path), "--x", "D", "--y", "loss", "--form", "bnsl", "--breaks", "2",
                 "--bootstrap", "0"], capsys)
    assert out["config"]["breaks"] == 2 and {"c2", "d2", "f2"} <= set(out["params"])
    assert out["derived"]["alpha_final"]["value"] == pytest.approx(0.05 + 0.3 + 0.4, rel=1e-4)
    bnsl = ["fit", str(path), "--x", "D", "--y", "loss", "--form", "bnsl", "--breaks"]
    for bad, words in (("0", "argument --breaks: must be an integer >= 1, got 0"),
                       ("1.5", "argument --breaks: an integer >= 1 expected, got '1.5'")):
        assert words in _usage_error(bnsl + [bad], capsys)
    assert cli.main(bnsl + ["6"]) == 2
    assert "breaks must be an integer from 1 to 5, got 6" in capsys.readouterr().err


def test_holdout_counts_the_held_out_rows(tmp_path, capsys):
    """--holdout 3 of 10 rows: the rows line and the JSON say 3 held out, 7 fitted ('used'
    keeps its meaning: the rows selected, held-out ones included)."""
    data = str(_table(tmp_path / "l.csv"))
    assert cli.main(["fit", data, "--x", "N", "--y", "loss", "--holdout", "3",
                     "--bootstrap", "0", "--json", "-"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "rows: 10 read, 3 held out, 7 fitted" in captured.err
    assert "held out: the 3 largest sizes" in captured.err
    assert out["n_points"] == 7 and len(out["holdout"]["x"]) == 3
    assert out["selection"]["rows"] == {"read": 10, "selected": 10, "dropped_missing": 0,
                                        "used": 10, "held_out": 3, "fitted": 7}


def test_a_joint_holdout_says_it_holds_out_the_largest_compute(tmp_path, capsys):
    data = str(_joint_table(tmp_path / "nd.csv", n=20))
    assert cli.main(["fit", data, "--x", "N", "--x2", "D", "--y", "loss", "--holdout", "4",
                     "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "held out: the 4 largest by N·D (compute)" in out and "largest sizes" not in out


@pytest.mark.parametrize("args, message", [
    (["--predict", "7e10,1.4e12"], "--predict 7e10,1.4e12: a pair was given, but the power "
                                   "form has one variable and takes one size per value"),
    (["--holdout", "8"], "--holdout 8 leaves 2 of 10 points; the power law needs at least 3"),
    (["--holdout", "7", "--form", "offset"],
     "--holdout 7 leaves 3 of 10 points; the offset law needs at least 4"),
])
def test_prediction_and_holdout_refusals_say_what_was_given(tmp_path, capsys, args, message):
    data = str(_table(tmp_path / "l.csv"))
    assert cli.main(["fit", data, "--x", "N", "--y", "loss", "--bootstrap", "0", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
