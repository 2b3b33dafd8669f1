"""What a report page holds, before it is rendered: sections of blocks, each block one
input's figures, its table of exponents against theory and one sentence on agreement.

Every number in a table is read from its input through a JSON pointer (RFC 6901), kept
with the number, so the page can say where each cell came from (``data-json`` in the
HTML) and a test can check the cell against the file.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def resolve(doc: Any, pointer: str) -> Any:
    """The value at JSON pointer ``pointer`` ("/a/0/b"; "" is the whole document)."""
    if pointer == "":
        return doc
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def pointer(*keys) -> str:
    """The JSON pointer of the path ``keys`` (strings or list indices)."""
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def number(value) -> float | None:
    """A JSON number as a float; None for null, NaN or a non-number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: float | None, digits: int = 4) -> str:
    """A number as the page shows it: ``digits`` significant digits, '–' for none."""
    return "–" if value is None else f"{value:.{digits}g}"


@dataclass
class Cell:
    """One number of a table and where it came from (None: computed by the report)."""
    value: float | None
    source: str | None = None

    @property
    def text(self) -> str:
        return fmt(self.value)


@dataclass
class Row:
    """An exponent (or another number the model predicts) against its prediction."""
    quantity: str
    what: str
    value: Cell
    lower: Cell | None = None
    upper: Cell | None = None
    theory: Cell | None = None
    method: str | None = None
    level: float = 0.95
    remark: str | None = None           # replaces the verdict (e.g. "the prediction itself")

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.lower is None or self.upper is None:
            return None
        lo, hi = self.lower.value, self.upper.value
        return None if lo is None or hi is None else (min(lo, hi), max(lo, hi))

    @property
    def predicted(self) -> float | None:
        return None if self.theory is None else self.theory.value

    @property
    def inside(self) -> bool | None:
        """Whether the prediction lies in the interval (None: no prediction or interval)."""
        ci, t = self.interval, self.predicted
        if ci is None or t is None or self.value.value is None:
            return None
        return ci[0] <= t <= ci[1]

    @property
    def verdict(self) -> str:
        """Agreement in a few words, for the table's last column."""
        v, t, ci = self.value.value, self.predicted, self.interval
        if self.remark:
            return self.remark
        if v is None:
            return "no estimate"
        if t is None:
            return "no prediction"
        if ci is not None:
            if self.inside:
                return f"prediction inside the {self.level:.0%} interval"
            gap = ci[0] - t if t < ci[0] else t - ci[1]
            return f"prediction {fmt(gap, 2)} {'below' if t < ci[0] else 'above'} the interval"
        return f"{relative_gap(v, t)} from the prediction (no interval)"

    @property
    def sentence(self) -> str:
        """'α_N = 0.39 [0.37, 0.41]: the prediction 0.40 lies within the interval'."""
        ci = self.interval
        head = f"{self.quantity} = {self.value.text}"
        if ci is not None:
            head += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
        t = self.predicted
        if t is None or self.value.value is None:
            return head
        if ci is None:
            return f"{head}: {relative_gap(self.value.value, t)} from the prediction {fmt(t)}"
        if self.inside:
            return f"{head}: the prediction {fmt(t)} lies within the interval"
        side = "below" if t < ci[0] else "above"
        return f"{head}: the prediction {fmt(t)} lies {side} the interval"


def relative_gap(value: float, target: float) -> str:
    """|value − target| relative to |target|, as a percentage (absolute if target is 0)."""
    if target == 0:
        return f"{fmt(abs(value), 2)}"
    return f"{abs(value - target) / abs(target):.2%}"


def agreement(rows: list[Row]) -> str:
    """One sentence on how a block's (or section's) rows agree with their predictions."""
    rows = [r for r in rows if not r.remark]
    judged = [r for r in rows if r.inside is not None]
    loose = [r for r in rows if r.inside is None and r.predicted is not None
             and r.value.value is not None]
    parts = []
    if len(judged) + len(loose) == 1:
        return (judged + loose)[0].sentence + "."
    if judged:
        outside = [r for r in judged if not r.inside]
        part = f"{len(judged) - len(outside)} of {len(judged)} intervals hold their prediction"
        if outside:
            worst = max(outside, key=_distance)
            part += f"; the furthest: {worst.sentence} ({worst.what})"
        parts.append(part)
    if loose:
        worst = max(loose, key=lambda r: abs(r.value.value - r.predicted))
        parts.append(f"{len(loose)} estimate{'s' if len(loose) > 1 else ''} without an interval, "
                     f"the furthest {worst.sentence} ({worst.what})")
    if not parts:
        return "Nothing here has a prediction to compare with." if rows else ""
    return capitalized("; ".join(parts)) + "."


