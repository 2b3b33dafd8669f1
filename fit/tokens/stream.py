"""The two streaming passes over a loss matrix: everything the analysis needs, in totals.

Pass 1 (:func:`scan`) checks every chunk and gathers what pass 2 depends on: the column
means (the default floor and threshold are fractions of the last column's mean), the
largest loss (histogram range), a random sample of tokens (to calibrate the curve
classifier), document and token-id counts.

Pass 2 (:func:`accumulate`) classifies every token's curve and adds each token's
contributions into per-group totals: its losses, 1, whether it is below the threshold in
each column, whether it dropped sharply in each gap, whether it fell gradually. A group is
a bucket of documents (or of tokens) chosen by a seeded hash, so that a bootstrap over the
independent units is a Poisson-weighted sum of group totals (``fit.tokens.estimates``) and
nothing per token is kept but small random samples (examples, heat map, learning order).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fit.tokens._kernels import _scan_rows
from fit.tokens.curves import GRADUAL, SHARP, CurveDesign, classify, fit_curves
from fit.tokens.io import check_losses

#: Bins of the per-token loss histograms: log-spaced over HIST_DECADES below the largest loss.
HIST_BINS, HIST_DECADES = 120, 6.0


def _weights(m: int, seed) -> np.ndarray:
    """Weights of the sampling priority of a row: the fractional part of w · row / max(row)
    (computed in the kernels), a pseudo-random number that depends neither on the order of
    the tokens nor on the losses' unit, so neither does anything estimated from samples."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(5,))).uniform(
        1e3, 1e4, m)


class Sample:
    """A random sample of at most ``k`` rows offered chunk by chunk: the rows of the k
    smallest priorities (a bottom-k sample; with uniform priorities, Efraimidis & Spirakis's
    reservoir with equal weights)."""

    def __init__(self, k: int):
        self.k = int(k)
        self.priority = np.empty(0)
        self.rows: dict[str, np.ndarray] = {}

    def offer(self, priority, mask=None, **rows) -> None:
        """Offer the rows where ``mask`` holds (all without one); only those that can enter
        the sample (priority below the current k-th smallest) are copied."""
        if self.k == 0:
            return
        keep = np.ones(len(priority), bool) if mask is None else mask.copy()
        if self.priority.size == self.k:
            keep &= priority < self.priority.max()
        if not keep.any():
            return
        priority = priority[keep]
        rows = {k: v[keep] for k, v in rows.items()}
        prio = np.concatenate([self.priority, priority])
        merged = {k: np.concatenate([self.rows[k], v]) if k in self.rows else v
                  for k, v in rows.items()}
        if prio.size > self.k:
            keep = np.argpartition(prio, self.k - 1)[:self.k]
            prio = prio[keep]
            merged = {k: v[keep] for k, v in merged.items()}
        self.priority, self.rows = prio, merged

    def sorted_rows(self) -> dict[str, np.ndarray]:
        order = np.argsort(self.priority, kind="stable")
        return {k: v[order] for k, v in self.rows.items()}


@dataclasses.dataclass
class Scan:
    """What pass 1 found."""
    n_tokens: int
    col_sum: np.ndarray
    col_max: np.ndarray
    sample: dict
    documents: np.ndarray | None      # distinct document ids
    token_counts: tuple | None        # (distinct group or token ids, their counts)

    @property
    def col_mean(self) -> np.ndarray:
        return self.col_sum / self.n_tokens


def scan(matrix, chunk_size: int, n_sample: int, seed) -> Scan:
    """Pass 1: check every chunk; column totals, the largest loss, a token sample, ids."""
    sample = Sample(n_sample)
    col_sum = np.zeros(matrix.n_columns)
    col_max = np.zeros(matrix.n_columns)
    docs, ids, counts = [], [], []
    n = 0
    w = _weights(matrix.n_columns, seed)
    for start, losses, meta in matrix.chunks(chunk_size, check=False):
        prio = np.empty(len(losses))
        bad = _scan_rows(losses, w, col_sum, col_max, prio)
        if bad >= 0:    # name the cell, as the checked reader does
            check_losses(losses, matrix.name, start, matrix.x)
        n += len(losses)
        sample.offer(prio, losses=losses)
        if "document" in meta:
            docs.append(np.unique(meta["document"]))
        key = "group" if "group" in meta else "token"
        if key in meta and "frequency" not in meta:
            u, c = np.unique(meta[key], return_counts=True)
            ids.append(u)
            counts.append(c)
    token_counts = None
    if ids:
        u, inv = np.unique(np.concatenate(ids), return_inverse=True)
        token_counts = (u, np.bincount(inv, weights=np.concatenate(counts)))
    documents = np.unique(np.concatenate(docs)) if docs else None
    return Scan(n, col_sum, col_max, sample.sorted_rows(), documents, token_counts)


def group_of(keys: np.ndarray, n_groups: int, seed) -> np.ndarray:
    """A seeded hash of integer keys (document ids or token positions) into n_groups
    buckets (a power of two): multiply-shift hashing (Dietzfelbinger et al. 1997)."""
    bits = int(n_groups).bit_length() - 1
    a = np.uint64((np.random.SeedSequence(seed, spawn_key=(2,)).generate_state(1, np.uint64)[0]
                   | np.uint64(1)))
    with np.errstate(over="ignore"):
        h = keys.astype(np.uint64) * a
    return (h >> np.uint64(64 - bits)).astype(np.int64)


