"""theory at the ends of α: exact (against mpmath at 30 digits) inside
[ALPHA_MIN, ALPHA_MAX], refused outside it where the sums run through ζ(1+α) (infinitely many
quanta, or more than DIRECT_TERMS), and exact at any α > 0 for K ≤ DIRECT_TERMS, which is
summed term by term.

References: L(n) = ζ(s, n+1)/ζ(s) (s = 1+α); 1 − E[L(D)] = Σ_k p_k P(Bin(D, p_k) ≥ τ),
summed exactly over the ranks with D p_k > 0.05 and beyond them by the series
P(Bin(D, p) ≥ τ) = Σ_{j≥τ} (−1)^{j−τ} C(j−1, τ−1) C(D, j) p^j, whose p^j sums are Hurwitz
zeta values; finite K: the plain sums.
"""
import math

import mpmath as mp
import numpy as np
import pytest

import theory
from common.errors import InputError
from theory.zipf import ALPHA_MAX, ALPHA_MIN, DIRECT_TERMS

mp.mp.dps = 30


def _learned_mass(D, alpha, tau):
    """1 − E[L(D)] at infinite K (a = 0, b = 1), in mpmath."""
    s = 1 + mp.mpf(alpha)
    Z, D = mp.zeta(s), mp.mpf(D)
    M = int(mp.ceil((20 * D / Z) ** (1 / s))) + 1        # D p_k <= 0.05 beyond M
    ps = [mp.mpf(k) ** -s / Z for k in range(1, M + 1)]
    if tau == 1:
        head = mp.fsum(p * (1 - (1 - p) ** D) for p in ps)
    else:                                                   # tau = 2
        head = mp.fsum(p * (1 - (1 - p) ** D - D * p * (1 - p) ** (D - 1)) for p in ps)
    tail = mp.mpf(0)
    for j in range(tau, 80):
        term = ((-1) ** (j - tau) * mp.binomial(j - 1, tau - 1) * mp.binomial(D, j)
                * Z ** (-(j + 1)) * mp.zeta((j + 1) * s, M + 1))
        tail += term
        if abs(term) < mp.mpf(10) ** -35 * abs(head + tail):
            break
    return head + tail


@pytest.mark.parametrize("alpha", [ALPHA_MIN, 1e-3, 5.0, ALPHA_MAX])
@pytest.mark.parametrize("tau", [1, 2])
def test_expected_loss_D_is_exact_across_the_alpha_range(alpha, tau):
    D = [10.0, 1e3, 1e6] if alpha < 1 else [1.0, 10.0, 1e3]
    got = np.atleast_1d(theory.expected_loss_D(D, alpha, tau))
    want = [1 - float(_learned_mass(d, alpha, tau)) for d in D]
    assert np.all(got <= 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("alpha", [ALPHA_MIN, 1e-3, 0.4, ALPHA_MAX])
def test_loss_n_is_exact_across_the_alpha_range(alpha):
    n = [1, 10, 1000, 1e6]
    s = 1 + mp.mpf(alpha)
    want = [float(mp.zeta(s, k + 1) / mp.zeta(s)) for k in n]
    np.testing.assert_allclose(theory.loss_n(n, alpha), want, rtol=1e-9)   # scipy's Hurwitz ζ


@pytest.mark.parametrize("alpha", [1e-300, 1e-15, 1e-8])
@pytest.mark.parametrize("K", [1, 300, DIRECT_TERMS])
def test_finite_K_is_exact_at_any_small_alpha(alpha, K):
    s = 1 + mp.mpf(alpha)
    ks = [1, 2, 10, 299, K - 1] if K > 300 else list(range(1, K + 1))
    if K == DIRECT_TERMS:           # Hurwitz differences, with digits enough for the pole
        with mp.workdps(30 - int(math.log10(alpha))):
            s = 1 + mp.mpf(alpha)
            Z = mp.zeta(s) - mp.zeta(s, K + 1)
            tail = {n: (mp.zeta(s, n + 1) - mp.zeta(s, K + 1)) / Z for n in (1, 10, 1000)}
    else:
        w = [mp.mpf(k) ** -s for k in range(1, K + 1)]
        Z = mp.fsum(w)
        tail = {n: mp.fsum(w[n:]) / Z for n in (1, 10, 1000)}
    np.testing.assert_allclose(theory.frequencies(alpha, K, ks),
                               [float(mp.mpf(k) ** -s / Z) for k in ks], rtol=1e-13)
    np.testing.assert_allclose(theory.loss_n(list(tail), alpha, K),
                               [float(v) for v in tail.values()], rtol=1e-12, atol=1e-300)
    if K == 300:                    # E[L(D)] = Σ p_k (1 − p_k)^D, term by term
        p = [wk / Z for wk in w]
        for D in (10.0, 1e4):
            want = float(mp.fsum(pk * (1 - pk) ** D for pk in p))
            assert theory.expected_loss_D(D, alpha, 1, K) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("call", [
    lambda a: theory.loss_n(10, a),
    lambda a: theory.expected_loss_D(100, a),
    lambda a: theory.expected_loss_S(10, a, 100),
    lambda a: theory.loss_n(10, a, K=DIRECT_TERMS + 1),
    lambda a: theory.compute_optimal(a),
    lambda a: theory.loss_D_asymptote(100, a),
    lambda a: theory.loss_n_asymptote(100, a),
])
@pytest.mark.parametrize("alpha", [1e-300, 1e-15, 1e-5, 0.99 * ALPHA_MIN])
def test_below_alpha_min_the_pole_is_refused_by_name(call, alpha):
    with pytest.raises(InputError, match=r"alpha = .* is below 0\.0001.*K <= 100,000"):
        call(alpha)


@pytest.mark.parametrize("alpha", [20.5, 1000.0, 1e6, 1e300])
def test_above_alpha_max_the_sums_are_refused(alpha):
    for K in (None, 10):
        with pytest.raises(InputError, match=r"is above 20"):
            theory.expected_loss_D(1.0, alpha, K=K)


def test_large_alpha_inside_the_range_is_fast():
    """The head of exact ranks stops where k^-(α+1) underflows (α = 20: e^(746/21) ≈ 2.6e15
    would otherwise be 20·21·5 = 2100 ranks, not the 1e8 of α = 1e6 that took minutes)."""
    from theory._sums import head_size

    assert head_size(1e6, 1) == 2 and head_size(20.0, 1) == 2100
    assert head_size(200.0, 1) == math.ceil(math.exp(746 / 201))


@pytest.mark.parametrize("alpha", [1e-300, 1e-15, 1e-8, ALPHA_MIN, 0.4])
@pytest.mark.parametrize("K", [3, 1000])
def test_tail_mass_between_integers_is_exact_at_small_alpha(alpha, K):
    """The Hurwitz interpolation between integer ranks, (ζ(s, n+1) − ζ(s, K+1))/Z, whose two
    zetas cancel near the pole (it came out NaN at 1e-300 and 2e-4 off at 1e-15 before
    theory.zipf._hurwitz_gap)."""
    n = [v for v in (0.5, 2.7, 10.5, 999.3) if v < K]
    with mp.workdps(40 - int(math.log10(alpha))):
        s = 1 + mp.mpf(alpha)
        Z = mp.zeta(s) - mp.zeta(s, K + 1)
        want = [float((mp.zeta(s, v + 1) - mp.zeta(s, K + 1)) / Z) for v in n]
    np.testing.assert_allclose(theory.tail_mass(n, alpha, K), want, rtol=1e-11)
