"""Scaling exponents predicted by the model, their inverses, and local exponents.

α_N = α (parameters), α_D = α_S = α/(α+1) (data, steps); with compute c = 6ND the optimum
has N* ∝ c^(1/(α+2)), D* ∝ c^((α+1)/(α+2)), L* − L∞ ∝ c^(−α/(α+2)).
"""
from __future__ import annotations

import math

import numpy as np

from common.errors import InputError
from theory._checks import check_alpha, check_K, check_sizes, check_tau, finish
from theory.zipf import frequencies


def _exponent(value, name: str, upper: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0 or (upper is not None and v >= upper):
        bound = f" and < {upper}" if upper is not None else ""
        raise InputError(f"{name} must be finite, > 0{bound}, got {value!r}")
    return v


def alpha_N(alpha) -> float:
    """Parameter exponent α_N = α."""
    return check_alpha(alpha)


def alpha_D(alpha) -> float:
    """Data exponent α_D = α/(α+1)."""
    alpha = check_alpha(alpha)
    return alpha / (alpha + 1.0)


def alpha_S(alpha) -> float:
    """Step exponent α_S = α/(α+1) (single epoch, either rule)."""
    return alpha_D(alpha)


def alpha_from_alpha_N(aN) -> float:
    """α from a measured parameter exponent: α = α_N."""
    return _exponent(aN, "alpha_N")


def alpha_from_alpha_D(aD) -> float:
    """α from a measured data (or step) exponent: α = α_D/(1 − α_D), needs 0 < α_D < 1."""
    aD = _exponent(aD, "alpha_D", upper=1.0)
    return aD / (1.0 - aD)


def alpha_from_rank_slope(slope) -> float:
    """α from the slope of log-frequency against log-rank, slope = −(α+1): α = −slope − 1."""
    try:
        v = float(slope)
    except (TypeError, ValueError):
        raise InputError(f"slope must be a number < -1, got {slope!r}") from None
    if not math.isfinite(v) or v >= -1.0:
        raise InputError(f"slope must be finite and < -1 (frequencies k^-(alpha+1)), got {slope!r}")
    return -v - 1.0


def tilted_exponents(alpha, gamma) -> tuple[float, float]:
    """(α_N, α_D) when b_k − a_k ∝ k^−γ: α_N = α+γ, α_D = (α+γ)/(α+1) (needs α+γ > 0)."""
    alpha = check_alpha(alpha)
    try:
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise InputError(f"gamma must be a number, got {gamma!r}") from None
    if not math.isfinite(gamma) or alpha + gamma <= 0:
        raise InputError(f"gamma must be finite with alpha + gamma > 0, got {gamma!r}")
    return alpha + gamma, (alpha + gamma) / (alpha + 1.0)


def alpha_gamma_from_exponents(alpha_N, alpha_D) -> tuple[float, float]:
    """(α, γ) from a measured pair (α_N, α_D) of the tilted model: α = α_N/α_D − 1,
    γ = α_N − α. Needs α_N > α_D > 0."""
    aN, aD = _exponent(alpha_N, "alpha_N"), _exponent(alpha_D, "alpha_D")
    if aN <= aD:
        raise InputError(f"alpha_N must exceed alpha_D (alpha = alpha_N/alpha_D - 1 > 0), "
                         f"got alpha_N={alpha_N!r}, alpha_D={alpha_D!r}")
    alpha = aN / aD - 1.0
    return alpha, aN - alpha


def local_exponent(f, x, offset=0.0, h=1e-3):
    """−d log(f(x) − offset) / d log x by a central difference of width 2h in log x.

    Use ``offset`` = L∞ to see how far a finite range is from the asymptotic exponent.
    ``f`` must accept numpy arrays; it is called at x·e^±h.
    """
    x = check_sizes(x, "x")
    if x.size and (x <= 0).any():
        raise InputError("x must be > 0")
    if not (isinstance(h, (int, float)) and 0 < h < 1):
        raise InputError(f"h must be a step in (0, 1), got {h!r}")
    up = np.asarray(f(x * math.exp(h)), dtype=float) - offset
    down = np.asarray(f(x * math.exp(-h)), dtype=float) - offset
    with np.errstate(divide="ignore", invalid="ignore"):
        return finish(-(np.log(up) - np.log(down)) / (2.0 * h))


def sliding_exponent(x, y, window=2, offset=0.0):
    """The local exponent of data: −slope of log(y − offset) against log x by least squares
    over each run of ``window`` consecutive points, sorted by x (``window=2``: between
    neighbours). Returns ``(x_mid, exponent)``, x_mid the geometric mean of each run.

    The data counterpart of :func:`local_exponent`: a curve that has reached its asymptote
    shows a flat local exponent; a drifting one is still pre-asymptotic (or has an
    irreducible loss, ``offset``, to subtract). Refuses x ≤ 0 and y − offset ≤ 0 (naming the
    row, counted from 1 in the order given) and a window outside 2 … len(x).
    """
    x = check_sizes(x, "x")
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or y.shape != x.shape:
        raise InputError(f"x and y must be 1-d of one length, got shapes {x.shape} and {y.shape}")
    for name, bad in (("x", ~(x > 0)), ("y", ~(y - offset > 0))):
        rows = np.flatnonzero(bad)
        if rows.size:
            what = "x must be > 0" if name == "x" else "y - offset must be positive"
            raise InputError(f"{name}, row {rows[0] + 1}: {what}")
    try:
        w = None if isinstance(window, bool) else int(window)
    except (TypeError, ValueError):
        w = None
    if w is None or w != window or not 2 <= w <= x.size:
        raise InputError(f"window must be an integer between 2 and the number of points "
                         f"({x.size}), got {window!r}")
    order = np.argsort(x, kind="stable")
    u, v = np.log(x[order]), np.log(y[order] - offset)
    uw = np.lib.stride_tricks.sliding_window_view(u, w)
    vw = np.lib.stride_tricks.sliding_window_view(v, w)
    uc = uw - uw.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):   # a run of one repeated x: NaN
        slope = np.sum(uc * (vw - vw.mean(1, keepdims=True)), 1) / np.sum(uc * uc, 1)
    return np.exp(uw.mean(1)), -slope


def finite_K_cutoff(alpha, K, tau=1) -> float:
    """D ≈ τ/p_K, where the rarest of K quanta is typically learned: power-law fits of
    L(D) should stay well below it."""
    alpha, tau = check_alpha(alpha), check_tau(tau)
    K = check_K(K)
    if K is None:
        raise InputError("K must be finite for a cut-off")
    return tau / float(frequencies(alpha, K, K))