def capitalized(text: str) -> str:
    """``text`` with a capital first letter where it is a Latin one (α stays α)."""
    return text[:1].upper() + text[1:] if text[:1].isascii() else text


def _distance(row: Row) -> float:
    lo, hi = row.interval
    t = row.predicted
    return (lo - t if t < lo else t - hi) / max(hi - lo, 1e-300)


@dataclass
class Figure:
    """An inline SVG and what it shows."""
    svg: str
    caption: str

    @property
    def wide(self) -> bool:
        """Whether the figure needs the page's whole width (over 600 pt wide, a multi-panel
        figure) rather than half of it."""
        found = re.search(r'width="([0-9.]+)pt"', self.svg[:400])
        return bool(found) and float(found.group(1)) > 600


@dataclass
class Block:
    """One input (or one group of inputs) in its section."""
    title: str
    source: str                         # the file or folder it was read from
    json_file: str | None = None        # the file the rows' pointers refer to
    figures: list[Figure] = field(default_factory=list)
    more: list[tuple[str, list[Figure]]] = field(default_factory=list)  # collapsed groups
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lead: str = ""                      # a sentence that replaces the agreement sentence

    @property
    def sentence(self) -> str:
        return self.lead or agreement(self.rows)

    @property
    def has_method(self) -> bool:
        return any(r.method for r in self.rows)


@dataclass
class Section:
    key: str
    title: str
    intro: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return [r for b in self.blocks for r in b.rows]

    @property
    def glance(self) -> str:
        """The section in a few words: how many intervals hold their prediction and how
        close the estimates without one come; a lead sentence where nothing compares."""
        rows = [r for r in self.rows if not r.remark and r.value.value is not None
                and r.predicted is not None]
        judged = [r for r in rows if r.inside is not None]
        loose = [r for r in rows if r.inside is None]
        parts = []
        if judged:
            held = sum(r.inside for r in judged)
            parts.append(f"{held} of {len(judged)} intervals hold their prediction")
        if loose:
            gaps = [abs(r.value.value - r.predicted) for r in loose]
            worst = loose[int(np.argmax(gaps))]
            parts.append(f"{len(loose)} estimate{'s' if len(loose) > 1 else ''} without an "
                         f"interval, the furthest {relative_gap(worst.value.value, worst.predicted)}"
                         f" from {'its' if len(loose) == 1 else 'their'} prediction")
        if parts:
            return "; ".join(parts) + "."
        return next((b.sentence for b in self.blocks if b.sentence), "")


class Doc:
    """A parsed JSON document seen from ``prefix``: ``cell``/``row`` read numbers with the
    pointer they came from."""

    def __init__(self, data: Any, prefix: str = ""):
        self.data, self.prefix = data, prefix

    def at(self, *keys) -> Any:
        return resolve(self.data, pointer(*keys))

    def get(self, *keys, default=None) -> Any:
        try:
            return self.at(*keys)
        except (KeyError, IndexError, TypeError, ValueError):
            return default

    def sub(self, *keys) -> "Doc":
        return Doc(self.at(*keys), self.prefix + pointer(*keys))

    def cell(self, *keys) -> Cell:
        """The number at ``keys`` (a missing or null one is an empty cell)."""
        return Cell(number(self.get(*keys)), self.prefix + pointer(*keys))

    def interval(self, *keys) -> tuple[Cell, Cell] | tuple[None, None]:
        """The [low, high] list at ``keys`` as two cells, (None, None) where absent."""
        pair = self.get(*keys)
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return None, None
        return self.cell(*keys, 0), self.cell(*keys, 1)

    def row(self, quantity: str, what: str, value, ci=None, theory=None, **kw) -> Row:
        """A row whose value, interval and theory are the numbers at these key paths
        (``theory`` may also be a :class:`Cell` computed by the report)."""
        lower, upper = self.interval(*ci) if ci is not None else (None, None)
        if theory is not None and not isinstance(theory, Cell):
            theory = self.cell(*theory)
        return Row(quantity, what, self.cell(*value), lower, upper, theory, **kw)
