"""Numba Monte Carlo of Zipfian quanta learning (data, steps and parameter regimes).

``simulate.run(regime, alpha, x, ...)`` draws finite data, batches and learning orders
exactly (no normal approximations) and returns a ``SimulationResult`` with the mean loss,
its standard error, every realization's curve, theory's exact expectation and the fitted
exponent.
"""
from simulate.core import P_LEARNED_MAX, SimulationResult, run

__all__ = ["run", "SimulationResult", "P_LEARNED_MAX"]
