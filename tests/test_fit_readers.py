"""Tables as their authors ship them: every format gives the same table, rows are selected and
missing values dropped with counts, pickles are refused; each through ``quanta fit`` too."""
import codecs
import json

import numpy as np
import pandas as pd
import pytest

import fit
from common.errors import InputError
from fit.inputs import load_rows, read_table, select_rows
from quanta import cli


def _frame(n=12, seed=0):
    """An offset law on two data sets, with a text column and a nested-key twin."""
    rng = np.random.default_rng(seed)
    N = np.tile(np.geomspace(1e6, 1e9, n // 2), 2)
    loss = (1.7 + 400 * N ** -0.34) * np.exp(0.01 * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "loss": loss, "dataset": ["c4"] * (n // 2) + ["pile"] * (n // 2)})


def _write(kind, df, path):
    """``df`` written the way ``kind`` of file holds it; returns the path to read."""
    records = df.to_dict("records")
    if kind == "csv":
        df.to_csv(path / "t.csv", index=False)
        return path / "t.csv"
    if kind in ("tsv", "semicolon", "bar", "space"):
        sep = {"tsv": "\t", "semicolon": ";", "bar": "|", "space": " "}[kind]
        name = path / ("t.tsv" if kind == "tsv" else "t.txt")
        df.to_csv(name, sep=sep, index=False)
        return name
    if kind == "json-records":
        (path / "t.json").write_text(json.dumps(records))
    elif kind == "json-columns":
        (path / "t.json").write_text(json.dumps(df.to_dict("list")))
    elif kind == "json-under-a-key":
        (path / "t.json").write_text(json.dumps({"runs": records, "note": "made in a test"}))
    elif kind == "json-by-name":
        (path / "t.json").write_text(json.dumps({f"run{i}": r for i, r in enumerate(records)}))
    elif kind == "jsonl":
        (path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
        return path / "t.jsonl"
    elif kind == "parquet":
        df.to_parquet(path / "t.parquet")
        return path / "t.parquet"
    elif kind == "json-gzip":
        import gzip

        (path / "t.json.gz").write_bytes(gzip.compress(json.dumps(records).encode()))
        return path / "t.json.gz"
    return path / "t.json"


FORMATS = ["csv", "tsv", "semicolon", "bar", "space", "json-records", "json-columns",
           "json-under-a-key", "json-by-name", "jsonl", "parquet", "json-gzip"]


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_reads_as_the_same_table(tmp_path, kind):
    df = _frame()
    got = read_table(_write(kind, df, tmp_path))
    pd.testing.assert_frame_equal(got[list(df.columns)].reset_index(drop=True), df,
                                  check_dtype=False, rtol=1e-12)


@pytest.mark.parametrize("kind", ["tsv", "semicolon", "jsonl", "json-records"])
def test_every_format_fits_alike_from_the_command_line(tmp_path, capsys, kind):
    df = _frame()
    df.to_csv(tmp_path / "ref.csv", index=False)
    flags = ["--x", "N", "--y", "loss", "--form", "offset", "--bootstrap", "0", "--json", "-"]
    assert cli.main(["fit", str(tmp_path / "ref.csv"), *flags]) == 0
    ref = json.loads(capsys.readouterr().out)
    sub = tmp_path / kind
    sub.mkdir()
    assert cli.main(["fit", str(_write(kind, df, sub)), *flags]) == 0
    got = json.loads(capsys.readouterr().out)
    for k, v in ref["params"].items():
        assert got["params"][k] == pytest.approx(v, rel=1e-9), k


def test_a_folder_of_one_object_files_with_dotted_keys(tmp_path, capsys):
    """One JSON file per run, the numbers nested (config.N, results.loss): each file one
    row, the dotted names its columns, the file's name in ``file``."""
    df = _frame()
    runs = tmp_path / "runs"
    runs.mkdir()
    for i, r in df.iterrows():
        (runs / f"run{i:02d}.json").write_text(json.dumps(
            {"config": {"N": r["N"], "dataset": r["dataset"]}, "results": {"loss": r["loss"]}}))
    (runs / "README.md").write_text("not a run")
    table = read_table(runs)
    assert set(table.columns) == {"config.N", "config.dataset", "results.loss", "file"}
    assert table["file"].tolist() == [f"run{i:02d}.json" for i in range(len(df))]
    np.testing.assert_array_equal(table["results.loss"], df["loss"])
    assert cli.main(["fit", str(runs), "--x", "config.N", "--y", "results.loss",
                     "--where", "`config.dataset` == 'c4'", "--bootstrap", "0",
                     "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    c4 = df[df["dataset"] == "c4"]
    assert out["n_points"] == len(c4) and out["data"]["y"] == c4["loss"].tolist()
    assert out["selection"]["rows"] == {"read": 12, "selected": 6, "dropped_missing": 0,
                                        "used": 6, "held_out": 0, "fitted": 6}


@pytest.mark.parametrize("sep, given", [(";", ";"), ("\t", "tab"), ("|", "|")])
def test_sep_overrides_the_sniffer(tmp_path, sep, given):
    df = _frame()
    path = tmp_path / "t.dat"
    df.to_csv(path, sep=sep, index=False)
    got = read_table(path, sep=given)
    np.testing.assert_array_equal(got["loss"], df["loss"])
    with pytest.raises(InputError, match="not delimited text"):
        df.to_json(tmp_path / "t.json")
        read_table(tmp_path / "t.json", sep=";")


@pytest.mark.parametrize("name", ["t.pkl", "t.pickle", "no_suffix"])
def test_a_pickle_is_refused_with_the_conversion(tmp_path, capsys, name):
    _frame().to_pickle(tmp_path / name)
    with pytest.raises(InputError) as err:
        read_table(tmp_path / name)
    msg = str(err.value)
    assert "a pickle can run code" in msg and "to_csv(" in msg and "\n" not in msg
    assert cli.main(["fit", str(tmp_path / name), "--x", "N", "--y", "loss"]) == 2
    assert "a pickle can run code" in capsys.readouterr().err


def test_where_keeps_the_rows_the_query_selects():
    df = _frame()
    rows = select_rows(df, ["N", "loss"], where="dataset == 'pile' and N > 2e6")
    expect = df[(df["dataset"] == "pile") & (df["N"] > 2e6)]
    np.testing.assert_array_equal(rows.column("loss"), expect["loss"])
    assert rows.counts == {"read": 12, "selected": len(expect), "dropped_missing": 0,
                           "used": len(expect)}
    np.testing.assert_array_equal(rows.row_numbers, expect.index + 1)


@pytest.mark.parametrize("where, words", [
    ("colour == 'red'", "--where \"colour == 'red'\": name 'colour' is not defined"),
    ("N >", "--where 'N >'"),
    ("N > 1e12", "no row of table matches (of 12)"),
])
def test_where_errors_are_one_line(where, words):
    with pytest.raises(InputError) as err:
        select_rows(_frame(), ["N", "loss"], where=where)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_dropna_drops_and_counts_rows_with_a_missing_value(tmp_path, capsys):
    df = _frame()
    df.loc[[2, 7], "loss"] = np.nan
    df.loc[4, "N"] = np.nan
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match=r"column 'loss', row 3: missing value \(3 rows with "
                                         r"one\); drop such rows with --dropna"):
        load_rows(tmp_path / "t.csv", ["N", "loss"])
    rows = load_rows(tmp_path / "t.csv", ["N", "loss"], dropna=True)
    assert rows.counts["dropped_missing"] == 3 and rows.counts["used"] == 9
    np.testing.assert_array_equal(rows.column("loss"), df["loss"].dropna().drop(4))
    assert cli.main(["fit", str(tmp_path / "t.csv"), "--x", "N", "--y", "loss", "--dropna",
                     "--bootstrap", "0", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["selection"]["rows"]["dropped_missing"] == 3
    assert "rows: 12 read, 3 with a missing value dropped, 9 fitted" in captured.err


def test_rows_named_in_errors_are_the_files_rows(tmp_path):
    """After a selection the row named is the file's data row, not a position."""
    df = _frame()
    df.loc[9, "loss"] = -1.0
    with pytest.raises(InputError, match="loss, row 10: is not positive"):
        fit.fit_table(df, x="N", y="loss", where="dataset == 'pile'")


def test_a_parquet_index_with_a_name_is_a_column(tmp_path):
    df = _frame().set_index("dataset")
    df.to_parquet(tmp_path / "t.parquet")
    table = read_table(tmp_path / "t.parquet")
    assert "dataset" in table.columns and table.index[0] == 0


def test_json_without_a_table_is_refused(tmp_path):
    (tmp_path / "t.json").write_text("[1, 2, 3]")
    with pytest.raises(InputError, match="JSON holds no table"):
        read_table(tmp_path / "t.json")
    (tmp_path / "t.jsonl").write_text('{"N": 1}\n{"N": \n')
    with pytest.raises(InputError, match="not valid JSON Lines"):
        read_table(tmp_path / "t.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no .json file"):
        read_table(tmp_path / "empty")


def test_assign_makes_a_column_from_others():
    df = _frame().assign(C=lambda t: 6 * t["N"] * 20 * t["N"])
    rows = select_rows(df, ["N", "D", "loss"], assign="D = C / (6 * N)")
    np.testing.assert_allclose(rows.column("D"), 20 * df["N"], rtol=1e-12)
    for bad, words in (("C / N", "write 'name = expression'"),
                       ("D = tokens / N", "name 'tokens' is not defined")):
        with pytest.raises(InputError, match=f"--assign '{bad}'") as err:
            select_rows(df, ["N", "loss"], assign=bad)
        assert words in str(err.value)


def test_sep_from_the_command_line(tmp_path, capsys):
    df = _frame()
    df.to_csv(tmp_path / "t.dat", sep=";", index=False)
    assert cli.main(["fit", str(tmp_path / "t.dat"), "--sep", ";", "--x", "N", "--y", "loss",
                     "--bootstrap", "0", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["y"] == df["loss"].tolist()
    assert cli.main(["fit", str(tmp_path / "t.dat"), "--sep", ",", "--x", "N", "--y",
                     "loss"]) == 2
    assert "no column 'N'" in capsys.readouterr().err


# ---------------------------------------------------------------- encodings, decimal commas
def _fit_json(path, capsys, *flags):
    """``quanta fit PATH --x N --y loss`` (offset, no bootstrap) as its JSON document."""
    assert cli.main(["fit", str(path), "--x", "N", "--y", "loss", "--form", "offset",
                     "--bootstrap", "0", *flags, "--json", "-"]) == 0
    return json.loads(capsys.readouterr().out)


def _refusal(path, capsys, *flags) -> str:
    """The one line ``quanta fit PATH`` refuses the file with (exit status 2)."""
    assert cli.main(["fit", str(path), "--x", "N", "--y", "loss", *flags]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("name, encode", [
    ("t.csv", lambda t: t.encode("utf-16")),                           # Excel, PowerShell 5
    ("t.csv", lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be")),
    ("t.csv", lambda t: t.encode("utf-32")),
    ("t.csv", lambda t: t.encode("utf-8-sig")),                        # Excel's CSV UTF-8
    ("t.json", None)])                                                 # ConvertTo-Json > file
def test_a_byte_order_mark_says_how_the_file_is_encoded(tmp_path, name, encode):
    df = _frame()
    path = tmp_path / name
    if encode is None:
        path.write_bytes(df.to_json(orient="records").encode("utf-16"))
    else:
        path.write_bytes(encode(df.to_csv(index=False)))
    pd.testing.assert_frame_equal(read_table(path), df, check_dtype=False, rtol=1e-12)


@pytest.mark.parametrize("data, words", [
    ("N,loss\n1e6,3.2\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    ("N,loss é\n1e6,3.2\n".encode("cp1252"), "not a readable text table (not UTF-8 text")])
def test_text_that_is_not_utf8_is_refused_saying_what_to_do(tmp_path, capsys, data, words):
    (tmp_path / "t.csv").write_bytes(data)
    err = _refusal(tmp_path / "t.csv", capsys)
    assert words in err and "re-save it as UTF-8" in err


def test_decimal_commas_read_where_the_cells_leave_no_doubt(tmp_path, capsys):
    """';'-delimited with decimal commas ("1,5;2,3", as Excel writes in a decimal-comma
    locale), and Excel's "Unicode text" (UTF-16, tabs, decimal commas): the same fit as the
    file with decimal points."""
    df = _frame()
    df.to_csv(tmp_path / "ref.csv", index=False)
    ref = _fit_json(tmp_path / "ref.csv", capsys)["params"]
    df.to_csv(tmp_path / "semicolon.csv", sep=";", decimal=",", index=False)
    (tmp_path / "unicode.txt").write_bytes(
        df.to_csv(sep="\t", decimal=",", index=False).encode("utf-16"))
    text = (tmp_path / "semicolon.csv").read_text()
    assert "." not in text and text.count(",") == 2 * len(df)        # N and loss: commas
    for name in ("semicolon.csv", "unicode.txt"):
        got = _fit_json(tmp_path / name, capsys)["params"]
        assert got == pytest.approx(ref, rel=1e-12), name
    small = tmp_path / "exponents.csv"
    small.write_text("N;loss\n1,5e6;0,5\n2e7;3,25E-1\n")
    assert read_table(small).to_dict("list") == {"N": [1.5e6, 2e7], "loss": [0.5, 0.325]}


def test_a_comma_that_could_group_thousands_is_refused_until_decimal_says(tmp_path, capsys):
    """Every comma followed by three digits ("3,215": 3.215 or 3215?): refused naming the
    cell and --decimal; with --decimal , the same fit as with points. (Sizes written as
    "1000000,000" would settle it: no thousands group has seven digits.)"""
    df = _frame().astype({"N": int})
    df.to_csv(tmp_path / "ref.csv", index=False, float_format="%.3f")
    df.to_csv(tmp_path / "doubt.csv", sep=";", decimal=",", index=False, float_format="%.3f")
    err = _refusal(tmp_path / "doubt.csv", capsys)
    cell = f"{df['loss'][0]:.3f}".replace(".", ",")
    assert f"column 'loss' holds '{cell}'" in err and "--decimal ," in err
    got = _fit_json(tmp_path / "doubt.csv", capsys, "--decimal", ",")["params"]
    assert got == pytest.approx(_fit_json(tmp_path / "ref.csv", capsys)["params"], rel=1e-12)


def test_decimal_commas_in_a_comma_delimited_file_are_refused_not_misread(tmp_path, capsys):
    """"1000,3,2" under the header "N,loss": pandas would take 1000 as the row's label and
    read N = 3, loss = 2; refused instead, saying why and what to do."""
    (tmp_path / "t.csv").write_text("N,loss\n" + "".join(
        f"{n},{v}\n".replace(".", ",") for n, v in zip([1000, 10000, 100000], [3.2, 2.5, 2.1])))
    err = _refusal(tmp_path / "t.csv", capsys)
    assert "more field(s) than its header" in err and "decimal commas" in err
    assert "--decimal ,: the delimiter of" in _refusal(tmp_path / "t.csv", capsys, "--sep", ",",
                                                       "--decimal", ",")
    with pytest.raises(InputError, match="the decimal mark is '.' or ','"):
        read_table(tmp_path / "t.csv", decimal=";")
