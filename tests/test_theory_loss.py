"""L(n) and L(N): limits, monotonicity, brute-force sums, asymptotes."""
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theory
from tests.strategies import Ks, alphas, log_sizes, seeds, sorted_log_sizes


def _brute_loss(alpha, K, a, b, n):
    """Σ_{k≤n} p_k a_k + Σ_{k>n} p_k b_k term by term."""
    k = np.arange(1, K + 1, dtype=float)
    p = k ** -(alpha + 1) / math.fsum(k ** -(alpha + 1))
    return math.fsum(p[:n] * a[:n]) + math.fsum(p[n:] * b[n:])


@given(alpha=alphas, K=st.integers(1, 400), seed=seeds, data=st.data())
def test_loss_n_with_arrays_matches_brute_force(alpha, K, seed, data):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, K)
    b = a + rng.uniform(0, 2, K)
    n = data.draw(st.integers(0, K))
    want = _brute_loss(alpha, K, a, b, n)
    assert theory.loss_n(n, alpha, K, a=a, b=b) == pytest.approx(want, rel=1e-12)
    # the same losses as a callable of k
    got = theory.loss_n(n, alpha, K, a=lambda k: a[k.astype(int) - 1], b=lambda k: b[k.astype(int) - 1])
    assert got == pytest.approx(want, rel=1e-12)


@given(alpha=alphas, K=Ks, a=st.floats(-2, 2), gap=st.floats(0.01, 3))
def test_limits_mean_of_b_at_zero_and_L_inf_at_K(alpha, K, a, gap):
    b = a + gap
    assert theory.loss_n(0, alpha, K, a=a, b=b) == pytest.approx(b, rel=1e-12)
    assert theory.loss_n(K, alpha, K, a=a, b=b) == pytest.approx(a, rel=1e-12, abs=1e-12)
    assert theory.loss_infinity(alpha, K, a=a) == a


@given(alpha=alphas, K=st.integers(1, 300), seed=seeds)
def test_limits_with_per_quantum_losses(alpha, K, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 1, K), rng.uniform(1, 2, K)
    p = theory.frequencies(alpha, K)
    assert theory.loss_n(0, alpha, K, a=a, b=b) == pytest.approx(math.fsum(p * b), rel=1e-12)
    assert theory.loss_n(K, alpha, K, a=a, b=b) == pytest.approx(math.fsum(p * a), rel=1e-12)
    assert theory.loss_infinity(alpha, K, a=a) == pytest.approx(math.fsum(p * a), rel=1e-12)


@given(alpha=alphas, ns=sorted_log_sizes(0, 14, size=6), K=st.one_of(st.none(), st.integers(10, 10**9)))
def test_loss_n_decreases_in_n(alpha, ns, K):
    L = theory.loss_n(np.array(ns), alpha, K)
    assert np.all(np.diff(L) <= 1e-14 * L[:-1])  # non-increasing up to round-off
    assert np.all(L >= 0) and np.all(L <= 1)


@given(alpha=alphas, N=log_sizes(0, 10), C=st.floats(0.1, 1e4))
def test_loss_N_is_loss_n_at_N_over_C(alpha, N, C):
    assert theory.loss_N(N, alpha, C=C) == pytest.approx(theory.loss_n(N / C, alpha), rel=1e-14)


@given(alpha=alphas)
def test_asymptote_ratio_tends_to_one(alpha):
    n = np.array([1e3, 1e5, 1e7, 1e9])
    exact = theory.loss_n(n, alpha)
    plain = np.abs(theory.loss_n_asymptote(n, alpha) / exact - 1)
    mid = np.abs(theory.loss_n_asymptote(n, alpha, midpoint=True) / exact - 1)
    # plain form: error ~ (α/2)/n, midpoint form: O(n^-2)
    assert np.all(np.diff(plain) < 0) and plain[-1] < 1e-8
    assert np.all(plain <= (alpha + 1) / n)
    assert np.all(mid <= 0.5 * (alpha + 1) ** 2 / n ** 2 + 1e-12)


