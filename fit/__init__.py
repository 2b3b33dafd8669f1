"""Scaling-law fitting with bootstrap error bars, checked against the quantization model.

``fit.fit(form, x, y, ...)`` fits one of the forms ``power``, ``offset``, ``broken``,
``chinchilla`` or ``max`` and returns a :class:`FitResult`; ``fit.rank_frequency_exponent``
and ``fit.discrete_power_law_mle`` estimate the exponent of a size distribution;
``fit.consistency`` reads fitted exponents against the quantization model.
"""
from fit.core import fit, offset_power_law, power_law
from fit.inputs import check_xy, load_xy, read_table
from fit.forms import FORMS, JOINT_FORMS
from fit.result import FitResult

__all__ = ["fit", "power_law", "offset_power_law", "FitResult", "FORMS", "JOINT_FORMS",
           "check_xy", "load_xy", "read_table"]
