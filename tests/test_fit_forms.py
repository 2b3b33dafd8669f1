"""fit forms: exact recovery, agreement with independent routes, invariances."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import fit
from fit.forms import form_spec, huber, objective

X1 = np.geomspace(10, 1e5, 25)
N2 = np.repeat(np.geomspace(1e6, 1e9, 7), 7)
D2 = np.tile(np.geomspace(1e7, 1e11, 7), 7)

# Ground truth per form, written out here (not computed by fit/).
CASES = {
    "power": (dict(A=3.0, alpha=0.4), lambda x, p: p["A"] * x ** -p["alpha"]),
    "offset": (dict(E=1.5, A=4.0, alpha=0.6), lambda x, p: p["E"] + p["A"] * x ** -p["alpha"]),
    "broken": (dict(A=5.0, alpha=0.2, alpha2=0.8, x_break=1e3),
               # smooth bend of width 0.1 in ln x (the default `smooth`)
               lambda x, p: p["A"] * x ** -p["alpha"] * np.exp(
                   -(p["alpha2"] - p["alpha"]) * 0.1 * np.logaddexp(
                       0, (np.log(x) - np.log(p["x_break"])) / 0.1))),
    "chinchilla": (dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
                   lambda nd, p: p["E"] + p["A"] * nd[0] ** -p["alpha"]
                   + p["B"] * nd[1] ** -p["beta"]),
    "max": (dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
            lambda nd, p: p["E"] + np.maximum(p["A"] * nd[0] ** -p["alpha"],
                                              p["B"] * nd[1] ** -p["beta"])),
}


def _data(form):
    truth, f = CASES[form]
    if form in fit.JOINT_FORMS:
        return truth, N2, f((N2, D2), truth), D2
    return truth, X1, f(X1, truth), None


@pytest.mark.parametrize("form", list(CASES))
def test_exact_recovery_on_noiseless_data(form):
    truth, x, y, x2 = _data(form)
    res = fit.fit(form, x, y, x2=x2)
    assert res.converged
    for k, v in truth.items():
        assert res.params[k] == pytest.approx(v, rel=1e-6), f"{form}: {k}"
    np.testing.assert_allclose(res.predict(x, x2), y, rtol=1e-8)
    # noiseless data: the only note is that the intervals measure nothing
    assert all("zero residuals" in w for w in res.warnings), res.warnings


def test_power_law_matches_normal_equations():
    rng = np.random.default_rng(3)
    y = 2.0 * X1 ** -0.3 * np.exp(0.05 * rng.standard_normal(X1.size))
    res = fit.power_law(X1, y)
    design = np.column_stack([np.ones_like(X1), -np.log(X1)])
    beta = np.linalg.solve(design.T @ design, design.T @ np.log(y))
    assert res.params["alpha"] == pytest.approx(beta[1], rel=1e-12)
    assert res.params["A"] == pytest.approx(np.exp(beta[0]), rel=1e-12)
    resid = np.log(y) - design @ beta
    s2 = resid @ resid / (X1.size - 2)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(design.T @ design)))
    assert res.stderr["alpha"] == pytest.approx(se[1], rel=1e-10)


def test_weighted_power_law_matches_weighted_normal_equations():
    rng = np.random.default_rng(4)
    sigma = 0.01 * (1 + rng.random(X1.size))
    y = 2.0 * X1 ** -0.3 * (1 + sigma * rng.standard_normal(X1.size))
    res = fit.power_law(X1, y, sigma=sigma)
    w = (y / sigma) ** 2
    design = np.column_stack([np.ones_like(X1), -np.log(X1)])
    beta = np.linalg.solve(design.T @ (w[:, None] * design), design.T @ (w * np.log(y)))
    assert res.params["alpha"] == pytest.approx(beta[1], rel=1e-10)


@pytest.mark.parametrize("form", ["chinchilla", "max"])
def test_huber_fit_is_at_least_as_good_as_scipy_from_the_best_grid_point(form):
    truth, x, y, x2 = _data(form)
    rng = np.random.default_rng(5)
    y = y * np.exp(0.02 * rng.standard_normal(y.size))
    res = fit.fit(form, x, y, x2=x2)
    spec = form_spec(form)
    X, logy = (np.log(x), np.log(x2)), np.log(y)

    def f(theta):
        return float(np.sum(huber(logy - spec.model(theta[None], X)[0][0], 1e-3)))

    ref = minimize(f, np.array(res.info["best_start"]), method="L-BFGS-B",
                   options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12})
    assert res.objective <= ref.fun * (1 + 1e-6), "the batched solver stopped above scipy"
    theta_ref = dict(zip(spec.internal, ref.x))
    assert res.params["alpha"] == pytest.approx(theta_ref["alpha"], abs=2e-3)
    assert res.params["beta"] == pytest.approx(theta_ref["beta"], abs=2e-3)
    assert res.objective == pytest.approx(f(res.theta), rel=1e-12)


def test_chinchilla_data_reproduces_the_published_replication():
    """Besiroglu et al. 2024 (arXiv:2404.10102), Table 1 / eq. 3: refitting Hoffmann et al.'s
    240 runs with approach 3 gives E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658."""
    from fit.literature import load_chinchilla

    d = load_chinchilla()
    res = fit.fit("chinchilla", d["N"], d["loss"], x2=d["D"])
    assert res.params["E"] == pytest.approx(1.82, abs=0.01)
    assert res.params["alpha"] == pytest.approx(0.3478, abs=0.002)
    assert res.params["beta"] == pytest.approx(0.3658, abs=0.002)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), cx=st.floats(1e-3, 1e3), cy=st.floats(1e-3, 1e3))
@pytest.mark.parametrize("form", ["power", "offset"])
def test_rescaling_changes_prefactors_not_exponents(form, seed, cx, cy):
    rng = np.random.default_rng(seed)
    truth, x, y, _ = _data(form)
    y = y * np.exp(0.01 * rng.standard_normal(y.size))
    a = fit.fit(form, x, y)
    b = fit.fit(form, cx * x, cy * y)
    assert b.params["alpha"] == pytest.approx(a.params["alpha"], rel=1e-6, abs=1e-8)
    assert b.params["A"] == pytest.approx(a.params["A"] * cy * cx ** a.params["alpha"], rel=1e-5)
    if "E" in a.params:
        assert b.params["E"] == pytest.approx(a.params["E"] * cy, rel=1e-5)


@settings(max_examples=8)
@given(cx=st.floats(1e-2, 1e2), cd=st.floats(1e-2, 1e2), cy=st.floats(0.1, 10))
def test_rescaling_joint_form_keeps_exponents(cx, cd, cy):
    truth, x, y, x2 = _data("chinchilla")
    y = y * np.exp(0.01 * np.random.default_rng(1).standard_normal(y.size))
    a = fit.fit("chinchilla", x, y, x2=x2)
    b = fit.fit("chinchilla", cx * x, cy * y, x2=cd * x2)
    assert b.params["alpha"] == pytest.approx(a.params["alpha"], rel=1e-4)
    assert b.params["beta"] == pytest.approx(a.params["beta"], rel=1e-4)
    assert b.params["E"] == pytest.approx(a.params["E"] * cy, rel=1e-4)


def test_objective_is_sum_of_huber_terms():
    spec = form_spec("chinchilla")
    theta = np.array([0.5, 6.0, 6.0, 0.3, 0.3])
    X = (np.log(N2), np.log(D2))
    logy = np.log(np.full(N2.size, 2.0))
    pred = np.log(np.exp(0.5) + np.exp(6.0) * N2 ** -0.3 + np.exp(6.0) * D2 ** -0.3)
    r = logy - pred
    expect = np.sum(np.where(np.abs(r) <= 1e-3, r * r / 2, 1e-3 * (np.abs(r) - 5e-4)))
    assert objective(spec, theta, X, logy, loss="huber")[0] == pytest.approx(expect, rel=1e-12)


def test_short_range_and_few_points_warn_but_fit():
    x = np.geomspace(100, 300, 6)
    res = fit.power_law(x, 2 * x ** -0.5)
    assert any("decades" in w for w in res.warnings)
    assert any("only 6 points" in w for w in res.warnings)
    assert "warning:" in res.summary()


def test_offset_form_on_a_pure_power_law_flags_E_on_its_bound():
    x = np.geomspace(10, 1e4, 20)
    res = fit.offset_power_law(x, 2 * x ** -0.5)
    assert res.params["alpha"] == pytest.approx(0.5, rel=1e-6)
    assert res.params["E"] < 1e-12
    assert any(w.startswith("E sits on its bound") for w in res.warnings)


def test_aic_prefers_the_true_form_and_compare_table():
    from fit.diagnostics import compare

    rng = np.random.default_rng(8)
    truth, x, y, _ = _data("offset")
    y = y * np.exp(0.01 * rng.standard_normal(y.size))
    r_off, r_pow = fit.fit("offset", x, y), fit.fit("power", x, y)
    assert r_off.aic < r_pow.aic - 10
    table = compare([r_pow, r_off])
    assert table.splitlines()[1].split()[0] == "offset"
    with pytest.raises(ValueError, match="differ in their data"):
        compare([r_off, fit.fit("power", x, y * 1.01)])


def test_power_aic_equals_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(9)
    y = 3 * X1 ** -0.2 * np.exp(0.03 * rng.standard_normal(X1.size))
    ref = sm.OLS(np.log(y), sm.add_constant(np.log(X1))).fit()
    res = fit.power_law(X1, y)
    assert res.aic == pytest.approx(ref.aic) and res.bic == pytest.approx(ref.bic)
    assert res.info["rsquared"] == pytest.approx(ref.rsquared, rel=1e-12)
    # weighted: the closed form against statsmodels' WLS with weights (y/sigma)²
    sigma = 0.01 * y * (1 + rng.random(X1.size))
    wref = sm.WLS(np.log(y), sm.add_constant(-np.log(X1)), weights=(y / sigma) ** 2).fit()
    wres = fit.power_law(X1, y, sigma=sigma)
    assert wres.params["alpha"] == pytest.approx(wref.params[1], rel=1e-10)
    assert wres.stderr["alpha"] == pytest.approx(wref.bse[1], rel=1e-8)
    assert wres.llf == pytest.approx(wref.llf, rel=1e-10)
    assert wres.info["rsquared"] == pytest.approx(wref.rsquared, rel=1e-10)
    # the nonlinear forms use the same Gaussian likelihood of log residuals
    off = fit.fit("offset", X1, y)
    r = off.resid
    llf = -X1.size / 2 * (np.log(2 * np.pi * np.mean(r * r)) + 1)
    assert off.llf == pytest.approx(llf, rel=1e-9)


def test_local_exponent_of_pure_and_offset_power_laws():
    from fit.diagnostics import local_exponent

    xm, ex = local_exponent(X1, 2 * X1 ** -0.7, window=5)
    np.testing.assert_allclose(ex, 0.7, rtol=1e-12)
    xm, ex = local_exponent(X1, 1.0 + 2 * X1 ** -0.7, window=5)
    assert np.all(np.diff(ex) < 0), "an offset makes the local exponent decay"
    xm, ex = local_exponent(X1, 1.0 + 2 * X1 ** -0.7, window=5, offset=1.0)
    np.testing.assert_allclose(ex, 0.7, rtol=1e-9)


def test_extrapolation_check_holds_out_the_largest_scales():
    from fit.diagnostics import extrapolation_check

    truth, x, y, _ = _data("offset")
    ex = extrapolation_check("offset", x, y, holdout=5)
    assert ex.n_train == 20 and np.all(ex.x_test >= ex.x_train_max)
    assert ex.mean_abs_rel_error < 1e-8
    bad = extrapolation_check("power", x, y, holdout=0.2)
    assert bad.mean_abs_rel_error > 1e-3, "a pure power law misses the plateau"
    # the held-out points are checked like the others
    for i, v in ((-1, np.nan), (-2, -1.0)):
        yb = y.copy()
        yb[np.argsort(x)[i]] = v
        with pytest.raises(ValueError, match="row"):
            extrapolation_check("offset", x, yb, holdout=5)
    with pytest.raises(ValueError, match="values but"):
        extrapolation_check("offset", x, y[:-1], holdout=5)
    sig = extrapolation_check("offset", x, y, holdout=5, sigma=0.01 * y)
    assert sig.fit.n_points == 20


@pytest.mark.parametrize("seed", [1, 2])
def test_offset_fit_standard_errors_match_scipy_curve_fit(seed):
    """The Gauss–Newton covariance s²(JᵀJ)⁻¹ of the log-space fit is what scipy's
    curve_fit reports for the same model and data."""
    from scipy.optimize import curve_fit
    rng = np.random.default_rng(seed)
    x = np.geomspace(10, 1e5, 25)
    y = (0.5 + 3 * x ** -0.4) * np.exp(0.02 * rng.standard_normal(x.size))
    res = fit.fit("offset", x, y, bootstrap=0)

    def model(lx, E, A, a):
        return np.log(E + A * np.exp(lx) ** -a)
    p, cov = curve_fit(model, np.log(x), np.log(y),
                       p0=[res.params["E"], res.params["A"], res.params["alpha"]])
    np.testing.assert_allclose([res.params[k] for k in ("E", "A", "alpha")], p, rtol=1e-6)
    np.testing.assert_allclose([res.stderr[k] for k in ("E", "A", "alpha")],
                               np.sqrt(np.diag(cov)), rtol=1e-4)


def test_compare_refuses_joint_fits_to_different_second_variables():
    from fit.diagnostics import compare
    N = np.repeat(np.geomspace(1e6, 1e9, 4), 4)
    D = np.tile(np.geomspace(1e7, 1e11, 4), 4)
    y = 1.5 + 300 * N ** -0.4 + 300 * D ** -0.3
    a = fit.fit("chinchilla", N, y, x2=D)
    with pytest.raises(ValueError, match="differ in their data"):
        compare([a, fit.fit("chinchilla", N, y, x2=D * 2)])