@given(alpha=st.floats(0.3, 3.0))
def test_callable_losses_at_infinite_K_match_high_precision_entropy(alpha):
    """b_k = −log p_k (paper's Appendix A): Σ_k p_k b_k is the entropy of the Zipf law,
    s·(−ζ'(s))/ζ(s) + log ζ(s) with s = α+1, computed here with mpmath."""
    s = mpmath.mpf(alpha) + 1
    entropy = float(-s * mpmath.zeta(s, derivative=1) / mpmath.zeta(s) + mpmath.log(mpmath.zeta(s)))
    logZ = math.log(theory.normalization(alpha))
    neg_log_p = lambda k: (alpha + 1) * np.log(k) + logZ  # noqa: E731
    assert theory.loss_n(0, alpha, b=neg_log_p) == pytest.approx(entropy, rel=1e-9)
    # after learning n quanta (a = 0) what remains is Σ_{k>n} p_k b_k
    # = [−s ζ'(s, n+1) + log ζ(s) ζ(s, n+1)]/ζ(s) (Hurwitz zeta and its s-derivative)
    n = 50_000
    zs = mpmath.zeta(s)
    tail = (-s * mpmath.zeta(s, n + 1, derivative=1) + mpmath.log(zs) * mpmath.zeta(s, n + 1)) / zs
    assert theory.loss_n(n, alpha, b=neg_log_p) == pytest.approx(float(tail), rel=1e-8)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n=-1, alpha=0.5), "n"),
    (dict(n=[1, float("nan")], alpha=0.5), "n"),
    (dict(n=1, alpha=0), "alpha"),
    (dict(n=1, alpha=0.5, K=10, b=np.ones(9)), "b"),
    (dict(n=1, alpha=0.5, K=None, a=np.zeros(3)), "a"),
    (dict(n=1, alpha=0.5, K=0), "K"),
    (dict(n=1, alpha=0.5, b=float("inf")), "b"),
])
def test_bad_input_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        theory.loss_n(**kwargs)


def test_bad_C_and_asymptote_input():
    with pytest.raises(ValueError, match="C"):
        theory.loss_N(10, 0.5, C=0)
    with pytest.raises(ValueError, match="N"):
        theory.loss_N(-10, 0.5)
    with pytest.raises(ValueError, match="a and b"):
        theory.loss_n_asymptote(10, 0.5, b=lambda k: k)


def test_whole_quanta_survive_rounding_in_N_over_C():
    """0.3/0.1 is 2.9999999999999996 in floating point; it holds 3 quanta, as capacity
    and expected_loss_ND count them, with constant or per-quantum losses alike."""
    b = np.ones(10)
    assert theory.loss_N(0.3, 0.4, C=0.1, K=10, a=np.zeros(10), b=b) == \
        pytest.approx(theory.loss_n(3, 0.4, K=10, a=np.zeros(10), b=b), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.005, 0.01, 0.02])
def test_quadrature_tail_at_small_alpha(alpha):
    """At infinite K the callable and step-rule paths integrate to x = e^690 and add the
    rest in closed form; at α = 0.005 the cut alone lost 3 % of the loss. Identities that
    must hold: a callable constant b is the constant b, and at τ = 1 the steps rule is the
    samples rule."""
    assert theory.loss_n(100, alpha, b=lambda k: 1 + 0 * k) == \
        pytest.approx(theory.loss_n(100, alpha), rel=1e-9)
    assert theory.expected_loss_S(100.0, alpha, 10, 1, "steps") == \
        pytest.approx(theory.expected_loss_S(100.0, alpha, 10, 1, "samples"), rel=1e-9)


# --- per_quantum: the one reading of a and b ---------------------------------------------

@given(alpha=alphas, K=st.integers(1, 400), seed=seeds, form=st.sampled_from(
    ["const", "array", "callable"]))
def test_per_quantum_values_are_what_the_sums_use(alpha, K, seed, form):
    """theory.per_quantum lists a and b as the Monte Carlo sees them; L(n) from theory's
    sums equals Σ_k p_k (a_k if k ≤ n else b_k) over those values, for each form of a, b."""
    rng = np.random.default_rng(seed)
    a_arr, b_arr = rng.uniform(0, 1, K), 1 + rng.uniform(0, 1, K)
    a, b = {"const": (0.3, 1.7), "array": (a_arr, b_arr),
            "callable": (lambda k: 0.1 + 0.05 * np.log(k), lambda k: 1 + k ** -0.5)}[form]
    a_k, b_k = theory.per_quantum(a, K, "a"), theory.per_quantum(b, K, "b")
    assert a_k.shape == b_k.shape == (K,) and a_k.flags.c_contiguous
    k = np.arange(1, K + 1)
    expected_a = {"const": np.full(K, 0.3), "array": a_arr,
                  "callable": 0.1 + 0.05 * np.log(k)}[form]
    np.testing.assert_array_equal(a_k, expected_a)
    p = np.asarray(theory.frequencies(alpha, K))
    for n in {0, K // 2, K}:
        direct = float(np.sum(p * np.where(k <= n, a_k, b_k)))
        assert theory.loss_n(n, alpha, K=K, a=a, b=b) == pytest.approx(direct, rel=1e-10)


@pytest.mark.parametrize("value, K, message", [
    (np.ones(3), 4, "shape"),
    (np.array([1.0, np.nan]), 2, "finite"),
    (np.inf, 3, "finite"),
    ("1", 3, "a number"),
    (lambda k: np.ones(2), 3, "callable returned shape"),
    (lambda k: np.full(k.shape, np.nan), 3, "non-finite"),
    (1.0, None, "K must be finite"),
])
def test_per_quantum_refusals_name_the_argument(value, K, message):
    from common.errors import InputError
    with pytest.raises(InputError, match=message) as err:
        theory.per_quantum(value, K, "b_loss")
    assert "b_loss" in str(err.value)
