"""``TokenAnalysis``: what ``fit.tokens.analyze`` finds in a per-token loss matrix.

The JSON (``to_dict``) is an interface (the report page reads it); its keys are listed in
docs/tokens.md and must stay stable.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from common.results import Result, jsonable
from fit.tokens import estimates

#: Estimates with an interval: name → what it is (the summary's and the JSON's wording).
ESTIMATES = {
    "exponent_power": "exponent of the mean loss, A·x^-e",
    "exponent_offset": "exponent of the mean loss, E + A·x^-e",
    "exponent_drops": "exponent of the sharp drops' positions, density ∝ x^-(e+1)",
    "exponent_fraction": "exponent of the fraction above threshold, E + A·x^-e",
    "alpha_power": "α from the mean loss (power law)",
    "alpha_offset": "α from the mean loss (offset form)",
    "alpha_drops": "α from where tokens drop sharply",
    "alpha_fraction": "α from the fraction of tokens above threshold",
    "alpha_gap": "α from the drops − α from the mean loss (offset form): 0 in the model",
    "monogenic_fraction": "share of changing tokens that drop sharply, drops past the "
                          "last column counted",
    "monogenic_fraction_observed": "share of changing tokens that drop sharply",
    "sharp_fraction": "share of all tokens that drop sharply",
}


@dataclasses.dataclass
class TokenAnalysis(Result):
    """Mean-loss scaling, loss distributions, per-token curves and emergence of one matrix.

    ``estimates``: name → value (see ``ESTIMATES``); ``bootstrap``: name → the resampled
    values (over documents, or tokens), from which ``conf_int`` takes percentile intervals
    of the finite ones (``n_failed(name)`` counts the others; ``n_failed_bootstrap`` the
    resamples dropped before any refit because they drew no unit);
    ``fit_intervals``: name → the interval of ``fit.fit``'s own bootstrap over the columns
    (mean-loss exponents only). The other fields are the tables behind the plots.
    """
    axis: str
    x: np.ndarray
    n_tokens: int
    n_documents: int | None
    unit: str
    mean_loss: np.ndarray
    mean_loss_boot: np.ndarray            # (B, m)
    estimates: dict
    bootstrap: dict
    fit_intervals: dict
    fits: dict                            # form → fit.FitResult of the mean loss
    classification: dict
    drops: dict
    distribution: dict
    emergence: dict
    examples: dict
    heatmap: dict
    truth: dict | None
    warnings: list
    config: dict
    level: float = 0.95
    n_failed_bootstrap: int = 0           # resamples dropped: they drew no unit at all

    # ------------------------------------------------------------------ protocol
    @property
    def params(self) -> dict:
        return {k: float(v) for k, v in self.estimates.items()}

    def _bounds(self, level: float, **kwargs):
        return {k: estimates.interval(self.bootstrap.get(k, []), level) for k in self.estimates}

    def n_failed(self, name: str) -> int:
        """Resamples whose refit of ``name`` failed (non-finite), of those kept."""
        return int(np.count_nonzero(~np.isfinite(np.asarray(self.bootstrap.get(name, []),
                                                            float))))

    def mean_loss_interval(self, level: float | None = None) -> np.ndarray:
        """(m, 2) percentile intervals of the mean loss per column."""
        level = self.level if level is None else level
        return np.array([estimates.interval(c, level) for c in self.mean_loss_boot.T])

    @property
    def alpha_true(self) -> float | None:
        return None if self.truth is None else self.truth.get("alpha")

    def summary(self) -> str:
        from fit.tokens.report import summary_text

        return summary_text(self)

    def to_dict(self) -> dict:
        from fit.tokens.report import as_dict

        return jsonable(as_dict(self))

    def plot(self, ax=None):
        """The mean loss against size (or step) with the fitted laws (observed beside
        predicted); ``fit.tokens.plots`` draws the other figures."""
        from fit.tokens.plots import plot_mean_loss

        return plot_mean_loss(self, ax=ax)
