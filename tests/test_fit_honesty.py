"""Honest intervals and predictions: failed refits counted, draws on a bound and an offset
above the data flagged, increasing data said so; prediction bands that agree with
statsmodels where the law is linear; a summary table that lines up at any magnitude."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fit


def _power(seed=0, n=16, sigma=0.05):
    rng = np.random.default_rng(seed)
    x = np.geomspace(10, 1e5, n)
    return x, 3.0 * x ** -0.4 * np.exp(sigma * rng.standard_normal(n))


def test_failed_refits_are_counted_in_the_summary_and_json():
    """An offset law on 4 exact points: a pairs resample holding fewer than 3 of the sizes
    is undetermined (probability 88/256), so about a third of the refits fail."""
    x = np.geomspace(10, 1e4, 4)
    res = fit.offset_power_law(x, 1 + 3 * x ** -0.5, bootstrap=200, seed=0)
    doc = res.to_dict()
    assert doc["failed"] == res.n_failed_bootstrap == doc["n_failed_bootstrap"] >= 40
    assert len(res.bootstrap_params["alpha"]) == 200 - res.n_failed_bootstrap
    share = res.n_failed_bootstrap / 200
    assert f"{res.n_failed_bootstrap} failed refits ({share:.1%}, left out of the intervals)" \
        in res.summary()
    assert any(f"{res.n_failed_bootstrap} of 200 bootstrap refits failed" in w
               for w in res.warnings)


def test_an_offset_the_data_cannot_pin_down_is_flagged_per_draw():
    """A pure power law fitted with an offset: E runs to zero in many draws (40 of 99)."""
    x, y = _power(seed=1, sigma=0.03)
    res = fit.offset_power_law(x, y, bootstrap=100, seed=0)
    on = res.to_dict()["draws_on_bound"]
    kept = len(res.bootstrap_params["E"])
    assert on["E"] == int(np.sum((res.bootstrap_params["E"] < 1e-6 * y.min())
                                 | (np.log(res.bootstrap_params["E"])
                                    <= np.log(y.min()) - 50 + 1e-5)))
    assert on["E"] > 0.2 * kept
    assert any(w.startswith(f"E is ~0 (the offset vanished) in {on['E']} of {kept}")
               for w in res.warnings)


def test_an_offset_above_the_smallest_loss_is_flagged():
    x = np.geomspace(10, 1e5, 30)
    y = 2.0 + 5.0 / x
    y[-1] = 1.9                              # one loss below the asymptote
    res = fit.offset_power_law(x, y)
    assert res.params["E"] > 1.9
    assert any("above the smallest observed loss (1.9)" in w for w in res.warnings)
    held = fit.offset_power_law(x, y, fix={"E": 1.95})    # a fixed E is the user's choice
    assert not any("above the smallest" in w for w in held.warnings)


def test_increasing_data_get_a_negative_alpha_and_a_warning():
    """N_opt against compute grows: the power law's alpha is negative and said to be."""
    C = np.geomspace(1e18, 1e23, 12)
    N_opt = 0.1 * C ** 0.5 * np.exp(0.01 * np.random.default_rng(0).standard_normal(12))
    res = fit.power_law(C, N_opt)
    assert res.params["alpha"] == pytest.approx(-0.5, abs=0.01)
    a = res.params["alpha"]
    assert any(w.startswith(f"y increases with x (Spearman rho = 1.00) and the fitted alpha = "
                            f"{a:.4g} < 0, i.e. y grows as x^{-a:.4g}") for w in res.warnings)
    x, y = _power()
    assert not any("increases" in w for w in fit.power_law(x, y).warnings)


