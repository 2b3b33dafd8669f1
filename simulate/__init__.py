"""Numba Monte Carlo of Zipfian quanta learning (data, steps and parameter regimes)."""