@dataclasses.dataclass
class Layout:
    """Columns of the per-group totals for m columns of losses."""
    m: int

    @property
    def losses(self):
        return slice(0, self.m)

    @property
    def count(self):
        return self.m

    @property
    def below(self):
        return slice(self.m + 1, 2 * self.m + 1)

    @property
    def sharp(self):            # sharp drops per gap
        return slice(2 * self.m + 1, 3 * self.m)

    @property
    def gradual(self):
        return 3 * self.m

    @property
    def width(self):
        return 3 * self.m + 1


@dataclasses.dataclass
class Totals:
    """What pass 2 gathered."""
    groups: np.ndarray             # (n_groups, Layout.width) per-group totals
    layout: Layout
    hist: np.ndarray               # (m, HIST_BINS + 2): underflow, bins, overflow
    edges: np.ndarray
    emergence: np.ndarray          # tokens whose threshold emergence is column j; last: never
    samples: dict                  # name → rows of a random sample
    truth: dict | None             # confusion counts against the generator's truth


def _add_rows(losses, threshold, classes, gap, group, edges, w, groups, hist):
    """The kernel ``_kernels._add_rows`` on one chunk: (emergence column, priority) per row."""
    from fit.tokens._kernels import _add_rows as kernel

    column, priority = np.empty(len(losses), np.int64), np.empty(len(losses))
    kernel(losses, float(threshold), classes, gap, group, float(np.log(edges[0])),
           float(1.0 / np.log(edges[1] / edges[0])), w, groups, hist, column, priority)
    return column, priority


@dataclasses.dataclass(frozen=True)
class Pass2:
    """The settings pass 2 runs with (all resolved to numbers)."""
    design: CurveDesign
    floor: float
    threshold: float           # the loss below which a token counts as solved
    bic_threshold: float
    min_log_drop: float
    unit: str                  # "document" or "token": what the groups bucket
    n_groups: int
    n_examples: int
    n_heatmap: int
    n_order: int
    max_loss: float            # the histograms' top edge


def accumulate(matrix, s: Pass2, chunk_size: int, seed, truth: dict | None = None) -> Totals:
    """Pass 2: classify every curve and add up the per-group totals and samples."""
    m = matrix.n_columns
    layout = Layout(m)
    top = s.max_loss if s.max_loss > 0 else 1.0
    edges = np.geomspace(top * 10.0 ** -HIST_DECADES, top * (1 + 1e-9), HIST_BINS + 1)
    groups = np.zeros((s.n_groups, layout.width))
    hist = np.zeros((m, HIST_BINS + 2), np.int64)
    emergence = np.zeros(m + 1, np.int64)
    samples = {"sharp": Sample(s.n_examples), "gradual": Sample(s.n_examples),
               "flat": Sample(s.n_examples), "heatmap": Sample(s.n_heatmap),
               "order": Sample(s.n_order)}
    confusion = np.zeros((3, 3), np.int64) if truth else None
    gap_hits = np.zeros(3, np.int64)
    w = _weights(m, seed + 1)
    for start, losses, meta in matrix.chunks(chunk_size, check=False):   # checked by scan
        fits = fit_curves(losses, s.design, s.floor)
        classes = classify(fits, s.bic_threshold, s.min_log_drop)
        keys = meta["document"] if s.unit == "document" else start + np.arange(len(losses))
        g = group_of(np.asarray(keys), s.n_groups, seed)
        col, prio = _add_rows(losses, s.threshold, classes, fits.gap, g, edges, w, groups, hist)
        emergence += np.bincount(col, minlength=m + 1)
        index = start + np.arange(len(losses))
        for name, code in (("sharp", SHARP), ("gradual", GRADUAL), ("flat", 0)):
            samples[name].offer(prio, classes == code, index=index, losses=losses,
                                gap=fits.gap, delta_bic=fits.delta_bic)
        samples["heatmap"].offer(prio, (col >= 1) & (col < m), index=index, losses=losses,
                                 column=col)
        proxy = [k for k in ("frequency", "group", "token") if k in meta][:1]
        if proxy:   # monogenic tokens: where they drop against how frequent they are
            samples["order"].offer(prio, classes == SHARP, column=fits.gap + 1,
                                   proxy=meta[proxy[0]])
        if truth:
            _confusion(truth, start, classes, fits.gap, confusion, gap_hits, m)
    truth_counts = None if truth is None else {"confusion": confusion, "gap_hits": gap_hits}
    return Totals(groups, layout, hist, edges, emergence,
                  {k: v.sorted_rows() for k, v in samples.items()}, truth_counts)


def _confusion(truth, start, classes, gap, confusion, gap_hits, m) -> None:
    """Truth kind × class counts, and how many in-range monogenic tokens called sharp were
    placed in their true gap (the generator's truth arrays, sliced to the chunk)."""
    stop = start + len(classes)
    kind = np.asarray(truth["kind"][start:stop], np.int64)
    first = np.asarray(truth["emergence"][start:stop], np.int64)
    np.add.at(confusion, (kind, classes.astype(np.int64)), 1)
    inside = (kind == 1) & (first >= 1) & (first < m)
    hit = inside & (classes == SHARP)
    gap_hits += [int(inside.sum()), int(hit.sum()), int(np.sum(hit & (gap == first - 1)))]