@pytest.mark.parametrize("interval, frame", [("curve", "mean_ci"), ("observation", "obs_ci")])
def test_power_law_bands_without_a_bootstrap_are_statsmodels(interval, frame):
    """log y = log A − alpha log x is linear: the delta-method band is exact and must be
    statsmodels' own confidence (curve) and prediction (observation) intervals."""
    import statsmodels.api as sm

    x, y = _power()
    res = fit.power_law(x, y)
    new = np.array([3.0, 2e5, 1e7])
    got = res.predict(new, alpha=0.1, interval=interval)
    ols = sm.OLS(np.log(y), np.column_stack([np.ones_like(x), -np.log(x)])).fit()
    ref = ols.get_prediction(np.column_stack([np.ones_like(new), -np.log(new)])) \
        .summary_frame(alpha=0.1)
    np.testing.assert_allclose(np.log(got["predicted"]), ref["mean"], rtol=1e-10)
    np.testing.assert_allclose(np.log(got["lower"]), ref[f"{frame}_lower"], rtol=1e-8)
    np.testing.assert_allclose(np.log(got["upper"]), ref[f"{frame}_upper"], rtol=1e-8)


def test_bootstrap_bands_nest_and_hold_the_point():
    x, y = _power(seed=2)
    res = fit.power_law(x, y, bootstrap=300, seed=0)
    new = np.geomspace(5, 1e7, 7)
    wide, narrow = res.predict(new, alpha=0.05), res.predict(new, alpha=0.2)
    np.testing.assert_array_equal(wide["predicted"], res.predict(new))
    assert np.all(wide["lower"] <= narrow["lower"]) and np.all(narrow["upper"] <= wide["upper"])
    curve = res.predict(new, level=0.95, interval="curve")
    assert np.all(wide["lower"] < curve["lower"]) and np.all(curve["upper"] < wide["upper"])
    assert np.all(curve["lower"] < res.predict(new)) and np.all(res.predict(new) < curve["upper"])
    with pytest.raises(ValueError, match="interval must be one of"):
        res.predict(new, alpha=0.05, interval="sideways")


def test_the_observation_band_covers_new_points_at_its_level():
    """Monte Carlo: 95 % observation bands of fits to 40 fresh data sets cover fresh points
    at the largest fitted size in 95 % ± 3.5 % (3 standard errors of 160 trials)."""
    rng = np.random.default_rng(11)
    x = np.geomspace(10, 1e4, 12)
    hits = []
    for _ in range(40):
        y = 3.0 * x ** -0.4 * np.exp(0.05 * rng.standard_normal(12))
        band = fit.power_law(x, y).predict([1e4] * 4, alpha=0.05)
        new = 3.0 * 1e4 ** -0.4 * np.exp(0.05 * rng.standard_normal(4))
        hits += list((band["lower"] <= new) & (new <= band["upper"]))
    assert abs(np.mean(hits) - 0.95) < 3 * np.sqrt(0.95 * 0.05 / len(hits))


def test_summary_columns_line_up_whatever_the_magnitudes():
    """A prefactor of 1e30 beside an exponent of 0.3: every column starts where its header
    does and no two numbers run together."""
    rng = np.random.default_rng(4)
    x = np.geomspace(1e20, 1e24, 14)
    y = 1e30 * x ** -1.3 * np.exp(0.01 * rng.standard_normal(14))
    text = fit.power_law(x, y, bootstrap=50, seed=0).summary()
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("param"))
    header, rule, rows = lines[i], lines[i + 1], lines[i + 2:i + 4]
    starts = [k for k in range(len(rule)) if rule[k] == "-" and (k == 0 or rule[k - 1] == " ")]
    assert len(starts) == 6
    for row in rows:
        cells = [row[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        assert all(cells) and cells[0] in ("A", "alpha")
        assert all(row[s - 1] == " " for s in starts[1:]), row
        float(cells[1])                          # the value is one number, nothing run into it
        assert cells[4].startswith("[") and cells[4].endswith("]")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_trend_check_is_spearmans_rho(seed):
    """fit.checks.spearman (written out: a fit loads no scipy.stats) equals scipy's, ties
    and constant columns included."""
    from scipy.stats import spearmanr

    from fit.checks import spearman

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30))
    x, y = rng.integers(0, 5, n).astype(float), rng.integers(0, 4, n) * 1.5
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")           # scipy's constant-input notice
        expected = spearmanr(x, y).statistic
    assert spearman(x, y) == pytest.approx(expected, abs=1e-12, nan_ok=True)


