"""quanta tokens: bad input gives one line on stderr and exit status 2; a generated
matrix analysed through the command line reports its truth."""
import json

import numpy as np
import pytest

from quanta import cli

SIZES = ["1e7", "1e8", "1e9", "1e10"]


def run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def good(n=200, m=4, seed=0):
    return np.random.default_rng(seed).lognormal(0, 1, (n, m)).astype(np.float32)


def assert_one_line_error(code, err, *words):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("quanta tokens: error:"), err
    for w in words:
        assert w in lines[0], (w, lines[0])


def _ragged(tmp):
    path = tmp / "ragged.npy"
    np.save(path, np.array([[1.0, 2.0], [1.0]], dtype=object), allow_pickle=True)
    return [str(path), "--sizes", "1e7", "1e8"], ("ragged",)


def _nan(tmp):
    x = good()
    x[17, 2] = np.nan
    np.save(tmp / "nan.npy", x)
    return [str(tmp / "nan.npy"), "--sizes", *SIZES], ("token 18", "column 3", "NaN")


def _negative(tmp):
    x = good()
    x[5, 0] = -0.5
    np.save(tmp / "neg.npy", x)
    return [str(tmp / "neg.npy"), "--sizes", *SIZES], ("token 6", "negative")


def _not_increasing(tmp):
    np.save(tmp / "m.npy", good())
    return [str(tmp / "m.npy"), "--sizes", "1e7", "1e9", "1e8", "1e10"], ("not increasing",)


def _wrong_count(tmp):
    np.save(tmp / "m.npy", good())
    return [str(tmp / "m.npy"), "--sizes", "1e7", "1e8"], ("2 values for 4 columns",)


def _metadata_length(tmp):
    np.savez(tmp / "m.npz", losses=good(), sizes=np.array(SIZES, float),
             document=np.arange(150))
    return [str(tmp / "m.npz")], ("'document'", "150", "200 tokens")


def _metadata_file_length(tmp):
    np.save(tmp / "m.npy", good())
    np.savez(tmp / "meta.npz", document=np.arange(10))
    return [str(tmp / "m.npy"), "--sizes", *SIZES, "--metadata", str(tmp / "meta.npz")], \
        ("'document'",)


def _parquet_null(tmp):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {f"m{j}": pa.array([1.0, None, 2.0]) if j == 1 else pa.array([1.0, 2.0, 3.0])
            for j in range(4)}
    pq.write_table(pa.table(cols), tmp / "m.parquet")
    return [str(tmp / "m.parquet"), "--sizes", *SIZES], ("token 2", "'m1'", "null")


def _one_dimensional(tmp):
    np.save(tmp / "v.npy", np.ones(10))
    return [str(tmp / "v.npy"), "--sizes", *SIZES], ("2-d",)


def _no_sizes(tmp):
    np.save(tmp / "m.npy", good())
    return [str(tmp / "m.npy")], ("--sizes",)


def _missing_file(tmp):
    return [str(tmp / "nope.npy"), "--sizes", *SIZES], ("no such file",)


def _unknown_format(tmp):
    (tmp / "m.csv").write_text("1,2\n")
    return [str(tmp / "m.csv"), "--sizes", *SIZES], ("unknown format",)


CASES = [_ragged, _nan, _negative, _not_increasing, _wrong_count, _metadata_length,
         _metadata_file_length, _parquet_null, _one_dimensional, _no_sizes, _missing_file,
         _unknown_format]


@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    argv, words = case(tmp_path)
    code, out, err = run(["tokens", "analyze", *argv, "--bootstrap", "20",
                          "--fit-bootstrap", "0"], capsys)
    assert_one_line_error(code, err, *words)


def test_missing_zarr_names_the_extra(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "zarr", None)       # import zarr now fails
    (tmp_path / "m.zarr").mkdir()
    code, out, err = run(["tokens", "analyze", str(tmp_path / "m.zarr"), "--sizes", *SIZES],
                         capsys)
    assert_one_line_error(code, err, "pip install 'quanta[tokens]'")


def test_generate_then_analyze_reports_the_truth(tmp_path, capsys):
    path = tmp_path / "g.npz"
    code, _, _ = run(["tokens", "generate", str(path), "--n-tokens", "30000", "--seed", "3"],
                     capsys)
    assert code == 0
    code, out, err = run(["tokens", "analyze", str(path), "--json", "-", "--bootstrap", "100",
                          "--fit-bootstrap", "50", "--plot", str(tmp_path / "g.png")], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert "alpha_offset" in err and "generator truth" in err      # the report on stderr
    assert d["truth"]["alpha"] == 0.4
    assert abs(d["estimates"]["alpha_offset"]["value"] - 0.4) < 0.05
    assert (tmp_path / "g.png").stat().st_size > 0


def test_generate_refuses_other_formats(tmp_path, capsys):
    code, _, err = run(["tokens", "generate", str(tmp_path / "g.npy")], capsys)
    assert_one_line_error(code, err, ".npz")
