"""Is a power law plausible at all? The goodness-of-fit test of Clauset, Shalizi & Newman
(2009, §4) and the likelihood-ratio comparisons of their §5.

The p-value is semi-parametric bootstrap of the KS distance: each synthetic data set has
the data's size n; each of its points is, with probability n_tail/n, drawn from the fitted
power law above x_min, and otherwise drawn uniformly from the observed values below x_min.
Every synthetic set is fitted exactly as the data were, x_min re-estimated by the KS scan
(``fit.tails.fit_tail``), and p is the share of synthetic KS distances at least as large as
the data's. Its Monte Carlo standard error is sqrt(p(1-p)/sims); Clauset et al. rule the
power law out at p ≤ 0.1 (2500 sets give p to about ±0.01).

Each synthetic set draws from its own generator (``SeedSequence(seed).spawn(sims)``), so
the result depends on the seed only, not on the number of worker threads; the scan kernels
release the GIL, so the threads run on all cores.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from common.errors import InputError
from common.results import Result, jsonable
from fit.alternatives import ALTERNATIVES, Comparison, compare_alternatives
from fit.tails import PowerLawTail, fit_tail

#: Clauset et al.'s threshold: p at or below it rules the power law out
P_THRESHOLD = 0.1


@dataclass(frozen=True)
class GoodnessOfFit(Result):
    """A power-law tail with its goodness-of-fit p-value and the comparisons with the
    alternatives (the result protocol of ``common.results``).

    ``params``: ``gamma``, ``xmin`` and ``p_value``; ``conf_int`` gives gamma's Wald interval
    and p's Clopper–Pearson interval over the ``sims`` synthetic sets (x_min has none).
    """
    tail: PowerLawTail
    p_value: float
    p_se: float
    sims: int
    n_failed: int
    seed: object
    ks_sims: np.ndarray = field(repr=False, compare=False)
    comparisons: tuple = ()
    level: float = 0.95

    @property
    def params(self) -> dict:
        return {"gamma": float(self.tail.gamma), "xmin": float(self.tail.xmin),
                "p_value": float(self.p_value)}

    @property
    def plausible(self) -> bool:
        """Whether the power law survives the test (p > 0.1, Clauset et al. §4.2)."""
        return self.p_value > P_THRESHOLD

    def _bounds(self, level: float) -> dict:
        from scipy.special import betaincinv

        k, m = round(self.p_value * self.valid), self.valid
        lo = betaincinv(k, m - k + 1, (1 - level) / 2) if k > 0 else 0.0
        hi = betaincinv(k + 1, m - k, (1 + level) / 2) if k < m else 1.0
        return {"gamma": self.tail._bounds(level)["gamma"], "xmin": (np.nan, np.nan),
                "p_value": (float(lo), float(hi))}

    @property
    def valid(self) -> int:
        """Synthetic sets that could be fitted (the p-value's denominator)."""
        return self.sims - self.n_failed

    def to_dict(self) -> dict:
        return jsonable({
            "tail": self.tail.to_dict(), "p_value": self.p_value, "p_se": self.p_se,
            "p_ci": list(self._bounds(self.level)["p_value"]), "level": self.level,
            "plausible": self.plausible, "sims": self.sims, "n_failed": self.n_failed,
            "seed": self.seed, "ks": self.tail.ks,
            "ks_sims_quantiles": dict(zip(("q05", "q50", "q95"),
                                          np.quantile(self.ks_sims, [0.05, 0.5, 0.95])))
            if self.ks_sims.size else None,
            "comparisons": [{**c.__dict__, "favours": c.favours} for c in self.comparisons]})

    def summary(self) -> str:
        lo, hi = self._bounds(self.level)["p_value"]
        verdict = "plausible" if self.plausible else f"ruled out (p <= {P_THRESHOLD:g})"
        lines = [self.tail.summary(),
                 f"goodness of fit (Clauset, Shalizi & Newman 2009): p = {self.p_value:.3f} ± "
                 f"{self.p_se:.3f} [{self.level:.0%}: {lo:.3f}, {hi:.3f}] over {self.valid} "
                 f"synthetic sets (seed {self.seed}): the power law is {verdict}"]
        if self.n_failed:
            lines.append(f"warning: {self.n_failed} synthetic sets could not be fitted")
        if self.comparisons:
            lines.append(f"  {'alternative':<22} {'LR (pl - alt)':>13} {'normalised':>10} "
                         f"{'p':>7}  favours")
            for c in self.comparisons:
                lines.append(f"  {c.alternative:<22} {c.R:13.4g} {c.normalized_R:10.3f} "
                             f"{c.p_value:7.3f}  {c.favours}"
                             + ("  (nested: LR test)" if c.nested else ""))
        return "\n".join(lines)

    def plot(self, ax=None):
        """The data's CCDF against the fitted tail (``PowerLawTail.plot``)."""
        return self.tail.plot(ax=ax)


def power_law_gof(samples, discrete=None, xmin=None, min_tail=10, sims=1000, seed=0,
                  workers=None, compare=True) -> GoodnessOfFit:
    """The Clauset et al. goodness-of-fit test of a power-law tail of ``samples``, with the
    likelihood-ratio comparisons against ``fit.alternatives.ALTERNATIVES``.

    ``discrete``, ``xmin``, ``min_tail``: as ``fit.tails.fit_tail`` (with ``xmin`` fixed, the
    synthetic sets keep it fixed too). ``sims``: synthetic data sets (>= 1); ``seed``: an
    integer or ``numpy.random.SeedSequence``; ``workers``: threads (default: all cores).
    ``compare``: also fit the alternatives (False: the p-value only).
    """
    if isinstance(sims, bool) or not isinstance(sims, (int, np.integer)) or sims < 1:
        raise InputError(f"sims must be a positive integer, got {sims!r}")
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers!r}")
    tail = fit_tail(samples, discrete=discrete, xmin=xmin, min_tail=min_tail)
    ks = synthetic_ks(tail, sims, seed, workers, fixed_xmin=xmin is not None,
                      min_tail=min_tail)
    ok = ks[np.isfinite(ks)]
    p = float(np.mean(ok >= tail.ks)) if ok.size else np.nan
    se = float(np.sqrt(p * (1 - p) / ok.size)) if ok.size else np.nan
    comparisons = ()
    if compare:
        comparisons = tuple(compare_alternatives(tail.samples[tail.samples >= tail.xmin],
                                                 tail.xmin, tail.gamma, tail.discrete))
    seed_repr = seed if isinstance(seed, (int, np.integer)) else repr(seed)
    return GoodnessOfFit(tail=tail, p_value=p, p_se=se, sims=int(sims),
                         n_failed=int(sims - ok.size), seed=seed_repr, ks_sims=ok,
                         comparisons=comparisons)


