"""The power-law tail fit (fit.tails, kernels in fit._tails): the fast x_min scan against
the plain scan it replaced on the eight reference data sets, the published values of
Clauset, Shalizi & Newman 2009, and the kernels against scipy, mpmath and brute force."""
import json
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

from fit import _tails
from fit.tails import GAMMA_BOUNDS, fit_tail
from tests.naive_tails import continuous_scan, discrete_scan, discrete_tail_fit

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "powerlaw_reference_scan.json").read_text())
SETS = dict(np.load(DATA / "powerlaw_reference.npz"))


def _values(name, kind):
    return SETS[name] * (REFERENCE["factor"].get(name, 1.0) if kind == "continuous" else 1.0)


CASES = [(name, kind) for name, rec in REFERENCE["sets"].items() for kind in rec]


@pytest.mark.parametrize("name, kind", CASES)
def test_scan_finds_the_plain_scans_xmin_and_exponent(name, kind):
    """Same x_min exactly; exponent and KS distance to the plain scan's precision (its
    bounded scalar minimiser stops within ~1e-7 of the optimum; ours solves the score)."""
    ref = REFERENCE["sets"][name][kind]
    res = fit_tail(_values(name, kind), discrete=kind == "discrete")
    assert res.xmin == pytest.approx(ref["xmin"], rel=1e-12), name
    assert res.gamma == pytest.approx(ref["gamma"], rel=1e-7), name
    assert res.ks == pytest.approx(ref["ks"], rel=1e-5, abs=1e-9), name


@pytest.mark.parametrize("name, kind", [c for c in CASES
                                        if REFERENCE["sets"][c[0]][c[1]]["seconds"] < 0.2])
def test_stored_reference_is_what_the_plain_scan_gives(name, kind):
    """The stored numbers come from tests/naive_tails.py (rerun here where it is quick)."""
    scan = discrete_scan if kind == "discrete" else continuous_scan
    again = scan(_values(name, kind))
    ref = REFERENCE["sets"][name][kind]
    assert again["xmin"] == ref["xmin"] and again["gamma"] == pytest.approx(ref["gamma"],
                                                                            rel=1e-9)


# Clauset, Shalizi & Newman 2009, Table 6.1 (x_min, alpha), as the powerlaw package's tests
# quote them (testing/test_reference_data.py); quakes and surnames in the package's
# convention for repeated values, which is also ours (see that file's note on plfit).
PUBLISHED = {"words": (7, 1.95, True), "terrorism": (12, 2.4, True),
             "blackouts": (230, 2.3, False), "cities": (52.46, 2.37, False),
             "fires": (6324, 2.2, False), "flares": (323, 1.79, False),
             "quakes": (10, 1.95, False), "surnames": (14.92, 2.2, False)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_xmin_and_exponent(name):
    xmin, alpha, discrete = PUBLISHED[name]
    res = fit_tail(_values(name, "discrete" if discrete else "continuous"), discrete=discrete)
    assert res.xmin == pytest.approx(xmin, rel=1e-3), name
    assert res.gamma == pytest.approx(alpha, abs=0.05), name


@given(s=st.floats(1.01, 20.0), q=st.one_of(st.integers(1, 40).map(float),
                                            st.floats(1.0, 1e9)))
def test_hurwitz_zeta_and_its_derivatives(s, q):
    """ζ(s, q) against scipy; ∂ζ/∂s and ∂²ζ/∂s² against mpmath."""
    z, z1, z2 = _tails.zeta3(s, q)
    assert z == pytest.approx(special.zeta(s, q), rel=1e-13)
    assert z1 == pytest.approx(float(mpmath.zeta(s, q, 1)), rel=1e-11)
    assert z2 == pytest.approx(float(mpmath.zeta(s, q, 2)), rel=1e-10)


@given(seed=st.integers(0, 2 ** 32 - 1), gamma=st.floats(1.3, 4.0), xmin=st.integers(1, 50),
       n=st.integers(5, 500))
def test_discrete_exponent_maximises_the_likelihood(seed, gamma, xmin, n):
    """The Newton solve equals the bounded scalar minimiser of the plain scan."""
    rng = np.random.default_rng(seed)
    s = _tails.discrete_draws(rng.random(n), float(xmin), gamma)
    ours = _tails.discrete_gamma(np.log(s).mean(), float(xmin), *GAMMA_BOUNDS)
    assert ours == pytest.approx(discrete_tail_fit(np.log(s).sum(), n, xmin), rel=1e-6)


@given(seed=st.integers(0, 2 ** 32 - 1), gamma=st.floats(1.2, 5.0),
       xmin=st.integers(1, 1000))
def test_discrete_draws_invert_the_ccdf_exactly(seed, gamma, xmin):
    """Each draw s is the exact quantile: ζ(γ, s) ≥ (1-u)·ζ(γ, x_min) > ζ(γ, s+1)."""
    u = np.random.default_rng(seed).random(50)
    s = _tails.discrete_draws(u, float(xmin), gamma)
    z0 = special.zeta(gamma, xmin)
    assert np.all(s >= xmin) and np.all(s == np.round(s))
    u, s = u[s <= _tails.EXACT_UP_TO], s[s <= _tails.EXACT_UP_TO]
    assert np.all(special.zeta(gamma, s) >= (1 - u) * z0 * (1 - 1e-12))
    assert np.all(special.zeta(gamma, s + 1) < (1 - u) * z0 * (1 + 1e-12))


def test_fixed_xmin_equals_the_plain_fit():
    x = SETS["words"]
    res = fit_tail(x, xmin=7.5)                      # not a data value: the tail is s ≥ 8
    tail = np.sort(x[x >= 7.5])
    g = discrete_tail_fit(np.log(tail).sum(), tail.size, 7.5)
    assert res.gamma == pytest.approx(g, rel=1e-7) and res.n_tail == tail.size
    vals, first = np.unique(tail, return_index=True)
    emp = 1 - first / tail.size
    ks = np.max(np.abs(emp - special.zeta(res.gamma, vals) / special.zeta(res.gamma, 7.5)))
    assert res.ks == pytest.approx(ks, rel=1e-9)


def test_discreteness_is_read_from_the_data():
    assert fit_tail(SETS["words"]).discrete
    assert not fit_tail(SETS["fires"]).discrete
    with pytest.raises(ValueError, match="row 1"):
        fit_tail([0.5, 2, 3], discrete=True)
