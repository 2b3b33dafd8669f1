"""Scaling-law fitting with bootstrap error bars, checked against the quantization model.

``fit.fit(form, x, y, ...)`` fits one of the forms ``power``, ``offset``, ``broken``,
``chinchilla`` or ``max`` and returns a :class:`FitResult`; ``fit.local_exponent``,
``fit.extrapolation_check`` and ``fit.compare`` check a fit; ``fit.rank_frequency_exponent``
and ``fit.discrete_power_law_mle`` estimate the exponent of a size distribution;
``fit.consistency`` reads fitted exponents against the quantization model;
``fit.fit_tail`` fits a power-law tail (discrete or continuous) and ``fit.power_law_gof``
tests whether a power law is plausible at all (Clauset, Shalizi & Newman 2009).
"""
from fit.consistency import Consistency, consistency, implied_alpha
from fit.core import fit, offset_power_law, power_law
from fit.diagnostics import compare, extrapolation_check, local_exponent
from fit.forms import FORMS, JOINT_FORMS
from fit.inputs import check_xy, load_xy, read_table
from fit.result import FitResult
from fit.gof import power_law_gof
from fit.sizes import discrete_power_law_mle, rank_frequency_exponent
from fit.tails import fit_tail

__all__ = ["fit", "power_law", "offset_power_law", "FitResult", "FORMS", "JOINT_FORMS",
           "local_exponent", "extrapolation_check", "compare", "consistency", "Consistency",
           "implied_alpha", "rank_frequency_exponent", "discrete_power_law_mle",
           "check_xy", "load_xy", "read_table", "fit_tail", "power_law_gof"]
