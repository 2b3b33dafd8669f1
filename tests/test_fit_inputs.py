"""Bad input is refused with one line naming the column or row, in the library and the CLI."""
import json

import numpy as np
import pytest

import fit
from quanta import cli

GOOD = "N,D,loss\n" + "\n".join(f"{n},{d},{2 + 50 * n ** -0.3 + 60 * d ** -0.3}"
                                for n, d in [(1e6, 1e8), (3e6, 1e9), (1e7, 1e8), (3e7, 1e10),
                                             (1e8, 1e9), (3e8, 1e10), (1e9, 1e11),
                                             (3e9, 1e9)]) + "\n"


@pytest.mark.parametrize("x, y, kwargs, message", [
    ([1, 2, np.nan, 4], [1, 2, 3, 4], {}, "x, row 3: is NaN"),
    ([1, 2, 3, 4], [1, -2, 3, 4], {}, "y, row 2: is not positive (-2)"),
    ([1, 0, 3, 4], [1, 2, 3, 4], {}, "x, row 2: is not positive (0)"),
    ([1, 2, 3, np.inf], [1, 2, 3, 4], {}, "x, row 4: is infinite"),
    ([1, 2], [3, 4], {"form": "offset"}, "2 points for 3 parameters"),
    ([5, 5, 5, 5], [1, 2, 3, 4], {}, "x: a single distinct value"),
    ([1, 2, 3], [1, 2, 3, 4], {}, "y has 4 values but x has 3"),
    (["a", 2, 3], [1, 2, 3], {}, "x: not numeric"),
])
def test_library_refuses_bad_input_with_one_line(x, y, kwargs, message):
    form = kwargs.pop("form", "power")
    with pytest.raises(ValueError) as err:
        fit.fit(form, x, y, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(form="chinchilla"), "needs x2"),
    (dict(form="power", x2=[1, 2, 3, 4]), "has one variable"),
    (dict(form="cubic"), "form must be one of"),
    (dict(form="power", level=1.5), "level must lie in (0, 1)"),
    (dict(form="power", bootstrap_method="jackknife"), "bootstrap_method must be one of"),
    (dict(form="chinchilla", x2=[1, 1, 1, 1, 1, 1, 1]), "x2: a single distinct value"),
])
def test_library_refuses_bad_options(kwargs, message):
    form = kwargs.pop("form")
    n = len(kwargs.get("x2", [1, 2, 3, 4]))
    x = np.arange(1, n + 1, dtype=float)
    with pytest.raises(ValueError, match=None) as err:
        fit.fit(form, x, 1 / x, **kwargs)
    assert message in str(err.value)


def _run_cli(tmp_path, capsys, text, *args):
    path = tmp_path / "data.csv"
    path.write_text(text)
    code = cli.main(["fit", str(path), *args])
    return code, capsys.readouterr()


