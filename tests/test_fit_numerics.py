"""Numerical honesty of the fits (issue #19): units near float64's limits give the unit
data's exponents without a warning that blames the data; degenerate inputs are refused or
flagged; a single resample is refused."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fit
from common.errors import InputError
from fit.sizes import rank_frequency_exponent


def _curve(seed=0, n=20):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e9, n)
    return x, (1.7 + 400 * x ** -0.34) * np.exp(0.01 * rng.standard_normal(n))


@pytest.mark.parametrize("form", ["power", "offset"])
@pytest.mark.parametrize("sx, sy", [(1, 1e290), (1, 1e-300), (1e-290, 1), (1e290, 1),
                                    (1e-300, 1e300)])
def test_units_near_the_float_limits_change_no_exponent(form, sx, sy):
    """Sizes and losses scaled by up to 1e±300: the same exponent and relative intervals,
    finite non-zero bootstrap standard errors of the prefactors, no warning."""
    x, y = _curve()
    unit = fit.fit(form, x, y, bootstrap=200, seed=1)
    scaled = fit.fit(form, x * sx, y * sy, bootstrap=200, seed=1)
    assert scaled.params["alpha"] == pytest.approx(unit.params["alpha"], rel=1e-8)
    np.testing.assert_allclose(scaled.conf_int().loc["alpha"], unit.conf_int().loc["alpha"],
                               rtol=1e-7)
    for name, se in scaled.bootstrap_stderr().items():
        assert np.isfinite(se) and se > 0, (name, se)
        if sx != 1 and name == "A":   # A·sx^alpha: its spread takes alpha's times log sx
            continue
        rel = se / scaled.params[name]
        assert rel == pytest.approx(unit.bootstrap_stderr()[name] / unit.params[name],
                                    rel=1e-5), name
    assert scaled.warnings == unit.warnings == []


def test_a_prefactor_beyond_float64_is_flagged_as_a_matter_of_units():
    """A = exp(log A) past 1e308: the exponent is the unit data's, and the warning names the
    units, not the data."""
    x = np.geomspace(1e10, 1e14, 20)
    y = 1e300 * (x / 1e10) ** -1.0 * np.exp(0.01 * np.random.default_rng(0).standard_normal(20))
    res = fit.fit("power", x, y)
    assert res.params["alpha"] == pytest.approx(fit.fit("power", x, y / 1e300).params["alpha"],
                                                rel=1e-10)
    assert not np.isfinite(res.params["A"])
    assert any("outside float64's range" in w and "units" in w for w in res.warnings)
    assert not any("do not pin down" in w for w in res.warnings)


@pytest.mark.parametrize("form", ["power", "offset"])
def test_degenerate_data_are_refused(form):
    x, _ = _curve()
    with pytest.raises(InputError, match="y equals x"):
        fit.fit(form, x, x.copy())
    with pytest.raises(InputError, match="constant loss"):
        fit.fit(form, x, np.full_like(x, 2.0))


def test_an_exact_law_is_flagged():
    x = np.geomspace(10, 1e4, 12)
    res = fit.fit("power", x, 3.0 * x ** -0.5)
    assert any("zero residuals" in w for w in res.warnings)
    noisy = fit.fit("power", x, 3.0 * x ** -0.5 * (1 + 1e-3 * np.sin(np.arange(12))))
    assert not any("zero residuals" in w for w in noisy.warnings)


@pytest.mark.parametrize("call", [
    lambda: fit.fit("power", *_curve(), bootstrap=1),
    lambda: fit.fit("offset", *_curve(), bootstrap=1, ci_method="bca"),
    lambda: rank_frequency_exponent(np.arange(1, 50), bootstrap=1)])
def test_a_single_resample_is_refused(call):
    with pytest.raises(InputError, match="single resample"):
        call()


@given(seed=st.integers(0, 2 ** 32 - 1))
def test_an_interval_that_excludes_its_estimate_is_flagged(seed):
    """Few BCa resamples: whenever an interval misses the estimate, the result says so."""
    x, y = _curve(seed % 1000)
    res = fit.fit("power", x, y, bootstrap=3, ci_method="bca", seed=seed)
    ci = res.conf_int()
    for name, value in res.params.items():
        lo, hi = ci.loc[name]
        excluded = np.isfinite(lo) and np.isfinite(hi) and not lo <= value <= hi
        assert excluded == any(f"interval of {name} " in w and "excludes" in w
                               for w in res.warnings), (name, lo, value, hi, res.warnings)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_sizes_near_the_float_limits_change_no_exponent(scale):
    """The continuous tail fit and the rank-frequency slope read sizes in any unit: x_min
    scales with them, the exponents do not move."""
    from pathlib import Path

    from fit.tails import fit_tail

    d = np.load(Path(__file__).parent / "data" / "powerlaw_reference.npz")["blackouts"] * 1e-3
    unit, scaled = fit_tail(d, discrete=False), fit_tail(d * scale, discrete=False)
    assert scaled.xmin / scale == pytest.approx(unit.xmin, rel=1e-12)
    assert scaled.gamma == pytest.approx(unit.gamma, rel=1e-10)
    assert scaled.ks == pytest.approx(unit.ks, rel=1e-9)
    assert rank_frequency_exponent(d * scale, method="ols").alpha_hat == pytest.approx(
        rank_frequency_exponent(d, method="ols").alpha_hat, rel=1e-10)
