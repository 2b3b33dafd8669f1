"""Zipf quanta: normalisation, frequencies and tails against direct sums."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

import theory
from tests.strategies import Ks, alphas, log_sizes


@given(alpha=alphas, K=Ks)
def test_finite_normalisation_is_the_harmonic_number(alpha, K):
    k = np.arange(1, K + 1, dtype=float)
    assert theory.normalization(alpha, K) == pytest.approx(math.fsum(k ** -(alpha + 1)), rel=1e-13)
    p = theory.frequencies(alpha, K)
    assert p.shape == (K,) and math.fsum(p) == pytest.approx(1.0, rel=1e-13)
    assert np.all(np.diff(p) < 0) or K == 1


@given(alpha=alphas)
def test_infinite_normalisation_is_zeta(alpha):
    assert theory.normalization(alpha) == pytest.approx(float(special.zeta(alpha + 1)), rel=1e-15)
    # the huge-K harmonic number approaches ζ(α+1) from below by ζ(α+1, K+1)
    K = 10**7
    gap = theory.normalization(alpha) - theory.normalization(alpha, K)
    assert gap == pytest.approx(float(special.zeta(alpha + 1, K + 1)), rel=1e-6)


@given(alpha=alphas, K=Ks, data=st.data())
def test_tail_mass_matches_direct_sum(alpha, K, data):
    n = data.draw(st.integers(0, K))
    p = theory.frequencies(alpha, K)
    assert theory.tail_mass(n, alpha, K) == pytest.approx(math.fsum(p[n:]), rel=1e-11, abs=1e-300)
    assert theory.tail_mass(K + 5, alpha, K) == 0.0


@given(alpha=alphas, n=log_sizes(0, 12))
def test_infinite_tail_is_hurwitz_and_decreasing(alpha, n):
    n = math.floor(n)
    want = special.zeta(alpha + 1, n + 1) / special.zeta(alpha + 1)
    assert theory.tail_mass(n, alpha) == pytest.approx(want, rel=1e-13)
    assert theory.tail_mass(n + 1, alpha) < theory.tail_mass(n, alpha)


def test_frequencies_beyond_K_are_zero_and_broadcast():
    p = theory.frequencies(0.5, 10, [[1, 10, 11]])
    assert p.shape == (1, 3) and p[0, 2] == 0.0 and p[0, 0] > p[0, 1] > 0


@pytest.mark.parametrize("call, name", [
    (lambda: theory.normalization(0.0), "alpha"),
    (lambda: theory.normalization(-1.0), "alpha"),
    (lambda: theory.normalization(float("nan")), "alpha"),
    (lambda: theory.normalization(0.5, K=0), "K"),
    (lambda: theory.normalization(0.5, K=2.5), "K"),
    (lambda: theory.frequencies(0.5, None), "k"),
    (lambda: theory.frequencies(0.5, 10, k=[0]), "k"),
    (lambda: theory.tail_mass(-1, 0.5), "n"),
    (lambda: theory.tail_mass(float("nan"), 0.5), "n"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@given(alpha=st.floats(0.05, 3.0), K=st.integers(1, 400), q=st.integers(1, 5))
@settings(max_examples=60, deadline=None)
def test_truncation_offset_is_the_cut_mass_over_the_kept(alpha, K, q):
    """ε_K against a brute-force sum (mpmath's Hurwitz zeta for the tail)."""
    import mpmath

    s = alpha + 1.0
    kept = math.fsum((k ** -s for k in range(q, K + q)))
    tail = float(mpmath.zeta(s, K + q))
    assert theory.truncation_offset(alpha, K, first_rank=q) == pytest.approx(tail / kept,
                                                                            rel=1e-10)


def test_truncation_offset_limits():
    assert theory.truncation_offset(0.4, None) == 0.0
    # a cut far out removes almost nothing; the tail of k^-1.4 beyond K is ~ K^-0.4 / 0.4
    eps = theory.truncation_offset(0.4, 10**8)
    assert eps == pytest.approx((10**8) ** -0.4 / 0.4 / float(theory.normalization(0.4)),
                                rel=1e-3)
    with pytest.raises(ValueError, match="first_rank"):
        theory.truncation_offset(0.4, 10, first_rank=0)
