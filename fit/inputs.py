"""Input for the fits: arrays or a table as its authors ship it, checked with one-line messages.

Tables are read by :func:`read_table` from delimited text (CSV, TSV, whitespace; the
delimiter sniffed or given; UTF-8, or the UTF-16/32 a byte-order mark declares, as Excel's
"Unicode text" and Windows PowerShell write; numbers with a decimal comma where the cells
leave no doubt, as Excel writes in a decimal-comma locale), JSON (a list of records, a mapping of columns, records under one
key, one object per row keyed by name, or a folder of one-object files; nested objects become
dotted columns such as ``results.loss``), JSON Lines and parquet. Pickles are refused: reading
one runs whatever code it holds. :func:`select_rows` keeps the rows a pandas query selects and
drops (and counts) rows with missing values; :func:`load_rows` does all three.

Every refusal is an ``InputError`` (a ``ValueError``) whose message names the file, column
(and row, counted from 1 as a spreadsheet shows data rows) at fault, so the command line
prints it as one line. Units are the user's: sizes in parameters/tokens/steps/FLOP, losses in
nats (or any unit; the exponents do not depend on it).
"""
from __future__ import annotations

import codecs
import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import CorruptFileError, InputError, require

#: The fewest points a fit accepts beyond its parameter count (one for the noise scale).
EXTRA_POINTS = 1
#: File suffixes and the format each is read as (others: judged from the first bytes).
FORMATS = {".csv": "text", ".tsv": "text", ".tab": "text", ".txt": "text", ".dat": "text",
           ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".pq": "parquet",
           ".pkl": "pickle", ".pickle": "pickle", ".pk": "pickle"}
#: Compression suffixes pandas reads transparently (the format is the suffix before).
COMPRESSION = (".gz", ".bz2", ".xz", ".zip", ".zst")
#: Delimiters the sniffer chooses among.
DELIMITERS = ",\t;| "
#: Byte-order marks and the encoding each declares (UTF-32's first: its little-endian mark
#: begins with UTF-16's).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
#: What to do with text quanta cannot decode.
RESAVE = "re-save it as UTF-8 (Excel: 'CSV UTF-8'; PowerShell: Out-File -Encoding utf8)"
#: A number written with a decimal comma, or an integer: integer part, decimals, exponent.
COMMA_NUMBER = re.compile(r"\s*[+-]?(\d+)(?:,(\d+))?([eE][+-]?\d+)?\s*")


def table_format(path: Path) -> str:
    """What ``path`` holds: "folder", "text", "json", "jsonl", "parquet" or "pickle" (from
    its suffix, else from its first bytes)."""
    if path.is_dir():
        return "folder"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[:1] == b"\x80":           # the opcode every pickle of protocol 2 or later opens with
        return "pickle"
    text = head.lstrip()
    if text[:1] == b"[":
        return "json"
    if text[:1] == b"{":
        return "jsonl" if b"}\n{" in text.replace(b"\r", b"").replace(b"}\n\n{", b"}\n{") \
            else "json"
    return "text"