@pytest.mark.parametrize("edit, args, message", [
    (lambda t: t, ["--x", "N", "--y", "logloss"], "no column 'logloss' (columns: N, D, loss)"),
    (lambda t: t.replace("1000000.0,", "abc,", 1), ["--x", "N", "--y", "loss"],
     "data.csv: column 'N', row 1: not a number ('abc')"),
    (lambda t: t.replace("\n3000000.0,", "\n,", 1), ["--x", "N", "--y", "loss"],
     "data.csv: column 'N', row 2: missing value (1 row with one); drop such rows with "
     "--dropna"),
    (lambda t: t.replace("\n10000000.0,", "\n-1,", 1), ["--x", "N", "--y", "loss"],
     "data.csv: column 'N', row 3: is not positive (-1)"),
    (lambda t: "\n".join(t.splitlines()[:3]) + "\n",
     ["--x", "N", "--x2", "D", "--y", "loss", "--form", "chinchilla"],
     "2 points for 5 parameters"),
    (lambda t: "N,loss\n" + "".join(f"7,{v}\n" for v in (1, 2, 3, 4)), ["--x", "N", "--y", "loss"],
     "data.csv: column 'N': a single distinct value"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, edit, args, message):
    """Each refusal is one line; a bad value names the file, its column and its row."""
    code, out = _run_cli(tmp_path, capsys, edit(GOOD), *args, "--bootstrap", "0")
    assert code == 2
    err = out.err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_missing_file_is_one_line(tmp_path, capsys):
    code = cli.main(["fit", str(tmp_path / "nope.csv"), "--x", "N", "--y", "loss"])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_cli_fit_writes_the_json_interface(tmp_path, capsys):
    out = tmp_path / "fit.json"
    plot = tmp_path / "fit.png"
    code, printed = _run_cli(tmp_path, capsys, GOOD, "--x", "N", "--y", "loss",
                             "--form", "offset", "--bootstrap", "50", "--json", str(out),
                             "--plot", str(plot))
    assert code == 0 and "Scaling-law fit: offset" in printed.out
    d = json.loads(out.read_text())
    for key in ("form", "params", "ci", "stderr", "n_points", "aic", "bic",
                "n_failed_bootstrap", "alpha_implied"):
        assert key in d, key
    assert set(d["params"]) == {"E", "A", "alpha"} and d["n_points"] == 8
    assert set(d["alpha_implied"]) == {"N"}          # --x N: x is the parameter count
    assert plot.stat().st_size > 0


def test_parquet_input(tmp_path, capsys):
    import pandas as pd

    x = np.geomspace(10, 1e4, 12)
    pd.DataFrame({"D": x, "loss": 2 * x ** -0.3}).to_parquet(tmp_path / "d.parquet")
    code = cli.main(["fit", str(tmp_path / "d.parquet"), "--x", "D", "--y", "loss",
                     "--bootstrap", "0", "--json", "-"])
    out = capsys.readouterr().out
    d = json.loads(out)                              # --json -: stdout is the JSON alone
    assert code == 0
    assert d["params"]["alpha"] == pytest.approx(0.3, rel=1e-9)
    assert set(d["alpha_implied"]) == {"D"}
    assert d["alpha_implied"]["D"]["value"] == pytest.approx(0.3 / 0.7, rel=1e-9)


def test_too_few_distinct_sizes_for_the_form_are_refused():
    """Six points on two sizes determine a power law (2 parameters) but not an offset law
    (3): refused, where the fit used to return a wrong exponent with a narrow interval."""
    import fit
    rng = np.random.default_rng(0)
    x = np.repeat([1e2, 1e4], 3)
    y = (1 + 5 * x ** -0.5) * np.exp(rng.normal(0, 0.01, 6))
    assert fit.power_law(x, y).params["alpha"] > 0
    with pytest.raises(ValueError, match="2 distinct sizes for a law of 3 parameters"):
        fit.offset_power_law(x, y)


def test_pairs_resamples_on_too_few_sizes_count_as_failed():
    import fit
    from fit.core import _distinct_sizes
    x = np.geomspace(10, 1e4, 4)
    W = np.array([[4, 0, 0, 0], [2, 2, 0, 0], [1, 1, 1, 1]], float)
    assert _distinct_sizes((np.log(x),), W).tolist() == [1, 2, 4]
    # an offset law on 4 exact points: a resample holds fewer than 3 of the sizes with
    # probability (4 + 84)/256 = 0.34 (69 of 200 expected, 40 is 4 sd below); those count as
    # failed refits, so every kept draw is determined and gives the true 0.5
    y = 1 + 3 * x ** -0.5
    res = fit.offset_power_law(x, y, bootstrap=200, seed=0)
    assert 40 <= res.n_failed_bootstrap < 200
    lo, hi = res.conf_int().loc["alpha"]
    assert lo == pytest.approx(0.5, abs=1e-6) and hi == pytest.approx(0.5, abs=1e-6)


def test_options_that_would_do_nothing_are_refused():
    import fit
    x = np.geomspace(10, 1e4, 8)
    y = 3 * x ** -0.5
    with pytest.raises(ValueError, match="power form"):
        fit.power_law(x, y, bounds={"alpha": (0.6, 1.0)})
    with pytest.raises(ValueError, match="jackknife"):
        fit.offset_power_law(x, 1 + y, bootstrap=20, ci_method="bca", jackknife=False)
    for bad in (True, 0.9, -1):
        with pytest.raises(ValueError, match="bootstrap"):
            fit.power_law(x, y, bootstrap=bad)


def test_cli_refuses_flags_the_chosen_fit_does_not_read(tmp_path, capsys):
    """A flag of another action is refused by argparse, naming the action; a flag the
    chosen method does not read (--rank-window with mle) by the library, in one line."""
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("count\n" + "\n".join(str(int(1000 / k)) for k in range(1, 60)))
    table = tmp_path / "t.csv"
    table.write_text("N,loss\n" + "\n".join(f"{n},{3 * n ** -0.5}" for n in (10, 100, 1000, 1e4)))
    for argv, words in ((["fit", "sizes", str(sizes), "--ci", "bca"], "fit sizes: error: unrecognized arguments: --ci"),
                        (["fit", str(table), "--x", "N", "--y", "loss", "--method", "ols"],
                         "fit curve: error: unrecognized arguments: --method"),
                        (["fit", "literature", "--seed", "3"],
                         "fit literature: error: unrecognized arguments: --seed")):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2 and words in capsys.readouterr().err.strip().splitlines()[-1]
    assert cli.main(["fit", "sizes", str(sizes), "--rank-window", "1", "20"]) == 2
    err = capsys.readouterr().err
    assert "rank_window" in err and len(err.strip().splitlines()) == 1


def test_mle_gamma_on_its_search_bound_is_flagged():
    from fit.sizes import rank_frequency_exponent
    res = rank_frequency_exponent([3] * 30 + [1, 2], method="mle")
    assert any("search bound" in w for w in res.warnings)
