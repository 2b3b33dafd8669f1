"""α from cluster sizes: four estimators, each with a bootstrap interval.

Clusters found by QDG, sorted by size, should follow the quanta's frequencies
p_k ∝ k^-(α+1), i.e. size_r ∝ r^-a with ``a = α + 1``. Estimators (``ESTIMATORS``):

- ``"envelope"`` (the paper's): the rank-wise largest size over all cluster counts K, then
  least squares of log size on log rank over a rank window (``fit.rank_frequency_exponent``,
  method "envelope");
- ``"ols"``: the same least squares on the sizes of one K (method "ols");
- ``"mle"``: the discrete power-law maximum-likelihood exponent γ of the size distribution,
  x_min by Kolmogorov–Smirnov (``fit.discrete_power_law_mle``), read as a = 1/(γ−1);
- ``"zipf"``: maximum likelihood of every sample's cluster rank under a Zipf law truncated at
  the number of clusters, P(r) = r^-a / H_K(a) — it weights ranks by the samples in them, so
  the large, well-recovered clusters dominate and the noisy tail of small clusters matters
  little.

α is reported as ``a − 1`` (the paper's α; it may come out negative). Intervals are
percentile bootstraps. For the rank estimators ("envelope", "ols", "zipf") the samples are
the i.i.d. draws: each K's sizes are redrawn as a multinomial of the same total with the
observed proportions (resampling samples given their clusters), re-sorted, and the
estimator rerun. For "mle" the clusters are the draws of the size distribution: the sizes
are resampled with replacement, x_min held at its full-data value (as ``fit`` does). They measure sampling noise, not the clustering's bias (see the toy
bias study for that).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from common.errors import InputError
from common.results import Result, jsonable, percentile_interval
from fit import discrete_power_law_mle, rank_frequency_exponent
from fit.bootstrap import check_level, check_resamples
from fit.sizes import rank_curve
from fit.sizes import envelope as fit_envelope
from fit.sizes import zipf_mle

from .clustering import cluster_sizes

ESTIMATORS = ("envelope", "ols", "mle", "zipf")


@dataclass(frozen=True)
class AlphaEstimate(Result):
    """One estimate of α (paper's convention) with its bootstrap interval and settings.

    ``params``: ``alpha_hat``; ``conf_int(alpha)``: the percentile interval of the finite
    bootstrap draws (``bootstrap``; no row without them). ``sizes_by_k`` (not in
    ``to_dict``) are the clusterings' sizes, for ``plot``.
    """
    estimator: str
    alpha_hat: float
    level: float
    n_bootstrap: int
    settings: dict = field(default_factory=dict)
    bootstrap: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False,
                                  compare=False)
    sizes_by_k: dict | None = field(default=None, repr=False, compare=False)

    @property
    def params(self) -> dict:
        return {"alpha_hat": float(self.alpha_hat)}

    def _bounds(self, level: float) -> dict:
        return {"alpha_hat": percentile_interval(self.bootstrap, level)}

    @property
    def ci(self) -> tuple[float, float]:
        """Deprecated: ``conf_int()`` (a table) or ``to_dict()["ci"]``."""
        warnings.warn("AlphaEstimate.ci is deprecated: use conf_int() (a table with columns "
                      "lower, upper)", DeprecationWarning, stacklevel=2)
        return self._bounds(self.level)["alpha_hat"]

    def to_dict(self) -> dict:
        return jsonable({"estimator": self.estimator, "alpha_hat": self.alpha_hat,
                         "ci": list(self._bounds(self.level)["alpha_hat"]),
                         "level": self.level, "n_bootstrap": self.n_bootstrap,
                         **self.settings})

    def summary(self) -> str:
        lo, hi = self._bounds(self.level)["alpha_hat"]
        band = (f"[{self.level:.0%}: {lo:.4g}, {hi:.4g}], {self.n_bootstrap} bootstrap draws"
                if np.isfinite(lo) else "no interval (no bootstrap)")
        where = (f"clusterings K = {self.settings.get('ks')}" if self.estimator == "envelope"
                 else f"the clustering into K = {self.settings.get('k')}")
        return (f"alpha_hat ({self.estimator}) = {self.alpha_hat:.4g}  {band}\n"
                f"  from the cluster sizes of {where}")

    def plot(self, ax=None, alpha_true: float | None = None):
        """The clusterings' rank-frequency curves and their envelope with the fitted slope
        (``empirical.qdg.plots.plot_rank_frequency``)."""
        from .plots import plot_rank_frequency

        if self.sizes_by_k is None:
            raise InputError("sizes_by_k: this estimate was built without its cluster sizes")
        return plot_rank_frequency(self.sizes_by_k, alpha_true=alpha_true,
                                   alpha_hat=self.alpha_hat, ax=ax)


def _window(n: int, rank_window) -> tuple[int, int]:
    if rank_window is None:
        return (1, n)
    lo, hi = int(rank_window[0]), min(int(rank_window[1]), n)
    return (lo, hi)


def envelope(sizes_by_k: Mapping[int, Sequence[int]] | Sequence[Sequence[int]]) -> np.ndarray:
    """The paper's envelope of the clusterings' size curves (``fit.sizes.envelope``)."""
    return fit_envelope(list(sizes_by_k.values()) if isinstance(sizes_by_k, Mapping)
                        else list(sizes_by_k))


def _rank_exponent(estimator: str, sizes_by_k: dict, k: int, rank_window, xmin):
    """(a, details) for one estimator on one set of cluster sizes."""
    if estimator == "envelope":
        env = envelope(sizes_by_k)
        r = rank_frequency_exponent(env, method="ols", rank_window=_window(len(env), rank_window))
        return r.rank_exponent, {"rank_window": list(r.rank_window)}
    s = rank_curve(sizes_by_k[k])
    if estimator == "ols":
        r = rank_frequency_exponent(s, method="ols", rank_window=_window(len(s), rank_window))
        return r.rank_exponent, {"rank_window": list(r.rank_window)}
    if estimator == "mle":
        pl = discrete_power_law_mle(s, xmin=xmin, min_tail=min(10, len(s)))
        return 1.0 / (pl.gamma - 1.0), {"xmin": pl.xmin, "gamma": pl.gamma, "n_tail": pl.n_tail}
    return zipf_mle(s), {}


def _joint_resample(labels_by_k: Mapping[int, np.ndarray], used, rng) -> dict:
    """Sizes of every used clustering on one bootstrap resample of the samples (the same
    samples for every K: the clusterings partition one set)."""
    n = len(next(iter(labels_by_k.values())))
    idx = rng.integers(0, n, n)
    return {kk: rank_curve(cluster_sizes(labels_by_k[kk][idx])) for kk in used}


def estimate_alpha(sizes_by_k: Mapping[int, Sequence[int]], estimator: str = "zipf", *,
                   k: int | None = None, rank_window: tuple[int, int] | None = None,
                   bootstrap: int = 200, level: float = 0.95, seed=0,
                   labels_by_k: Mapping[int, Sequence[int]] | None = None) -> AlphaEstimate:
    """α̂ from cluster sizes (dict K → sizes of the clustering into K clusters).

    ``k``: the clustering used by the single-K estimators (default: the smallest K, the
    choice the bias study recommends: RESULTS.md, QDG).
    ``rank_window``: (first, last) ranks for "envelope"/"ols" (default all ranks).
    ``bootstrap``: resamples for the percentile interval at ``level`` (0: no interval).
    ``labels_by_k`` (K → each sample's cluster, as ``QDGClusteringSweep.labels_by_k_``): with
    them the rank estimators resample the samples once for all K and recount every
    clustering, the right unit for the envelope (without them each K is redrawn on its
    own, which makes the envelope's interval depend on how many K there are).
    """
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not sizes_by_k:
        raise InputError("sizes_by_k: no clusterings")
    check_resamples(bootstrap)
    check_level(level)
    sizes_by_k = {int(kk): rank_curve(v) for kk, v in sizes_by_k.items()}
    k = min(sizes_by_k) if k is None else int(k)
    if k not in sizes_by_k:
        raise InputError(f"k={k} is not one of the clusterings {sorted(sizes_by_k)}")
    used = [k] if estimator != "envelope" else list(sizes_by_k)
    if labels_by_k is not None:
        labels_by_k = {int(kk): np.asarray(v) for kk, v in labels_by_k.items()}
        if set(labels_by_k) != set(sizes_by_k) or len({len(v) for v in labels_by_k.values()}) != 1:
            raise InputError("labels_by_k: one label array of one length per clustering K")
        for kk in sizes_by_k:
            if not np.array_equal(rank_curve(cluster_sizes(labels_by_k[kk])), sizes_by_k[kk]):
                raise InputError(f"labels_by_k[{kk}] does not give the sizes of K={kk}")
    if max(len(sizes_by_k[kk]) for kk in used) < 3:
        raise InputError(f"clustering K={k} has {len(sizes_by_k[k])} non-empty clusters; need 3")
    a, details = _rank_exponent(estimator, sizes_by_k, k, rank_window, None)
    boots = np.empty(0)
    if bootstrap:
        rng = np.random.default_rng(seed)
        xmin = details.get("xmin")
        boots = np.empty(int(bootstrap))
        for b in range(int(bootstrap)):
            if estimator == "mle":      # clusters are the i.i.d. draws of a size law
                resampled = {kk: rng.choice(sizes_by_k[kk], size=len(sizes_by_k[kk]))
                             for kk in used}
            elif labels_by_k is not None:   # samples are the draws, shared by every K
                resampled = _joint_resample(labels_by_k, used, rng)
            else:                        # samples are the i.i.d. draws of a rank law
                resampled = {kk: rng.multinomial(int(sizes_by_k[kk].sum()),
                                                 sizes_by_k[kk] / sizes_by_k[kk].sum())
                             for kk in used}
            try:
                boots[b] = _rank_exponent(estimator, resampled, k, rank_window, xmin)[0] - 1.0
            except ValueError:
                boots[b] = np.nan
    finite = boots[np.isfinite(boots)]
    settings = {"k": None if estimator == "envelope" else k,
                "ks": sorted(sizes_by_k), **details}
    return AlphaEstimate(estimator, float(a - 1.0), level, int(finite.size), settings,
                         bootstrap=finite, sizes_by_k=sizes_by_k)


def estimate_all(sizes_by_k: Mapping[int, Sequence[int]], *, estimators=ESTIMATORS,
                 k: int | None = None, rank_window=None, bootstrap: int = 200,
                 level: float = 0.95, seed=0,
                 labels_by_k: Mapping[int, Sequence[int]] | None = None
                 ) -> dict[str, AlphaEstimate]:
    """Every estimator on the same clusterings: dict name → :class:`AlphaEstimate`."""
    return {e: estimate_alpha(sizes_by_k, e, k=k, rank_window=rank_window,
                              labels_by_k=labels_by_k,
                              bootstrap=bootstrap, level=level, seed=seed)
            for e in estimators}