def read_table(path, columns=None, *, sep=None, decimal=None):
    """Read a table into a DataFrame: delimited text, JSON, JSON Lines, parquet (the
    ``parquet`` extra, pyarrow) or a folder of JSON files (one row per file, plus a ``file``
    column). A pickle is refused (it can run code when read) with the one-line conversion.

    ``sep``: the delimiter of a text table (default: ``\\t`` for ``.tsv``/``.tab``, else
    sniffed among comma, tab, semicolon, bar and space). ``decimal``: the decimal mark of a
    text table, "." or "," (default: "." unless its text cells are numbers with a decimal
    comma, :func:`decimal_mark`). ``columns``: names that must be present; a missing one is
    refused with the list of the columns the table has.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    kind = table_format(path)
    for flag, value in (("--sep", sep), ("--decimal", decimal)):
        if value is not None and kind != "text":
            raise InputError(f"{flag}: {path} is {kind}, not delimited text; leave {flag} out")
    if decimal not in (None, ".", ","):
        raise InputError(f"--decimal: the decimal mark is '.' or ',', got {decimal!r}")
    readers = {"text": lambda: _read_text(path, sep, decimal), "json": lambda: _read_json(path),
               "jsonl": lambda: _read_jsonl(path), "parquet": lambda: _read_parquet(path),
               "folder": lambda: _read_folder(path), "pickle": lambda: _refuse_pickle(path)}
    table = readers[kind]()
    for col in columns or ():
        if col not in table.columns:
            have = ", ".join(map(str, table.columns))
            raise InputError(f"{path}: no column {col!r} (columns: {have})")
    return table


def _refuse_pickle(path: Path):
    raise InputError(
        f"{path}: a pickle can run code when it is read, so quanta does not read pickles; "
        f"convert it once where you trust it: python -c \"import pandas as pd; "
        f"pd.read_pickle('{path}').to_csv('{path.with_suffix('.csv')}', index=False)\"")


def sniff_delimiter(path: Path, encoding: str = "utf-8", decimal: str | None = None) -> str:
    """The delimiter of a text table: tab for ``.tsv``/``.tab``, else the one
    ``csv.Sniffer`` finds in the first lines (a comma when it finds none: one column); not
    the ``decimal`` mark."""
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    candidates = DELIMITERS.replace(decimal or "\0", "")
    try:
        import pandas.io.common as pio

        with pio.get_handle(path, "r", compression="infer", encoding=encoding,
                            errors="replace") as handles:
            sample = handles.handle.read(65536)
    except OSError:
        return candidates[0]
    lines = sample.splitlines()[:50]
    try:
        found = csv.Sniffer().sniff("\n".join(lines), delimiters=candidates).delimiter
    except csv.Error:
        return candidates[0]
    return r"\s+" if found == " " else found


def text_encoding(path: Path) -> str:
    """The encoding of a text file: the one its byte-order mark declares (Excel's "Unicode
    text" and Windows PowerShell's ``>`` write UTF-16 with one), else UTF-8. Text with NUL
    bytes and no mark (UTF-16 without one, or not text at all) is refused with what to do:
    which of UTF-16's two byte orders it is would be a guess."""
    import pandas.io.common as pio

    with pio.get_handle(path, "rb", compression="infer", is_text=False) as handles:
        head = handles.handle.read(4096)
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    if b"\0" in head:
        raise CorruptFileError(f"{path}: holds NUL bytes: UTF-16 text without a byte-order "
                               f"mark, or not text at all; {RESAVE}")
    return "utf-8"


def _read_text(path: Path, sep, decimal=None):
    """A delimited text table in the file's encoding, with its decimal mark (given, else
    :func:`decimal_mark`'s)."""
    encoding = text_encoding(path)
    sep = {"tab": "\t", "\\t": "\t", "space": r"\s+", "whitespace": r"\s+"}.get(sep, sep)
    sep = sniff_delimiter(path, encoding, decimal) if sep is None else sep
    if decimal == "," and sep == ",":
        raise InputError(f"--decimal ,: the delimiter of {path} is a comma too; give the one "
                         "it uses with --sep")
    table = _parse_text(path, sep, encoding, decimal or ".")
    if decimal is None and sep != "," and decimal_mark(table, path) == ",":
        table = _parse_text(path, sep, encoding, ",")
    return table


def _parse_text(path: Path, sep: str, encoding: str, decimal: str):
    """``pandas.read_csv`` refused in one line: an empty file, one it cannot parse or decode,
    and rows with more fields than the header (which pandas would read as row labels)."""
    import pandas as pd

    try:
        table = pd.read_csv(path, sep=sep, engine="python" if len(sep) > 1 else "c",
                            encoding=encoding, decimal=decimal)
    except pd.errors.EmptyDataError:
        raise CorruptFileError(f"{path}: the file is empty") from None
    except UnicodeDecodeError as err:
        raise CorruptFileError(f"{path}: not a readable text table (not {encoding.upper()} "
                               f"text: {err.reason}); {RESAVE}") from None
    except ValueError as err:  # ParserError
        raise CorruptFileError(f"{path}: not a readable text table "
                               f"({str(err).splitlines()[0]})") from None
    if not isinstance(table.index, pd.RangeIndex):
        raise CorruptFileError(
            f"{path}: its rows have {table.index.nlevels} more field(s) than its header "
            f"(delimiter {sep!r}): decimal commas in a comma-delimited file? Save it with "
            "';' as the delimiter (or with decimal points); a delimiter ending every row? "
            "remove it")
    return table


def decimal_mark(table, path="table") -> str | None:
    """"," when the text columns of ``table`` (read with decimal points) hold numbers with
    a decimal comma ("1,5", "0,25", "3,2e-4"), None when none does. A comma counts as a
    decimal mark when some cell rules out a thousands separator (not exactly three digits
    after it, a leading 0, an exponent, more than three digits before it); when every such
    cell could be either ("3,215": 3.215 or 3215?) the table is refused, naming a cell and
    the option that settles it."""
    from pandas.api.types import is_numeric_dtype

    doubtful = None
    for name in table.columns:
        if is_numeric_dtype(table[name]):
            continue
        cells = table[name].dropna().astype(str)
        if not cells.str.contains(",", regex=False).any() or \
                not cells.str.fullmatch(COMMA_NUMBER).all():
            continue
        whole, decimals, exponent = (cells.str.extract(COMMA_NUMBER)[i] for i in range(3))
        comma = decimals.notna()
        grouping = comma & exponent.isna() & (decimals.str.len() == 3) & \
            (whole.str.len() <= 3) & ~whole.str.startswith("0")
        if (comma & ~grouping).any():
            return ","
        doubtful = doubtful or (name, cells[comma].iloc[0].strip())
    if doubtful:
        name, cell = doubtful
        raise InputError(
            f"{path}: column {name!r} holds {cell!r}: a decimal comma "
            f"({cell.replace(',', '.')}) or a thousands separator ({cell.replace(',', '')})? "
            "Give --decimal , (decimal=',') if it is the decimal mark; remove the separators "
            "if they group thousands")
    return None


def _read_parquet(path: Path):
    import pandas as pd

    require("pyarrow", "parquet")
    try:
        table = pd.read_parquet(path)
    except (ValueError, OSError) as err:   # pyarrow's ArrowInvalid is a ValueError
        raise CorruptFileError(f"{path}: not a readable parquet file "
                               f"({str(err).splitlines()[0]})") from None
    # rows are numbered by position; a named index is a column of the table
    return table.reset_index(drop=table.index.names == [None])


def _load_json(path: Path, lines: bool = False):
    """The parsed JSON of ``path`` (a list of the objects, one per line, for JSON Lines)."""
    import pandas.io.common as pio

    try:
        with pio.get_handle(path, "r", compression="infer",
                            encoding=text_encoding(path)) as handles:
            text = handles.handle.read()         # .json.gz and the like read as well
        if not lines:
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise CorruptFileError(f"{path}: not UTF-8 text (a pickle or binary file?); "
                               f"{RESAVE}") from None
    except json.JSONDecodeError as err:
        raise CorruptFileError(f"{path}: not valid JSON{' Lines' if lines else ''} "
                               f"({err.msg} at line {err.lineno})") from None


def _read_json(path: Path):
    return json_table(_load_json(path), str(path))


def _read_jsonl(path: Path):
    return json_table(_load_json(path, lines=True), str(path))


def json_table(obj, where: str = "JSON"):
    """Parsed JSON as a table, nested objects flattened into dotted columns
    (``{"results": {"loss": 2.1}}`` → column ``results.loss``). Read as rows: a list of
    objects; a mapping of equal-length lists (columns); a mapping with one list of objects
    (records under a key, e.g. ``{"runs": [...]}``); a mapping of two or more objects with
    the same keys (one row each, the name in column ``key``); else one object, one row."""
    import pandas as pd

    if isinstance(obj, dict):
        lists = [v for v in obj.values() if isinstance(v, list)]
        if obj and len(lists) == len(obj) and len({len(v) for v in lists}) == 1 \
                and not any(isinstance(r, dict) for v in lists for r in v):
            return pd.DataFrame(obj)
        if len(lists) == 1 and lists[0] and all(isinstance(r, dict) for r in lists[0]):
            obj = lists[0]
        elif len(obj) >= 2 and all(isinstance(v, dict) for v in obj.values()) and \
                len({frozenset(v) for v in obj.values()}) == 1:
            obj = [{"key": k, **v} for k, v in obj.items()]
        else:
            obj = [obj]
    if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
        raise CorruptFileError(f"{where}: JSON holds no table (give records, columns or "
                               "objects)")
    if not obj:
        raise CorruptFileError(f"{where}: the JSON holds no rows")
    return pd.json_normalize(obj, sep=".")


def _read_folder(path: Path):
    """A folder of JSON files (``*.json``, ``*.jsonl``), one row per object, with the file
    name in column ``file``."""
    import pandas as pd

    files = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in (".json", ".jsonl", ".ndjson"))
    if not files:
        raise InputError(f"{path}: a folder is read as JSON files, one object each, and it "
                         "holds no .json file")
    parts = []
    for f in files:
        part = json_table(_load_json(f, lines=FORMATS[f.suffix.lower()] == "jsonl"), str(f))
        parts.append(part.assign(file=f.name))
    return pd.concat(parts, ignore_index=True)


