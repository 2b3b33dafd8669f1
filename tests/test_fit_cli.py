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
