"""Exponent relations, their inverses, local exponents and the finite-K cut-off."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from tests.strategies import alphas, batches, seeds, small_taus, taus


@given(alpha=alphas)
def test_relations_invert_exactly(alpha):
    assert theory.alpha_N(alpha) == alpha
    assert theory.alpha_D(alpha) == theory.alpha_S(alpha) == pytest.approx(alpha / (alpha + 1), rel=1e-15)
    assert theory.alpha_from_alpha_N(theory.alpha_N(alpha)) == alpha
    assert theory.alpha_from_alpha_D(theory.alpha_D(alpha)) == pytest.approx(alpha, rel=1e-12)
    assert theory.alpha_from_rank_slope(-(alpha + 1)) == pytest.approx(alpha, rel=1e-12)
    # α_D = α_N/(α_N + 1)
    assert theory.alpha_D(alpha) == pytest.approx(theory.alpha_N(alpha) / (theory.alpha_N(alpha) + 1), rel=1e-15)


@given(alpha=alphas, gamma=st.floats(-0.04, 3.0))
def test_tilted_pair_identifies_alpha_and_gamma(alpha, gamma):
    aN, aD = theory.tilted_exponents(alpha, gamma)
    assert aN == pytest.approx(alpha + gamma) and aD == pytest.approx((alpha + gamma) / (alpha + 1))
    a2, g2 = theory.alpha_gamma_from_exponents(aN, aD)
    assert a2 == pytest.approx(alpha, rel=1e-10, abs=1e-12)
    assert g2 == pytest.approx(gamma, rel=1e-9, abs=1e-9)
    assert theory.tilted_exponents(alpha, 0.0) == pytest.approx((theory.alpha_N(alpha), theory.alpha_D(alpha)))


@given(alpha=alphas)
def test_local_exponent_of_L_n_is_alpha_times_one_minus_half_over_n_plus_one(alpha):
    n = np.array([10.0, 100.0, 1000.0, 1e5])
    le = theory.local_exponent(lambda x: theory.loss_n(x, alpha), n, h=1e-4)
    assert np.all(np.abs(le - alpha * (1 - 1 / (2 * (n + 1)))) <= alpha * (alpha + 1) / n ** 2 + 1e-9)


@given(alpha=alphas, c=st.floats(0.01, 5.0), A=st.floats(0.1, 10.0))
def test_local_exponent_with_offset_recovers_a_power_law_above_a_floor(alpha, c, A):
    """f = c + A·x^-α: with offset = c the local exponent is α exactly (up to the central
    difference), without it the floor bends it towards 0."""
    x = np.geomspace(1e1, 1e2, 5)   # f − c stays well above the rounding of c
    f = lambda v: c + A * v ** -alpha                                         # noqa: E731
    np.testing.assert_allclose(theory.local_exponent(f, x, offset=c, h=1e-3), alpha, rtol=1e-5)
    assert np.all(theory.local_exponent(f, x, h=1e-3) < alpha)
    n = np.array([10.0, 100.0])   # L(n) with a = 0.3, b = 1.3: offset L∞ gives α(1 − 1/(2(n+1)))
    le = theory.local_exponent(lambda v: theory.loss_n(v, alpha, a=0.3, b=1.3), n,
                               offset=theory.loss_infinity(alpha, a=0.3), h=1e-4)
    assert np.all(np.abs(le - alpha * (1 - 1 / (2 * (n + 1)))) <= alpha * (alpha + 1) / n ** 2 + 1e-8)


@given(alpha=alphas, tau=taus)
@settings(max_examples=25)
def test_local_exponent_of_E_L_D_tends_to_alpha_D(alpha, tau):
    D = np.array([1e6, 1e12]) * tau
    err = np.abs(theory.local_exponent(lambda x: theory.expected_loss_D(x, alpha, tau), D)
                 - theory.alpha_D(alpha))
    assert err[1] <= err[0] + 1e-9 and err[1] < 1e-6, err


@given(alpha=st.floats(0.1, 3.0), tau=small_taus, batch=batches, rule=st.sampled_from(["samples", "steps"]))
@settings(max_examples=8)
def test_local_exponent_of_E_L_S_tends_to_alpha_S(alpha, tau, batch, rule):
    S = np.array([1e10]) * tau
    le = theory.local_exponent(lambda x: theory.expected_loss_S(x, alpha, batch, tau, rule), S)
    assert le[0] == pytest.approx(theory.alpha_S(alpha), abs=1e-3)
    ratio = theory.loss_S_asymptote(S, alpha, batch, tau, rule) / theory.expected_loss_S(S, alpha, batch, tau, rule)
    assert ratio[0] == pytest.approx(1.0, abs=5e-3)


@given(alpha=st.floats(0.2, 2.0), gamma=st.floats(0.0, 1.0))
@settings(max_examples=5)
def test_tilted_losses_have_tilted_exponents(alpha, gamma):
    """b_k = k^−γ (a callable at infinite K): local exponents approach the tilted pair."""
    b = lambda k: k ** -gamma  # noqa: E731
    aN, aD = theory.tilted_exponents(alpha, gamma)
    le_n = theory.local_exponent(lambda x: theory.loss_n(np.floor(x), alpha, b=b), np.array([1e8]), h=0.05)
    le_D = theory.local_exponent(lambda x: theory.expected_loss_D(x, alpha, b=b), np.array([1e12]), h=0.05)
    assert le_n[0] == pytest.approx(aN, rel=1e-3)
    assert le_D[0] == pytest.approx(aD, rel=1e-2)


@given(alpha=alphas, K=st.integers(1000, 10**6), tau=taus)
def test_rarest_quantum_is_learned_about_half_the_time_at_the_cutoff(alpha, K, tau):
    D = theory.finite_K_cutoff(alpha, K, tau)
    assert D == pytest.approx(tau / float(theory.frequencies(alpha, K, K)), rel=1e-14)
    # at D = τ/p_K (p_K small) the count of quantum K is ≈ Poisson(τ): P(count ≥ τ) ∈ [0.5, 0.64]
    assert 0.45 <= theory.prob_learned_D(K, math.ceil(D), alpha, tau, K) <= 0.66


@pytest.mark.parametrize("call, name", [
    (lambda: theory.alpha_from_alpha_D(1.0), "alpha_D"),
    (lambda: theory.alpha_from_alpha_D(0.0), "alpha_D"),
    (lambda: theory.alpha_from_alpha_N(-0.1), "alpha_N"),
    (lambda: theory.alpha_from_rank_slope(-0.5), "slope"),
    (lambda: theory.alpha_from_rank_slope(float("nan")), "slope"),
    (lambda: theory.tilted_exponents(0.5, -0.6), "gamma"),
    (lambda: theory.alpha_gamma_from_exponents(0.3, 0.5), "alpha_N"),
    (lambda: theory.alpha_D(0.0), "alpha"),
    (lambda: theory.finite_K_cutoff(0.5, None), "K"),
    (lambda: theory.finite_K_cutoff(0.5, 10, tau=0), "tau"),
    (lambda: theory.local_exponent(np.exp, [-1.0]), "x"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --- sliding_exponent: the local exponent of data -------------------------------------------

def _grid(seed, n):
    """n distinct sizes spread over 1 … 10^8, in random order."""
    rng = np.random.default_rng(seed)
    return np.unique(10.0 ** rng.uniform(0, 8, n))[rng.permutation(n)], rng


@given(seed=seeds, n=st.integers(3, 40), a=st.floats(0.01, 3.0), A=st.floats(1e-3, 1e3),
       floor=st.floats(0.0, 10.0), window=st.integers(2, 6))
def test_sliding_exponent_of_a_power_law_is_its_exponent(seed, n, a, A, floor, window):
    """y = c + A x^-a: with offset c every window finds a, and the midpoints are the
    geometric means of sorted runs of ``window`` points (c up to 10 times the smallest
    A x^-a, so that y − c keeps its digits)."""
    x, _ = _grid(seed, n)
    c = floor * A * x.max() ** -a
    window = min(window, n)
    xm, ex = theory.sliding_exponent(x, c + A * x ** -a, window=window, offset=c)
    np.testing.assert_allclose(ex, a, rtol=1e-6, atol=1e-9)
    runs = np.lib.stride_tricks.sliding_window_view(np.log(np.sort(x)), window)
    np.testing.assert_allclose(xm, np.exp(runs.mean(axis=1)), rtol=1e-12)


@given(seed=seeds, n=st.integers(3, 30), window=st.integers(2, 5),
       cx=st.floats(1e-3, 1e3), cy=st.floats(1e-3, 1e3))
def test_sliding_exponent_invariances(seed, n, window, cx, cy):
    """Order of the points does not matter; scaling y changes nothing and scaling x only
    moves the midpoints (an exponent has no units)."""
    x, rng = _grid(seed, n)
    y = np.exp(rng.normal(size=n))   # any positive data
    window = min(window, n)
    xm, ex = theory.sliding_exponent(x, y, window=window)
    order = rng.permutation(n)
    xm2, ex2 = theory.sliding_exponent(x[order], y[order], window=window)
    np.testing.assert_array_equal(xm, xm2)
    np.testing.assert_allclose(ex2, ex, rtol=1e-12, atol=1e-12)
    xm3, ex3 = theory.sliding_exponent(cx * x, cy * y, window=window)
    np.testing.assert_allclose(xm3, cx * xm, rtol=1e-12)
    np.testing.assert_allclose(ex3, ex, rtol=1e-7, atol=1e-9)


@given(seed=seeds, n=st.integers(3, 30))
def test_sliding_exponent_between_neighbours_and_over_all_points(seed, n):
    """window=2 is −Δlog y/Δlog x between neighbours; window=n the least-squares slope of
    all points (numpy's polyfit, an independent route)."""
    x, rng = _grid(seed, n)
    y = np.exp(rng.normal(size=n))
    order = np.argsort(x)
    lx, ly = np.log(x[order]), np.log(y[order])
    _, ex = theory.sliding_exponent(x, y, window=2)
    np.testing.assert_allclose(ex, -np.diff(ly) / np.diff(lx), rtol=1e-9, atol=1e-12)
    _, (whole,) = theory.sliding_exponent(x, y, window=n)
    assert whole == pytest.approx(-np.polyfit(lx, ly, 1)[0], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("x, y, kwargs, message", [
    ([1, 2, 3], [1, 0.5, 0.2], dict(offset=0.3), "y, row 3: y - offset must be positive"),
    ([1, 0, 3], [1, 0.5, 0.2], {}, "x, row 2"),
    ([1, 2, 3], [1, 0.5, 0.2], dict(window=4), "window"),
    ([1, 2, 3], [1, 0.5, 0.2], dict(window=2.5), "window"),
    ([1, 2, 3], [1, 0.5], {}, "shapes"),
])
def test_sliding_exponent_refusals_name_the_argument(x, y, kwargs, message):
    from common.errors import InputError
    with pytest.raises(InputError, match=message):
        theory.sliding_exponent(x, y, **kwargs)
