"""Per-token losses of language models across sizes and checkpoints (the paper's §5).

``fit.tokens.analyze(LOSSES, sizes=…)`` (or ``steps=…``) reads a tokens × models matrix in
chunks and returns a :class:`TokenAnalysis`: the mean loss's exponent with bootstrap
intervals over documents, the distribution of per-token losses, each token's curve
classified as a sharp drop or a gradual power law (with a calibrated false-alarm rate),
where the drops happen and the α they imply, and emergence across checkpoints. The matrix
formats are in :mod:`fit.tokens.io`; :mod:`simulate.tokens` generates matrices with
known truth.
"""
from fit.tokens.analysis import TokenOptions, analyze
from fit.tokens.curves import Calibration, calibrate, classify, design, fit_curves
from fit.tokens.io import LossMatrix, from_arrays, open_losses
from fit.tokens.result import ESTIMATES, TokenAnalysis

__all__ = ["analyze", "TokenOptions", "TokenAnalysis", "ESTIMATES", "open_losses",
           "from_arrays", "LossMatrix", "design", "fit_curves", "classify", "calibrate",
           "Calibration"]
