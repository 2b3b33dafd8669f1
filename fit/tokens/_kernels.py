"""Numba kernel of the per-token curve fits: arrays and scalars in, arrays out.

``_fit_rows`` does for one chunk what ``tests/naive_tokens.py::fit_curves`` does with
NumPy (centred least squares of z = ln(L + floor) on the line and on every candidate step,
see ``fit.tokens.curves``), one token at a time, without the chunk-sized temporaries that
made the NumPy version the slowest part of a 10^7-token analysis.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _fit_rows(losses, floor, bases, norms, delta, drop, gap, slope, rss_line):
    """Per row i of ``losses`` (tokens × m): ΔBIC (step − line), the best step's fall and
    gap, the line's slope and residual sum of squares, written into the output arrays."""
    n, m = losses.shape
    n_steps = bases.shape[0] - 1
    z = np.empty(m)
    eps = 1e-12 * m
    log_m = math.log(m)
    for i in range(n):
        mean = 0.0
        for j in range(m):
            z[j] = math.log(losses[i, j] + floor)
            mean += z[j]
        mean /= m
        total = 0.0
        for j in range(m):
            z[j] -= mean
            total += z[j] * z[j]
        best, best_g, best_c = np.inf, 0, 0.0
        line_c, line_rss = 0.0, 0.0
        for g in range(n_steps + 1):
            proj = 0.0
            for j in range(m):
                proj += z[j] * bases[g, j]
            c = proj / norms[g]
            rss = max(total - proj * c, 0.0)
            if g == 0:
                line_c, line_rss = c, rss
            elif rss < best:
                best, best_g, best_c = rss, g - 1, c
        delta[i] = m * math.log((best + eps) / (line_rss + eps)) + log_m
        drop[i] = -best_c
        gap[i] = best_g
        slope[i] = line_c
        rss_line[i] = line_rss


@njit(cache=True)
def _add_rows(losses, threshold, classes, gap, group, log_lo, inv_step, w, groups, hist,
              column, priority):
    """Add each row's contributions into its group's totals (``fit.tokens.stream.Layout``:
    losses, 1, below-threshold flags, a sharp drop in its gap, gradual), its losses into the
    per-column histograms (bin 0 underflow, the last overflow; log-spaced bins from
    exp(log_lo) in steps of 1/inv_step in ln L), and write its threshold emergence column
    (the first column after which it stays below the threshold; m: never) into ``column``
    and its sampling priority (as ``_scan_rows``) into ``priority``."""
    n, m = losses.shape
    n_bins = hist.shape[1] - 2
    for i in range(n):
        row = groups[group[i]]
        last_above = -1
        top = 0.0
        for j in range(m):
            v = losses[i, j]
            row[j] += v
            if v > top:
                top = v
            if v < threshold:
                row[m + 1 + j] += 1.0
            else:
                last_above = j
            b = 0
            if v > 0.0:
                t = (math.log(v) - log_lo) * inv_step
                b = 0 if t < 0 else (n_bins + 1 if t >= n_bins else int(t) + 1)
            hist[j, b] += 1
        row[m] += 1.0
        if classes[i] == 1:
            row[2 * m + 1 + gap[i]] += 1.0
        elif classes[i] == 2:
            row[3 * m] += 1.0
        column[i] = last_above + 1
        acc = 0.0
        if top > 0.0:
            for j in range(m):
                acc += losses[i, j] / top * w[j]
        priority[i] = acc - math.floor(acc)


@njit(cache=True)
def _scan_rows(losses, w, col_sum, col_max, priority):
    """Check one chunk and total it in a single pass: returns the flat index of the first
    NaN, infinite or negative loss (−1 if none); adds each column's sum and maximum into
    ``col_sum``/``col_max`` and writes each row's sampling priority (the fractional part
    of w · row / max(row), ``fit.tokens.stream.priorities``)."""
    n, m = losses.shape
    for i in range(n):
        top = 0.0
        for j in range(m):
            v = losses[i, j]
            if not (v >= 0.0) or v == np.inf:
                return i * m + j
            col_sum[j] += v
            if v > col_max[j]:
                col_max[j] = v
            if v > top:
                top = v
        acc = 0.0
        if top > 0.0:
            for j in range(m):
                acc += losses[i, j] / top * w[j]
        priority[i] = acc - math.floor(acc)
    return -1