@dataclass
class Rows:
    """The rows a fit uses: ``table`` holds the columns asked for (the numeric ones as
    float), indexed by their position in the file (from 0); ``counts``: rows ``read``,
    ``selected`` by the query, ``dropped_missing`` (with ``dropna``) and ``used``."""
    table: object
    counts: dict = field(default_factory=dict)

    def column(self, name) -> np.ndarray:
        return self.table[name].to_numpy(dtype=float)

    @property
    def row_numbers(self) -> np.ndarray:
        """Each kept row's data row in the file, counted from 1."""
        return np.asarray(self.table.index, dtype=int) + 1


def select_rows(table, numeric, *, where=None, dropna=False, keep=(), source="table",
                assign=()):
    """The rows of ``table`` a fit uses, as :class:`Rows`.

    ``assign``: new columns, each "name = expression" of the others (``DataFrame.eval``:
    ``"D = C / (6 * N)"``), made before the query.
    ``where``: a pandas query (``DataFrame.query``: ``"dataset == 'c4' and N > 1e7"``;
    names with dots or spaces in backticks, ``\\`results.loss\\` < 4``) keeps the rows it
    is true for. ``numeric``: columns read as numbers (a cell that is not one is refused by
    row); ``keep``: other columns kept as they are (a group label). A row missing a value
    in any of these is dropped and counted with ``dropna``, refused (naming the row)
    without it.
    """
    numeric, keep = [c for c in numeric if c is not None], [c for c in keep if c is not None]
    counts = {"read": len(table)}
    for expr in ([assign] if isinstance(assign, str) else assign or ()):
        table = assign_column(table, expr)
    for col in keep + numeric:
        if col not in table.columns:
            have = ", ".join(map(str, table.columns))
            raise InputError(f"{source}: no column {col!r} (columns: {have})")
    if where:
        table = query_rows(table, where, source)
    counts["selected"] = len(table)
    used = table[list(dict.fromkeys(keep + numeric))].copy()
    for name in numeric:
        used[name] = column_values(used, name, source)
    missing = used.isna().any(axis=1).to_numpy()
    if missing.any() and not dropna:
        first = used[missing].iloc[0]
        col, row = first.index[first.isna().to_numpy()][0], int(first.name) + 1
        k = int(missing.sum())
        raise InputError(f"{source}: column {col!r}, row {row}: missing value ({k} "
                         f"row{'s' * (k > 1)} "
                         f"with one); drop such rows with --dropna (dropna=True)")
    used = used[~missing]
    counts["dropped_missing"] = int(missing.sum())
    counts["used"] = len(used)
    if not len(used):
        raise InputError(f"{source}: no row left to fit (of {counts['read']} read)")
    return Rows(used, counts)


