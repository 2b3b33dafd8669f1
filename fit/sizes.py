"""The exponent of a size or rank-frequency distribution (used by QDG on cluster sizes).

Conventions. Items (quanta, clusters, words) with sizes s (counts) sorted in decreasing order
have a rank-frequency curve s_r ∝ r^-a; the quantization model writes the frequencies as
p_k ∝ k^-(α+1), so ``alpha_hat = a - 1`` (``theory.alpha_from_rank_slope(-a)`` where a > 1;
an estimate a ≤ 1 is reported as the α̂ ≤ 0 it implies, with a warning). The same
sizes, read as a distribution, have P(s) ∝ s^-γ in the tail; since the rank of size s is
n·P(S ≥ s) ∝ s^(1-γ), the two exponents are tied by ``a = 1/(γ-1)``, i.e. ``γ = 1 + 1/a``
(tested on synthetic samples in tests/test_fit_sizes.py).

Methods: "ols" — least squares of log size on log rank over a rank window (the paper's
method; its standard error ignores the strong correlation of neighbouring ranks, so use the
bootstrap interval); "mle" — the discrete power-law maximum-likelihood estimator of γ with
x_min chosen by the Kolmogorov–Smirnov distance (Clauset, Shalizi & Newman 2009, SIAM Rev.
51:661, §3), likelihood via the Hurwitz zeta function; "envelope" — OLS on the upper envelope
(rank-wise maximum of the normalised frequencies) of several rank-frequency curves, e.g.
clusterings with different cluster counts, whose individual curves dip where a cluster
split. ``envelope`` and ``zipf_mle`` (the Zipf law fitted to every counted unit's rank) are
also used directly by QDG's estimators.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from common.errors import InputError
from common.results import Result, jsonable
from fit.bootstrap import check_resamples, percentile_interval
from fit.tails import GAMMA_BOUNDS, PowerLawTail, fit_tail

METHODS = ("ols", "mle", "envelope")


#: the result of :func:`discrete_power_law_mle` (its name before continuous tails existed)
DiscretePowerLaw = PowerLawTail


def _tail_fit(logs_sum, n_tail, xmin):
    """ML gamma of a discrete tail: n_tail samples ≥ xmin with Σ log s = logs_sum."""
    from fit import _tails

    return float(_tails.discrete_gamma(logs_sum / n_tail, float(xmin), *GAMMA_BOUNDS))


def discrete_power_law_mle(samples, xmin=None, min_tail=10) -> PowerLawTail:
    """ML exponent γ of integer samples with P(s) ∝ s^-γ for s ≥ x_min
    (``fit.tails.fit_tail`` with ``discrete=True``).

    ``xmin``: fixed, or None to choose it among the distinct sample values (keeping at least
    ``min_tail`` samples in the tail) by the smallest KS distance (Clauset et al. 2009).
    The standard error is the inverse Fisher information, n·d²/dγ² log ζ(γ, x_min).
    """
    return fit_tail(samples, discrete=True, xmin=xmin, min_tail=min_tail)


@dataclass(frozen=True)
class RankFrequencyResult(Result):
    """A rank-frequency exponent: ``alpha_hat`` in the paper's α (frequency exponent − 1).

    ``params``: ``alpha_hat`` and ``rank_exponent`` (a = alpha_hat + 1), and ``gamma`` for
    "mle"; ``conf_int`` gives the bootstrap percentile interval of ``alpha_hat`` (shifted by
    1 for ``rank_exponent``), else ± z·stderr. ``sizes`` (not in ``to_dict``) is the
    rank-frequency curve fitted (for "envelope", the normalised envelope), for ``plot``.
    """
    method: str
    alpha_hat: float
    rank_exponent: float            # a, with s_r ∝ r^-a
    stderr: float                   # of alpha_hat (= of a)
    rank_window: tuple
    n: int
    gamma: float | None = None      # size-distribution exponent (mle)
    xmin: float | None = None
    ks: float | None = None
    bootstrap: np.ndarray | None = None
    level: float = 0.95
    warnings: list = field(default_factory=list)
    sizes: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> dict:
        out = {"alpha_hat": float(self.alpha_hat), "rank_exponent": float(self.rank_exponent)}
        if self.gamma is not None:
            out["gamma"] = float(self.gamma)
        return out

    def _bounds(self, level: float) -> dict:
        """Bootstrap percentile interval of alpha_hat, else ±z·stderr."""
        if self.bootstrap is not None and self.bootstrap.size:
            lo, hi = percentile_interval(self.bootstrap, level)
        else:
            z = special.ndtri(0.5 + level / 2)
            lo, hi = self.alpha_hat - z * self.stderr, self.alpha_hat + z * self.stderr
        return {"alpha_hat": (lo, hi), "rank_exponent": (lo + 1.0, hi + 1.0)}

    def to_dict(self) -> dict:
        return jsonable({"method": self.method, "alpha_hat": self.alpha_hat,
                         "rank_exponent": self.rank_exponent, "stderr": self.stderr,
                         "ci": list(self._bounds(self.level)["alpha_hat"]),
                         "level": self.level, "rank_window": list(self.rank_window),
                         "n": self.n, "gamma": self.gamma, "xmin": self.xmin, "ks": self.ks,
                         "n_bootstrap": 0 if self.bootstrap is None else
                         int(self.bootstrap.size), "warnings": list(self.warnings)})

    def summary(self) -> str:
        lo, hi = self._bounds(self.level)["alpha_hat"]
        lines = [f"rank-frequency exponent ({self.method}), {self.n} items, ranks "
                 f"{self.rank_window[0]}..{self.rank_window[1]}",
                 f"  s_r ∝ r^-a: a = {self.rank_exponent:.4g}",
                 f"  alpha_hat = a - 1 = {self.alpha_hat:.4g} ± {self.stderr:.2g}  "
                 f"[{self.level:.0%}: {lo:.4g}, {hi:.4g}]"]
        if self.gamma is not None:
            lines.append(f"  size distribution P(s) ∝ s^-gamma: gamma = {self.gamma:.4g}, "
                         f"x_min = {self.xmin:g}, KS = {self.ks:.3g}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def plot(self, ax=None, label: str | None = None):
        """The sizes against rank with the fitted slope (``fit.plots.plot_rank_frequency``)."""
        from fit.plots import plot_rank_frequency

        if label is None:
            label = ("envelope of the clusterings (normalised)" if self.method == "envelope"
                     else "observed")
        return plot_rank_frequency(self.sizes, self, ax=ax, label=label)


def _alpha_from_a(a):
    """alpha_hat = a − 1 from the rank exponent a, also where a ≤ 1: the model needs α > 0,
    but an estimator (and its bootstrap replicates) must report what the data say rather
    than drop the draws that fall outside the model."""
    return float(a) - 1.0


def _ols_slopes(logr, logs):
    """Least-squares slopes of each row of logs (B, m) on logr (m,)."""
    rc = logr - logr.mean()
    return ((logs - logs.mean(-1, keepdims=True)) @ rc) / (rc @ rc)


def check_cluster_sizes(sizes, name: str = "sizes") -> np.ndarray:
    """``sizes`` as a 1-d float array; a non-finite or negative size is refused, naming its
    row (1-based, in the order given)."""
    s = np.asarray(sizes, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(s) | (s < 0))
    if bad.size:
        raise InputError(f"{name}, row {bad[0] + 1}: {s[bad[0]]:g} is not a size "
                         "(need finite counts >= 0)")
    return s


def rank_curve(sizes, name: str = "sizes"):
    """Positive sizes in decreasing order (a rank-frequency curve); zeros are dropped,
    negative or non-finite sizes refused (``check_cluster_sizes``)."""
    s = np.sort(check_cluster_sizes(sizes, name))[::-1]
    return s[s > 0]


def envelope(curves, normalize: bool = False) -> np.ndarray:
    """The paper's envelope: at each rank, the largest size over several rank-frequency
    curves (e.g. clusterings with different cluster counts); shorter curves count as 0
    beyond their end. ``normalize`` divides each curve by its total first."""
    curves = [rank_curve(c, f"curve {j + 1}") for j, c in enumerate(curves)]
    if normalize:
        curves = [c / c.sum() for c in curves]
    m = max(len(c) for c in curves)
    return np.array([np.pad(c, (0, m - len(c))) for c in curves]).max(axis=0)


#: Upper bound of the rank exponent ``zipf_mle`` searches; an estimate at it means the
#: likelihood was still rising (the data do not pin the exponent down).
ZIPF_MLE_MAX = 10.0


def zipf_mle(sizes, n_ranks: int | None = None) -> float:
    """Rank exponent a maximising Σ_r s_r log(r^-a / H_R(a)), R = ``n_ranks`` (default: the
    number of items): the Zipf law truncated at R fitted to every counted unit's rank, so the
    large items dominate and the noisy tail of small ones matters little."""
    s = rank_curve(sizes)
    R = len(s) if n_ranks is None else int(n_ranks)
    logr = np.log(np.arange(1, R + 1))
    N, sl = s.sum(), float(s @ logr[:len(s)])

    def nll(a):
        return a * sl + N * np.log(np.exp(-a * logr).sum())
    res = optimize.minimize_scalar(nll, bounds=(0.0, ZIPF_MLE_MAX), method="bounded",
                                   options={"xatol": 1e-8})
    return float(res.x)


def rank_frequency_exponent(sizes, method="ols", rank_window=None, xmin=None, bootstrap=0,
                            level=0.95, seed=0, min_tail=10) -> RankFrequencyResult:
    """Estimate the rank-frequency exponent of ``sizes`` and report it as the paper's α.

    ``sizes``: counts per item (any order; zeros are dropped), or for "envelope" a list of
    such arrays. ``rank_window``: (first, last) ranks (1-based, inclusive) used by "ols" and
    "envelope" (default all). ``bootstrap``: resamples of the items (seeded by ``seed``) for
    the interval; for "mle" x_min is held at its full-data value in the resamples.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    check_resamples(bootstrap)
    rng = np.random.default_rng(seed)
    warnings = []
    if method == "envelope":
        s = envelope([sizes] if np.ndim(sizes[0]) == 0 else list(sizes), normalize=True)
    else:
        raw = check_cluster_sizes(sizes)
        if method == "mle":  # integers, checked in the order given so the row is the file's
            frac = np.flatnonzero(raw != np.round(raw))
            if frac.size:
                raise InputError(f"sizes, row {frac[0] + 1}: {raw[frac[0]]:g} is not an "
                                 "integer count (the mle method models counts)")
        s = rank_curve(raw)
    n = len(s)
    if n < 3:
        raise InputError(f"sizes: {n} positive sizes; need at least 3")
    if method == "mle":
        if rank_window is not None:
            raise InputError("rank_window: the mle method fits the sizes' tail above x_min "
                             "(chosen by KS, or --xmin); use ols or envelope for a rank window")
        pl = discrete_power_law_mle(s, xmin=xmin, min_tail=min_tail)
        a = 1.0 / (pl.gamma - 1.0)
        se = pl.stderr / (pl.gamma - 1.0) ** 2
        boot = None
        if bootstrap:
            tail = s[s >= pl.xmin]
            draws = rng.choice(tail, size=(int(bootstrap), tail.size), replace=True)
            gs = np.array([_tail_fit(np.log(d).sum(), d.size, pl.xmin) for d in draws])
            boot = np.array([_alpha_from_a(1.0 / (g - 1.0)) for g in gs])
        window = (1, int(np.sum(s >= pl.xmin)))
        if min(abs(pl.gamma - b) for b in GAMMA_BOUNDS) < 1e-4 * pl.gamma:
            warnings.append(f"gamma = {pl.gamma:.4g} sits on its search bound "
                            f"{GAMMA_BOUNDS}: the data do not determine it")
        if a <= 1:
            warnings.append(f"rank exponent a = {a:.3g} <= 1: no positive alpha")
        return RankFrequencyResult("mle", _alpha_from_a(a), a, se, window, n, pl.gamma,
                                   pl.xmin, pl.ks, boot, level, warnings, sizes=s)
    lo, hi = (1, n) if rank_window is None else (int(rank_window[0]), int(rank_window[1]))
    if not 1 <= lo < hi <= n or hi - lo < 2:
        raise InputError(f"rank_window must satisfy 1 <= first < last <= {n} with at least "
                         f"3 ranks, got {rank_window!r}")
    import statsmodels.api as sm
    r = np.arange(1, n + 1, dtype=float)
    logr, logs = np.log(r[lo - 1:hi]), np.log(s[lo - 1:hi])
    res = sm.OLS(logs, sm.add_constant(logr)).fit()
    a, se = -float(res.params[1]), float(res.bse[1])
    boot = None
    if bootstrap:
        if method == "envelope":
            warnings.append("bootstrap of the envelope resamples its points, not the curves")
        idx = rng.integers(0, n, size=(int(bootstrap), n))
        draws = -np.sort(-s[idx], axis=1)[:, lo - 1:hi]
        with np.errstate(divide="ignore"):
            slopes = _ols_slopes(logr, np.log(draws))
        boot = np.array([_alpha_from_a(-v) for v in slopes])
    if a <= 1:
        warnings.append(f"rank exponent a = {a:.3g} <= 1: no positive alpha")
    if np.log10(hi / lo) < 1:
        warnings.append(f"the rank window spans {np.log10(hi / lo):.2g} decades (< 1)")
    return RankFrequencyResult(method, _alpha_from_a(a), a, se, (lo, hi), n, None, None, None,
                               boot, level, warnings, sizes=s)