def _fixed_ratio(seed, n=20, ratio=20.0, jitter=0.0):
    """Runs at a fixed tokens-per-parameter ratio (D = 20 N, times exp(jitter · z)): log N
    and log D collinear (jitter 0) or nearly (jitter 0.2: corr 0.995)."""
    N = np.geomspace(1e7, 1e10, n)
    D = ratio * N * np.exp(jitter * np.random.default_rng(seed + 100).standard_normal(n))
    law = 1.69 + 406.4 * N ** -0.34 + 410.7 * D ** -0.28
    return N, D, law * np.exp(0.02 * np.random.default_rng(seed).standard_normal(n))


def _grid(seed=0, noise=0.01):
    """A 5 x 5 grid of N and D: a well-conditioned design for a joint law."""
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e9, 5),
                                           np.geomspace(1e9, 1e11, 5)))
    y = (1.69 + 406.4 * N ** -0.34 + 410.7 * D ** -0.28) * \
        np.exp(noise * np.random.default_rng(seed).standard_normal(25))
    return N, D, y


@pytest.mark.parametrize("form", ["chinchilla", "max"])
@pytest.mark.parametrize("seed", [1, 28])
def test_a_fixed_tokens_per_parameter_ratio_is_flagged_not_fitted_silently(form, seed):
    """With D = 20 N the joint law is not identifiable: the design is near singular
    (condition number 1e4 to 1e16; the max law's through its smooth twin), the fit says so
    (text and JSON) with the correlation of log N and log D, and no free parameter gets a standard error of exactly 0 (seed 28's alpha and
    beta had one: a negative variance from inverting a singular JᵀJ, clipped to 0)."""
    N, D, y = _fixed_ratio(seed)
    res = fit.fit(form, N, y, x2=D)
    doc = res.to_dict()
    said = "corr(log N, log D) = 1.000 (near ±1: runs at one tokens-per-parameter ratio"
    assert any(said in w and "ill-conditioned design" in w for w in doc["warnings"])
    assert said in res.summary() and doc["condition_number"] > 1e3 and doc["ci_unreliable"]
    assert all(v > 0 or np.isnan(v) for v in res.stderr.values()), res.stderr
    if any(np.isnan(v) for v in res.stderr.values()):
        assert any("covariance is singular" in w for w in res.warnings)


def _condition_by_hand(res) -> float:
    """The condition number of the chinchilla law's design, written out: log f =
    log(E + A' e^{-alpha (u - ū)} + B' e^{-beta (v - v̄)}) in (log E, log A', log B', alpha,
    beta), the prefactors A' = A e^{-alpha ū} at the mean log sizes, differentiated by
    central differences, columns scaled to unit length, numpy's cond."""
    u, v = np.log(res.x), np.log(res.x2)
    p = res.params
    theta = np.array([np.log(p["E"]), np.log(p["A"]) - p["alpha"] * u.mean(),
                      np.log(p["B"]) - p["beta"] * v.mean(), p["alpha"], p["beta"]])

    def logf(t):
        return np.log(np.exp(t[0]) + np.exp(t[1] - t[3] * (u - u.mean()))
                      + np.exp(t[2] - t[4] * (v - v.mean())))
    J = np.column_stack([(logf(theta + h) - logf(theta - h)) / 2e-6
                         for h in np.eye(5) * 1e-6])
    return float(np.linalg.cond(J / np.linalg.norm(J, axis=0)))


