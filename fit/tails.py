"""The power-law tail of a sample: P(s) ∝ s^-gamma for s ≥ x_min, by maximum likelihood,
with x_min chosen by the Kolmogorov–Smirnov distance (Clauset, Shalizi & Newman 2009, SIAM
Rev. 51:661, §3).

Discrete samples (integer counts: cluster sizes, word frequencies) follow
P(s) = s^-gamma / ζ(gamma, x_min); continuous ones the density
(gamma - 1)/x_min · (s/x_min)^-gamma, whose ML exponent is 1 + n / Σ log(s/x_min).

The x_min scan sorts the data once and works on the distinct values with cumulative
counts and sums of logs, so every candidate's exponent is O(1) (continuous) or one Newton
solve on the Hurwitz zeta function (discrete), and its KS distance a pass over the larger
values that stops once it exceeds the best distance so far (kernels in ``fit._tails``,
compiled by Numba on first use and cached). tests/test_fit_tails.py holds it to the plain
scan this module replaced on the reference data sets of Clauset et al.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.errors import InputError
from common.results import Result, jsonable

#: the search interval of gamma; an estimate on either end means the likelihood still
#: rose there (the data do not determine gamma)
GAMMA_BOUNDS = (1.0 + 1e-6, 20.0)


@dataclass(frozen=True)
class PowerLawTail(Result):
    """A power-law tail P(s) ∝ s^-gamma for s ≥ x_min, fitted by maximum likelihood.

    ``params``: ``gamma``; ``conf_int`` is the Wald interval gamma ± z·stderr (inverse
    Fisher information). ``discrete``: the discrete (Hurwitz zeta) or continuous law.
    ``samples`` (not in ``to_dict``) are the data, sorted, for ``plot``.
    """
    gamma: float
    xmin: float
    n_tail: int
    n: int
    ks: float
    stderr: float
    loglik: float
    discrete: bool = True
    samples: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> dict:
        return {"gamma": float(self.gamma)}

    def _bounds(self, level: float) -> dict:
        from scipy.special import ndtri

        z = ndtri(0.5 + level / 2)
        return {"gamma": (self.gamma - z * self.stderr, self.gamma + z * self.stderr)}

    def to_dict(self) -> dict:
        return jsonable({k: getattr(self, k) for k in
                         ("gamma", "xmin", "n_tail", "n", "ks", "stderr", "loglik",
                          "discrete")})

    def summary(self) -> str:
        lo, hi = self._bounds(0.95)["gamma"]
        kind = "discrete" if self.discrete else "continuous"
        return (f"{kind} power law P(s) ∝ s^-gamma for s ≥ x_min (maximum likelihood)\n"
                f"  gamma = {self.gamma:.4g} ± {self.stderr:.2g}  [95%: {lo:.4g}, {hi:.4g}]\n"
                f"  x_min = {self.xmin:g} (KS distance {self.ks:.3g}), {self.n_tail} of "
                f"{self.n} samples in the tail, log-likelihood {self.loglik:.6g}")

    def ccdf(self, s) -> np.ndarray:
        """The fitted P(S ≥ s | S ≥ x_min) at sizes s ≥ x_min."""
        from fit import _tails

        s = np.asarray(s, dtype=float)
        if not self.discrete:
            return (s / self.xmin) ** (1.0 - self.gamma)
        z0 = _tails.zeta(self.gamma, self.xmin)
        return np.array([_tails.zeta(self.gamma, v) for v in s.ravel()]).reshape(s.shape) / z0

    def plot(self, ax=None):
        """Empirical P(S ≥ s) of the samples against the fitted tail (needs ``samples``)."""
        from fit.plots import plot_power_law_ccdf

        return plot_power_law_ccdf(self, ax=ax)


def check_samples(samples, discrete=None):
    """Positive finite samples as a sorted float array, and whether they are discrete
    (``discrete=None``: all integers). Discrete samples must be integers >= 1."""
    s = np.asarray(samples, dtype=float).ravel()
    if s.size == 0:
        raise InputError("samples: empty")
    integer = np.isfinite(s) & (s == np.round(s))
    discrete = bool(np.all(integer)) if discrete is None else bool(discrete)
    bad = np.flatnonzero(~np.isfinite(s) | (s < 1 if discrete else s <= 0)
                         | (~integer if discrete else False))
    if bad.size:
        need = "a positive integer" if discrete else "a positive number"
        raise InputError(f"samples, row {bad[0] + 1}: {s[bad[0]]!r} is not {need}")
    return np.sort(s), discrete


def tail_table(s_sorted):
    """Distinct values v, the count of samples ≥ each (n_ge) and the sum of their logs."""
    v, first = np.unique(s_sorted, return_index=True)
    logs = np.log(s_sorted)
    suffix = np.concatenate([np.cumsum(logs[::-1])[::-1], [0.0]])
    return v, (s_sorted.size - first).astype(np.float64), suffix[first]


def fit_tail(samples, discrete=None, xmin=None, min_tail=10) -> PowerLawTail:
    """ML exponent gamma of the tail s ≥ x_min of ``samples``.

    ``discrete``: True (integer counts, the Hurwitz-zeta law), False (the continuous law)
    or None (discrete if every sample is an integer). ``xmin``: fixed, or None to choose it
    among the distinct sample values, keeping at least ``min_tail`` samples in the tail, by
    the smallest KS distance (Clauset et al. 2009); ties go to the smaller x_min.
    """
    from fit import _tails

    s, discrete = check_samples(samples, discrete)
    v, n_ge, log_ge = tail_table(s)
    lo, hi = GAMMA_BOUNDS
    if xmin is None:
        if n_ge[0] < min_tail:
            raise InputError(f"samples: fewer than min_tail={min_tail} samples in any tail")
        j, g, d = _tails.scan(v, n_ge, log_ge, discrete, float(min_tail), lo, hi)
        xm = v[j]
    else:
        xm = float(xmin)
        if not (xm >= 1 if discrete else xm > 0):
            raise InputError(f"xmin must be {'>= 1' if discrete else '> 0'}, got {xmin!r}")
        j = int(np.searchsorted(v, xm, side="left"))
        if j == v.size or n_ge[j] < 2:
            raise InputError(f"xmin={xmin!r} leaves fewer than 2 samples in the tail")
        g = _tails.tail_exponent(xm, n_ge[j], log_ge[j], discrete, lo, hi)
        d = _tails.tail_ks(v, n_ge, j, xm, g, discrete, np.inf)
    n_tail, sum_log = int(n_ge[j]), float(log_ge[j])
    se, ll = _information(g, xm, n_tail, sum_log, discrete)
    return PowerLawTail(gamma=float(g), xmin=float(xm), n_tail=n_tail, n=int(s.size),
                        ks=float(d), stderr=se, loglik=ll, discrete=discrete, samples=s)


def _information(g, xmin, n_tail, sum_log, discrete):
    """Standard error (inverse Fisher information) and log-likelihood of the tail fit."""
    from fit import _tails

    if discrete:
        z, z1, z2 = _tails.zeta3(g, xmin)
        info = z2 / z - (z1 / z) ** 2
        se = 1.0 / np.sqrt(n_tail * info) if info > 0 else np.nan
        return float(se), float(-g * sum_log - n_tail * np.log(z))
    ll = n_tail * np.log((g - 1.0) / xmin) - g * (sum_log - n_tail * np.log(xmin))
    return float((g - 1.0) / np.sqrt(n_tail)), float(ll)