def synthetic_ks(tail: PowerLawTail, sims: int, seed=0, workers=1, fixed_xmin=False,
                 min_tail=10) -> np.ndarray:
    """KS distances of ``sims`` semi-parametric synthetic sets, each refitted like the data
    (NaN where a set could not be fitted)."""
    children = np.random.SeedSequence(seed).spawn(sims) \
        if not isinstance(seed, np.random.SeedSequence) else seed.spawn(sims)
    body = tail.samples[tail.samples < tail.xmin]

    def one(child):
        rng = np.random.default_rng(child)
        data = synthetic_set(tail, body, rng)
        try:
            return fit_tail(data, discrete=tail.discrete,
                            xmin=tail.xmin if fixed_xmin else None, min_tail=min_tail).ks
        except InputError:
            return np.nan
    if workers == 1:
        return np.array([one(c) for c in children])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.fromiter(pool.map(one, children), dtype=float, count=sims)


def synthetic_set(tail: PowerLawTail, body: np.ndarray, rng) -> np.ndarray:
    """One synthetic data set of the data's size: Binomial(n, n_tail/n) draws from the
    fitted power law, the rest drawn uniformly from the observed values below x_min."""
    from fit import _tails

    n = tail.n
    n_pl = int(rng.binomial(n, tail.n_tail / n)) if body.size else n
    u = rng.random(n_pl)
    if tail.discrete:
        pl = _tails.discrete_draws(u, tail.xmin, tail.gamma)
    else:
        pl = tail.xmin * (1.0 - u) ** (-1.0 / (tail.gamma - 1.0))
    return np.concatenate([pl, rng.choice(body, n - n_pl)]) if n_pl < n else pl


__all__ = ["power_law_gof", "GoodnessOfFit", "Comparison", "ALTERNATIVES", "synthetic_ks",
           "synthetic_set", "P_THRESHOLD"]