def test_a_collinear_design_flags_its_bootstrap_intervals_and_a_grid_does_not():
    """Runs near one tokens-per-parameter ratio (corr of log N and log D 0.995): condition
    number above 100 (as written out by hand), the exponents and prefactors named, their
    bootstrap and fit-SE intervals and the derived ones starred as unreliable in the text and
    listed in the JSON's ci_unreliable. A 5 x 5 grid of N and D: under 50, nothing flagged."""
    N, D, y = _fixed_ratio(1, jitter=0.2)
    assert np.corrcoef(np.log(N), np.log(D))[0, 1] > 0.99
    res = fit.fit("chinchilla", N, y, x2=D, bootstrap=30, seed=0)
    doc, text = res.to_dict(), res.summary()
    assert doc["condition_number"] > 100
    assert doc["condition_number"] == pytest.approx(_condition_by_hand(res), rel=1e-4)
    assert {"alpha", "beta", "A", "B", "N_opt_exponent", "alpha_implied"} <= \
        set(doc["ci_unreliable"])
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    lo, hi = res.conf_int().loc["alpha"]
    assert rows["alpha"].count(" *") == 2 and f"[{lo:.6g}, {hi:.6g}] *" in rows["alpha"]
    assert rows["N_opt_exponent"].count(" *") == 1 and "* unreliable however narrow" in text
    assert any("ill-conditioned design" in w for w in res.warnings)

    N, D, y = _grid()
    good = fit.fit("chinchilla", N, y, x2=D, bootstrap=30, seed=0)
    doc, text = good.to_dict(), good.summary()
    assert doc["condition_number"] < 50 and doc["ci_unreliable"] == []
    assert doc["condition_number"] == pytest.approx(_condition_by_hand(good), rel=1e-4)
    assert " *" not in text and not any("ill-conditioned" in w for w in good.warnings)

    import pandas as pd                   # a table of group fits stars the collinear group's
    near = _fixed_ratio(1, jitter=0.2)
    both = pd.DataFrame({"N": np.r_[near[0], N], "D": np.r_[near[1], D],
                         "loss": np.r_[near[2], y], "runs": ["ratio"] * 20 + ["grid"] * 25})
    lines = fit.fit_table(both, x="N", x2="D", y="loss", group="runs").summary().splitlines()
    row = {line.split()[0]: line for line in lines if line.split()}
    assert row["ratio"].count(" *") >= 4 and " *" not in row["grid"]
    assert row["*"].startswith("* unreliable however narrow")


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), x_unit=st.floats(-6, 6), y_unit=st.floats(-3, 3))
def test_the_condition_number_does_not_depend_on_units(seed, x_unit, y_unit):
    """Sizes in other units (x · 10^k) and losses in other units (y · 10^m) change A and E,
    not what the data determine: the same condition number. A pure power law's design is
    orthogonal once the prefactor is taken at the mean log size: exactly 1."""
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e5, 1e9, 15)
    y = (1.7 + 400 * x ** -0.34) * np.exp(0.01 * rng.standard_normal(15))
    ref = fit.fit("offset", x, y).info["condition_number"]
    moved = fit.fit("offset", x * 10.0 ** x_unit, y * 10.0 ** y_unit)
    assert moved.info["condition_number"] == pytest.approx(ref, rel=1e-3)
    power = fit.fit("power", x * 10.0 ** x_unit, y)
    assert power.info["condition_number"] == pytest.approx(1.0, abs=1e-9)


def test_independent_n_and_d_are_not_flagged_and_a_fixed_value_keeps_its_zero_error():
    """A 5 x 5 grid of N and D: no collinearity warning; E held fixed has variance 0 by
    construction and keeps it (it is not a singular covariance)."""
    N, D, y = _grid()
    res = fit.fit("chinchilla", N, y, x2=D, fix={"E": 1.69})
    assert not any("ill-conditioned" in w or "singular" in w for w in res.warnings)
    assert res.stderr["E"] == 0 and all(res.stderr[k] > 0 for k in ("A", "B", "alpha", "beta"))
