"""Slow, obviously correct references for fit.tokens' kernels and streaming sums."""
import numpy as np


def fit_curves(losses, x, floor, smooth=0.1):
    """Per token: least squares of z = ln(L + floor) on [1, ln x] and on [1, step_g] for
    every gap g by numpy.linalg.lstsq, and the ΔBIC of the best step against the line."""
    z = np.log(np.asarray(losses, float) + floor)
    u = np.log(np.asarray(x, float))
    m = u.size
    mids, widths = (u[1:] + u[:-1]) / 2, np.diff(u)
    out = {k: [] for k in ("delta_bic", "drop", "gap", "slope", "rss_line")}
    for row in z:
        line = np.column_stack([np.ones(m), u])
        coef, *_ = np.linalg.lstsq(line, row, rcond=None)
        rss_line = float(np.sum((row - line @ coef) ** 2))
        best = (np.inf, None, None)
        for g in range(m - 1):
            step = 0.5 * (1 + np.tanh((u - mids[g]) / (2 * smooth * widths[g])))
            basis = np.column_stack([np.ones(m), step])
            c, *_ = np.linalg.lstsq(basis, row, rcond=None)
            rss = float(np.sum((row - basis @ c) ** 2))
            if rss < best[0]:
                best = (rss, g, c[1])
        eps = 1e-12 * m
        out["delta_bic"].append(m * np.log((best[0] + eps) / (rss_line + eps)) + np.log(m))
        out["drop"].append(-best[2])
        out["gap"].append(best[1])
        out["slope"].append(coef[1])
        out["rss_line"].append(rss_line)
    return {k: np.asarray(v) for k, v in out.items()}


def group_totals(losses, threshold, classes, gap, group, n_groups):
    """Per-group totals in fit.tokens.stream.Layout order, summed token by token."""
    n, m = losses.shape
    out = np.zeros((n_groups, 3 * m + 1))
    for i in range(n):
        row = out[group[i]]
        row[:m] += losses[i]
        row[m] += 1
        row[m + 1:2 * m + 1] += losses[i] < threshold
        if classes[i] == 1:
            row[2 * m + 1 + gap[i]] += 1
        elif classes[i] == 2:
            row[3 * m] += 1
    return out


def histogram(losses, edges):
    """Counts per column: [losses < edges[0]] + numpy.histogram's bins + [>= edges[-1]]."""
    out = []
    for col in np.asarray(losses, float).T:
        inside, _ = np.histogram(col, bins=edges)
        inside[-1] -= np.sum(col == edges[-1])     # numpy's last bin is closed
        out.append([np.sum(col < edges[0]), *inside, np.sum(col >= edges[-1])])
    return np.array(out)


def emergence_column(losses, threshold):
    """First column after which every loss is below threshold (m: the last is not)."""
    out = []
    for row in losses:
        above = np.flatnonzero(row >= threshold)
        out.append(0 if above.size == 0 else above[-1] + 1)
    return np.array(out)
