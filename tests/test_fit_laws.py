"""The laws people fit: tied and fixed parameters, the broken neural scaling law with its
offset, compute as a variable, and the compute-optimal split of a joint law."""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import least_squares, minimize_scalar

import fit
import theory
from common.errors import InputError


def _joint(seed=0, n=40, alpha=0.34, beta=0.28, noise=0.01):
    """N and D drawn independently (log-uniform), Hoffmann et al.'s law, log-normal noise."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), n))
    L = (1.69 + 406.4 * N ** -alpha + 410.7 * D ** -beta) * np.exp(noise * rng.standard_normal(n))
    return N, D, L


def _offset(seed=0, n=20):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e9, n)
    return x, (1.7 + 400 * x ** -0.34) * np.exp(0.01 * rng.standard_normal(n))


def bnsl(x, E, A, alpha, breaks):
    """Caballero et al. (2023) eq. 1, written out with powers: E + A x^-alpha
    prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i), ``breaks`` a list of (c, d, f)."""
    y = A * x ** -alpha
    for c, d, f in breaks:
        y = y * (1 + (x / d) ** (1 / f)) ** (-c * f)
    return E + y


# ---------------------------------------------------------------- tie and fix
def test_fixing_a_parameter_at_its_fitted_value_changes_nothing():
    """The unconstrained optimum is also the optimum with E held where it landed."""
    x, y = _offset()
    free = fit.fit("offset", x, y)
    held = fit.fit("offset", x, y, fix={"E": free.params["E"]})
    for k in ("A", "alpha"):
        assert held.params[k] == pytest.approx(free.params[k], rel=1e-6)
    assert held.params["E"] == free.params["E"] and held.stderr["E"] == 0
    assert held.aic == pytest.approx(-2 * held.llf + 2 * 2)        # two parameters fitted


def test_fixed_offset_matches_scipy_least_squares():
    """E fixed at 1.69: log(E + A x^-alpha) fitted by scipy, an independent route."""
    x, y = _offset(seed=3)
    res = fit.fit("offset", x, y, fix="E=1.69")

    def resid(p):
        return np.log(y) - np.log(1.69 + np.exp(p[0]) * x ** -p[1])
    ref = least_squares(resid, [np.log(300), 0.3], xtol=1e-14, ftol=1e-14, gtol=1e-14)
    assert res.params["A"] == pytest.approx(np.exp(ref.x[0]), rel=1e-5)
    assert res.params["alpha"] == pytest.approx(ref.x[1], rel=1e-6)


def test_a_fixed_parameter_leaves_the_same_degrees_of_freedom_to_every_wald_interval():
    """Offset law with E fixed: two parameters estimated from 12 points, so the Wald
    interval of alpha, the band of the fitted curve (delta method, the Jacobian written out
    by hand) and the derived quantities all take Student's t with 10 degrees of freedom
    (the Wald interval took 9 when it counted the fixed E)."""
    from scipy.stats import t

    x, y = _offset(seed=5, n=12)
    res = fit.fit("offset", x, y, fix={"E": 1.7})
    q = t.ppf(0.95, 12 - 2)
    assert res.df_resid == 10
    lo, hi = res.conf_int(alpha=0.1, method="wald").loc["alpha"]
    assert (hi - lo) / 2 == pytest.approx(q * res.stderr["alpha"], rel=1e-10)
    new = np.array([1e5, 1e10])
    A, al = res.params["A"], res.params["alpha"]
    share = A * new ** -al / (1.7 + A * new ** -al)     # d log f / d log A
    J = np.column_stack([share, -np.log(new) * share])   # (d/d log A, d/d alpha)
    se = np.sqrt(np.einsum("ij,jk,ik->i", J, res.cov_theta[1:, 1:], J))
    band = res.predict(new, alpha=0.1, interval="curve")
    np.testing.assert_allclose(np.log(band["upper"] / band["predicted"]), q * se, rtol=1e-8)
    np.testing.assert_allclose(np.log(band["predicted"] / band["lower"]), q * se, rtol=1e-8)


def test_tied_exponents_are_one_parameter_everywhere():
    N, D, L = _joint(alpha=0.3, beta=0.3)
    res = fit.fit("chinchilla", N, L, x2=D, tie="alpha=beta", bootstrap=60, seed=1)
    assert res.params["alpha"] == res.params["beta"]
    np.testing.assert_array_equal(res.bootstrap_params["alpha"], res.bootstrap_params["beta"])
    assert res.cov_theta[3, 3] == res.cov_theta[4, 4] == res.cov_theta[3, 4]
    assert res.params["alpha"] == pytest.approx(0.3, abs=0.03)
    assert "constraints: beta = alpha (tied)" in res.summary()
    assert res.to_dict()["config"]["tie"] == ["alpha=beta"]
    # the compute-optimal split of a law with alpha = beta is 1/2, 1/2 exactly
    assert res.derived().loc["N_opt_exponent", "value"] == pytest.approx(0.5, abs=1e-12)


def test_tied_fit_matches_scipy_on_the_reduced_law():
    """chinchilla with alpha = beta and the l2 loss against scipy's fit of the 4-parameter
    law E + A N^-a + B D^-a."""
    N, D, L = _joint(seed=5, alpha=0.3, beta=0.3, noise=0.003)
    res = fit.fit("chinchilla", N, L, x2=D, tie="alpha=beta", loss="l2")

    def resid(p):
        E, A, B, a = np.exp(p[0]), np.exp(p[1]), np.exp(p[2]), p[3]
        return np.log(L) - np.log(E + A * N ** -a + B * D ** -a)
    start = [np.log(res.params[k]) for k in ("E", "A", "B")] + [res.params["alpha"]]
    ref = least_squares(resid, np.array(start) * 1.05, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert 0.5 * np.sum(ref.fun ** 2) >= res.objective * (1 - 1e-9)
    assert res.params["alpha"] == pytest.approx(ref.x[3], rel=1e-5)


@pytest.mark.parametrize("form, kw, words", [
    ("offset", dict(fix={"G": 1.0}), "'offset' has no parameter 'G'"),
    ("chinchilla", dict(tie="A=alpha"), "a prefactor cannot equal an exponent"),
    ("chinchilla", dict(tie="alpha=beta", fix={"alpha": 0.3}), "at most one tie or fix"),
    ("offset", dict(fix={"E": -1.0}), "E must be positive"),
    ("offset", dict(fix="E=abc"), "is not a number"),
    ("offset", dict(tie="alpha"), "write 'alpha=beta'"),
    ("power", dict(fix={"alpha": 0.5}), "the power form is a closed-form OLS fit"),
])
def test_bad_constraints_are_refused_in_one_line(form, kw, words):
    N, D, L = _joint()
    with pytest.raises(InputError) as err:
        fit.fit(form, N, L, x2=D if form == "chinchilla" else None, **kw)
    assert words in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- bnsl
BNSL_CASES = [
    (dict(E=1.5, A=30.0, alpha=0.1), [(0.4, 1e6, 0.5)]),
    (dict(E=0.8, A=8.0, alpha=0.05), [(0.3, 1e4, 0.3), (0.4, 1e7, 0.8)]),
]


@pytest.mark.parametrize("truth, breaks", BNSL_CASES)
def test_bnsl_recovers_a_noiseless_law_without_warnings(truth, breaks):
    x = np.geomspace(1e2, 1e10, 40)
    y = bnsl(x, truth["E"], truth["A"], truth["alpha"], breaks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no overflow, no invalid value
        res = fit.fit("bnsl", x, y, breaks=len(breaks))
    expect = dict(truth)
    for i, (c, d, f) in enumerate(breaks, 1):
        expect.update({f"c{i}": c, f"d{i}": d, f"f{i}": f})
    for k, v in expect.items():
        assert res.params[k] == pytest.approx(v, rel=1e-5), k
    final = truth["alpha"] + sum(c for c, _, _ in breaks)
    assert res.derived().loc["alpha_final", "value"] == pytest.approx(final, rel=1e-6)
    assert res.alpha_implied("N")["N"]["value"] == pytest.approx(final, rel=1e-6)


def test_bnsl_sharp_breaks_over_twelve_decades_do_not_overflow():
    x = np.geomspace(1.0, 1e12, 50)
    y = bnsl(x, 0.5, 50.0, 0.02, [(1.5, 1e9, 0.05)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit.fit("bnsl", x, y * np.exp(0.002 * np.random.default_rng(0).standard_normal(50)),
                      bootstrap=30, seed=0)
    assert np.all(np.isfinite(list(res.params.values())))


def test_bnsl_jacobian_matches_finite_differences():
    from fit.forms import form_spec

    spec = form_spec("bnsl", breaks=2)
    theta = np.array([[np.log(0.8), np.log(8.0), 0.05, 0.3, np.log(1e4), np.log(0.3),
                       0.4, np.log(1e7), np.log(0.8)]])
    X = (np.log(np.geomspace(1e2, 1e10, 30)),)
    _, J = spec.model(theta, X)
    for k in range(theta.shape[1]):
        h = 1e-6 * (1 + abs(theta[0, k]))
        up, dn = theta.copy(), theta.copy()
        up[0, k] += h
        dn[0, k] -= h
        fd = (spec.model(up, X)[0] - spec.model(dn, X)[0]) / (2 * h)
        np.testing.assert_allclose(J[0, :, k], fd[0], rtol=1e-5, atol=1e-8)


def test_breaks_are_refused_for_other_forms_and_out_of_range():
    x = np.geomspace(1e2, 1e6, 20)
    with pytest.raises(InputError, match="breaks must be an integer from 1 to 5"):
        fit.fit("bnsl", x, 1 + 1 / x, breaks=0)


# ---------------------------------------------------------------- compute
@given(alpha=st.floats(0.05, 3.0))
def test_compute_reading_inverts_the_compute_optimal_exponent(alpha):
    from fit.consistency import _alpha_from_C

    aC = theory.compute_optimal(alpha).L_exponent
    assert float(_alpha_from_C(aC)) == pytest.approx(alpha, rel=1e-12)


def test_a_compute_fit_reads_only_compute():
    C = np.geomspace(1e18, 1e23, 15)
    alpha = 0.4
    L = 2.0 + 1e3 * C ** -(alpha / (alpha + 2))
    res = fit.fit("offset", C, L, variable="C", bootstrap=40, seed=0)
    reading = res.alpha_implied()
    assert set(reading) == {"C"} and reading["C"]["value"] == pytest.approx(alpha, rel=1e-5)
    with pytest.raises(InputError, match="this fit is of L\\(C\\)"):
        fit.consistency(res, 0.3)


# ---------------------------------------------------------------- compute-optimal split
@pytest.mark.parametrize("form", ["chinchilla", "max"])
def test_compute_optimal_split_matches_a_brute_force_minimum(form):
    """N_opt at two budgets, found by minimising the fitted law along C = 6ND, gives the
    slope a = beta/(alpha+beta) the fit reports, and the frontier's N_opt itself."""
    from fit.derived import compute_optimal

    N, D, L = _joint(seed=7)
    res = fit.fit(form, N, L, x2=D, bootstrap=80, seed=2)
    a = res.derived().loc["N_opt_exponent"]

    def n_opt(C):
        f = minimize_scalar(lambda u: np.log(res.predict([np.exp(u)], [C / 6 / np.exp(u)])[0]),
                            bounds=(np.log(1e3), np.log(1e15)), method="bounded",
                            options={"xatol": 1e-10})
        return np.exp(f.x)
    slope = np.log(n_opt(1e24) / n_opt(1e20)) / np.log(1e4)
    assert a["value"] == pytest.approx(slope, abs=1e-4)
    frontier_N, _ = compute_optimal(form, res.params, [1e20, 1e24])
    np.testing.assert_allclose(frontier_N, [n_opt(1e20), n_opt(1e24)], rtol=1e-4)
    # the frontier is the law's minimum at each run's compute, and the plot draws it
    No, Do = compute_optimal(form, res.params, 6 * N * D)
    assert np.all(res.predict(No, Do) <= res.fitted * (1 + 1e-9))
    from fit.plots import plot_compute
    ax = plot_compute(res)
    assert ax.get_xlabel() == "compute C = 6ND (FLOP)" and len(ax.lines) == 1
    import matplotlib.pyplot as plt
    plt.close(ax.figure)
    if form == "max":
        return
    # its interval: the percentiles of beta/(alpha+beta) over the bootstrap draws
    p = res.bootstrap_params
    lo, hi = np.percentile(p["beta"] / (p["alpha"] + p["beta"]), [2.5, 97.5])
    assert (a["lower"], a["upper"]) == pytest.approx((lo, hi), rel=1e-12)
    b = res.derived().loc["D_opt_exponent"]
    assert a["value"] + b["value"] == pytest.approx(1.0)
    doc = res.to_dict()["derived"]
    assert set(doc) == {"N_opt_exponent", "D_opt_exponent"}


def test_derived_wald_interval_without_a_bootstrap_is_the_delta_method():
    """The delta method with the parameters' own quantile: Student's t with 40 − 5
    degrees of freedom for a least-squares fit."""
    from scipy.stats import t

    N, D, L = _joint(seed=8)
    res = fit.fit("chinchilla", N, L, x2=D, loss="l2")
    row = res.derived().loc["N_opt_exponent"]
    al, be = res.params["alpha"], res.params["beta"]
    g = np.array([-be / (al + be) ** 2, al / (al + be) ** 2])
    se = np.sqrt(g @ res.cov_theta[3:5, 3:5] @ g)
    assert (row["upper"] - row["lower"]) / 2 == pytest.approx(t.ppf(0.975, 35) * se, rel=1e-4)