def assign_column(table, expr: str):
    """``table`` with the column ``expr`` ("name = expression") defines, refused in one line
    when it is not an assignment or cannot be evaluated."""
    import pandas as pd

    name = expr.split("=", 1)[0].strip() if "=" in expr.replace("==", "") else ""
    if not name:
        raise InputError(f"--assign {expr!r}: write 'name = expression', e.g. "
                         "'D = C / (6 * N)'")
    try:
        out = table.eval(expr, engine="python")
    except Exception as err:   # NameError, SyntaxError, TypeError… from pandas' parser
        have = ", ".join(map(str, table.columns))
        raise InputError(f"--assign {expr!r}: {str(err).splitlines()[0]} "
                         f"(columns: {have})") from None
    if not isinstance(out, pd.DataFrame):
        raise InputError(f"--assign {expr!r}: write 'name = expression'")
    return out


def query_rows(table, where: str, source: str = "table"):
    """``table.query(where)``, refused in one line when the query cannot be evaluated or
    keeps nothing."""
    try:
        kept = table.query(where, engine="python")
    except Exception as err:   # pandas raises many kinds: NameError, SyntaxError, TypeError…
        hint = "; names with dots or spaces go in backticks" if isinstance(err, NameError) \
            else ""
        have = ", ".join(map(str, table.columns))
        raise InputError(f"--where {where!r}: {str(err).splitlines()[0]}{hint} "
                         f"(columns: {have})") from None
    if not len(kept):
        raise InputError(f"--where {where!r}: no row of {source} matches "
                         f"(of {len(table)})")
    return kept


def load_rows(path, numeric, *, keep=(), sep=None, where=None, dropna=False,
              assign=(), decimal=None) -> Rows:
    """:func:`read_table` then :func:`select_rows`: the rows of ``path`` a fit uses."""
    table = read_table(path, sep=sep, decimal=decimal)
    return select_rows(table, numeric, where=where, dropna=dropna, keep=keep,
                       source=str(path), assign=assign)


def column_values(table, name, source=None):
    """Column ``name`` of a DataFrame as float64, refusing non-numeric cells by row (the
    data row of the file, counted from 1) of ``source`` (the file, named in the message)."""
    import pandas as pd

    raw = table[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values) & raw.notna().to_numpy())
    if bad.size:
        i = int(bad[0])
        row = int(table.index[i]) + 1 if pd.api.types.is_integer_dtype(table.index) else i + 1
        where = f"{source}: " if source else ""
        raise InputError(f"{where}column {name!r}, row {row}: not a number ({raw.iloc[i]!r})")
    return values


def check_positive_array(values, name, rows=None):
    """``values`` as a 1-d float array, refusing NaN, infinite and non-positive entries by row
    (``rows``: the row number of each entry, default its position from 1)."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not numeric") from None
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-d array, got shape {arr.shape}")
    for test, what in ((np.isnan, "is NaN (missing)"), (np.isinf, "is infinite"),
                       (lambda a: a <= 0, "is not positive")):
        bad = np.flatnonzero(test(arr))
        if bad.size:
            i = int(bad[0])
            value = "" if what.startswith("is NaN") else f" ({arr[i]:g})"
            row = i + 1 if rows is None else rows[i]
            raise InputError(f"{name}, row {row}: {what}{value}; "
                             f"sizes and losses must be positive numbers")
    return arr


def check_xy(x, y, *, x2=None, sigma=None, n_params=2, names=("x", "y", "x2", "sigma"),
             rows=None):
    """Validate the data of one fit; returns float arrays ``(x, y, x2, sigma)``.

    Refuses: NaN, infinite or non-positive values (naming the row), arrays of different
    lengths, fewer than ``n_params + 1`` points, a single distinct x (or x2), and for one variable
    fewer distinct x than parameters. ``rows``: the row number of each point in its table
    (default its position from 1), named in the messages.
    """
    xn, yn, x2n, sn = names
    x, y = check_positive_array(x, xn, rows), check_positive_array(y, yn, rows)
    arrays = [(xn, x), (yn, y)]
    if x2 is not None:
        x2 = check_positive_array(x2, x2n, rows)
        arrays.append((x2n, x2))
    if sigma is not None:
        sigma = check_positive_array(sigma, sn, rows)
        arrays.append((sn, sigma))
    n = len(x)
    for name, arr in arrays[1:]:
        if len(arr) != n:
            raise InputError(f"{name} has {len(arr)} values but {xn} has {n}")
    if n < n_params + EXTRA_POINTS:
        raise InputError(f"{n} points for {n_params} parameters: need at least "
                         f"{n_params + EXTRA_POINTS} points")
    for name, arr in arrays[:1] + ([(x2n, x2)] if x2 is not None else []):
        if np.unique(arr).size < 2:
            raise InputError(f"{name}: a single distinct value ({arr[0]:g}); "
                             f"a scaling law needs at least two sizes")
    distinct = np.unique(x).size
    if x2 is None and distinct < n_params:
        raise InputError(f"{xn}: {distinct} distinct sizes for a law of {n_params} "
                         f"parameters; its curve through them is not determined (need at "
                         f"least {n_params} distinct sizes)")
    return x, y, x2, sigma


def load_xy(path, x, y, *, x2=None, sigma=None, sep=None, where=None, dropna=False,
            decimal=None):
    """Read columns ``x``, ``y`` (and ``x2``, ``sigma``) of a table as arrays (name → array),
    after :func:`select_rows`'s query and missing-value handling.

    Rows are checked as in :func:`check_xy` when the fit runs; here non-numeric cells are
    refused with their column and row.
    """
    rows = load_rows(path, [x, y, x2, sigma], sep=sep, where=where, dropna=dropna,
                     decimal=decimal)
    return {c: rows.column(c) for c in (x, y, x2, sigma) if c is not None}
