"""E[L(D)], E[L(S)], E[L(N, D)] and per-quantum emergence: brute force, limits,
monotonicity, asymptotes, Monte Carlo."""
import math
from unittest import mock

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import optimize, special, stats

import theory
from theory import _sums
from tests.strategies import Ks, alphas, batches, log_sizes, seeds, small_taus, sorted_log_sizes, taus


def _p(alpha, K):
    k = np.arange(1, K + 1, dtype=float)
    w = k ** -(alpha + 1)
    return w / math.fsum(w)


def binom_cdf(t, n, p):
    """P(Bin(n, p) ≤ t), term by term in logs: log C(n, j) as a sum of log((n − i)/(i + 1)),
    so it stays exact where scipy.stats.binom.cdf is not (3.5e-8 relative at t = 1,
    n = 10^9, p = 2e-8, checked against mpmath at 40 digits)."""
    p = np.atleast_1d(np.asarray(p, float))
    j = np.arange(min(t, n) + 1, dtype=float)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log((n - j[:-1]) / (j[:-1] + 1)))])
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = (log_comb[:, None] + j[:, None] * np.log(p)
                + np.where(n - j[:, None] > 0, (n - j[:, None]) * np.log1p(-p), 0.0))
    return np.array([math.fsum(np.exp(col)) for col in logs.T])


def _brute_D(alpha, K, D, tau, a=0.0, b=1.0):
    """Σ_k p_k [a + (b − a) P(Bin(D, p_k) ≤ τ−1)] with an exact binomial, term by term."""
    p = _p(alpha, K)
    return a + (b - a) * math.fsum(p * binom_cdf(tau - 1, D, p))


@given(alpha=alphas, K=Ks, tau=taus, D=log_sizes(0, 13), a=st.floats(0, 1), gap=st.floats(0.1, 2))
def test_finite_K_matches_binomial_brute_force(alpha, K, tau, D, a, gap):
    D = math.floor(D)
    want = _brute_D(alpha, K, D, tau, a, a + gap)
    got = theory.expected_loss_D(D, alpha, tau, K, a=a, b=a + gap)
    assert got == pytest.approx(want, rel=1e-8, abs=1e-100)


@given(alpha=st.floats(0.2, 3.0), tau=small_taus, u=st.floats(0, 1))
@settings(max_examples=15)
def test_infinite_K_matches_long_brute_force(alpha, tau, u):
    """Head + tail against 10^6 exact terms plus Σ_{k>M} p_k − C(D,τ) Σ_{k>M} p_k^(τ+1),
    whose neglected part is O((D p_M)^(τ+1)) of the tail mass. D ranges up to where
    D p_M = 1e-3 (10^15 at α = 3)."""
    M = 10**6
    Z = float(special.zeta(alpha + 1))
    p_M = M ** -(alpha + 1) / Z
    D = math.floor(10 ** (u * min(15.0, math.log10(1e-3 / p_M))))
    k = np.arange(M, 0, -1, dtype=float)
    p = k ** -(alpha + 1) / Z
    head = math.fsum(p * stats.binom.cdf(tau - 1, D, p))
    tail = special.zeta(alpha + 1, M + 1) / Z
    first_order = special.comb(D, tau) * special.zeta((alpha + 1) * (tau + 1), M + 1) / Z ** (tau + 1)
    want = head + tail - first_order
    slack = tail * (D * p_M) ** (tau + 1)
    got = theory.expected_loss_D(D, alpha, tau)
    assert abs(got - want) <= 1e-8 * want + slack, (D, got, want)


@given(alpha=alphas, tau=taus, D=log_sizes(0, 15))
@settings(max_examples=25)
def test_tail_is_independent_of_where_the_head_ends(alpha, tau, D):
    """The Euler–Maclaurin tail is accurate: moving the head/tail boundary 4× further
    changes E[L(D)] by < 1e-9 relative, for D up to 1e15."""
    base = theory.expected_loss_D(D, alpha, tau)
    original = _sums.head_size
    with mock.patch.object(_sums, "head_size", lambda a, t: 4 * original(a, t)):
        longer = theory.expected_loss_D(D, alpha, tau)
    assert base == pytest.approx(longer, rel=1e-9)


@given(alpha=alphas, tau=taus, Ds=sorted_log_sizes(0, 15, size=6), K=st.one_of(st.none(), Ks))
@example(alpha=0.09375, tau=49, Ds=[1.0, 10.0, 10.0 ** 1.5, 100.0, 10.0 ** 2.25, 1000.0],
         K=None)   # found: L = 1 − 2e-13 at D = 100 and 178, 5e-15 apart the wrong way
@example(alpha=0.0546875, tau=52, Ds=[1.0, 10.0, 100.0, 10.0 ** 2.5, 1000.0, 10000.0],
         K=None)   # found: 1 − 1.8e-13 at D = 100, 1 − 2.3e-14 at 316 (true: 1 − ~1e-40)
@settings(max_examples=25)
def test_expected_loss_decreases_in_D_and_increases_in_tau(alpha, tau, Ds, K):
    L = theory.expected_loss_D(np.array(Ds), alpha, tau, K)
    # to rounding: where almost nothing is learned, L = 1 − (a sum over thousands of ranks
    # that is ~1) carries errors of ~1e-13 (near the pole ζ(1+α) is ~20); the stated
    # accuracy is 1e-10
    assert np.all(np.diff(L) <= 1e-12 * L[:-1] + 1e-30)
    assert np.all(theory.expected_loss_D(np.array(Ds), alpha, tau + 1, K) >= L * (1 - 1e-12) - 1e-30)


@given(alpha=alphas, tau=taus, K=st.one_of(st.none(), Ks), a=st.floats(-1, 1), gap=st.floats(0.1, 2))
def test_limits_no_data_and_plenty_of_data(alpha, tau, K, a, gap):
    b = a + gap
    assert theory.expected_loss_D(0, alpha, tau, K, a=a, b=b) == pytest.approx(b, rel=1e-12)
    assert theory.expected_loss_D(tau - 1, alpha, tau, K, a=a, b=b) == pytest.approx(b, rel=1e-12)
    if K is not None:
        D = 1e4 * theory.finite_K_cutoff(alpha, K, tau)
        assert theory.expected_loss_D(D, alpha, tau, K, a=a, b=b) == pytest.approx(a, abs=1e-12)


@given(alpha=st.floats(0.1, 3.0), tau=taus)
@settings(max_examples=25)
def test_asymptote_over_exact_tends_to_one(alpha, tau):
    D = np.array([1e9, 1e12, 1e15]) * tau
    ratio = theory.loss_D_asymptote(D, alpha, tau) / theory.expected_loss_D(D, alpha, tau)
    err = np.abs(ratio - 1)
    assert np.all((np.diff(err) < 0) | (err[1:] < 1e-9)), err  # or already at the accuracy of the exact value
    assert err[-1] < 2e-2


@given(alpha=alphas, K=st.integers(1, 30), tau=small_taus, seed=seeds)
@settings(max_examples=10)
def test_monte_carlo_unlearned_mass_within_standard_errors(alpha, K, tau, seed):
    rng = np.random.default_rng(seed)
    p = _p(alpha, K)
    D, reps = 3 * tau * K, 4000
    counts = rng.multinomial(D, p, size=reps)
    unlearned = (counts < tau) @ p
    want = theory.expected_loss_D(D, alpha, tau, K)
    # multinomial counts are negatively associated (Joag-Dev & Proschan 1983), so
    # Var X ≤ Σ_k p_k² P_k (1 − P_k): an upper bound on the standard error, also for rare events
    P = theory.prob_learned_D(np.arange(1, K + 1), D, alpha, tau, K)
    se = math.sqrt(np.sum(p ** 2 * P * (1 - P)) / reps)
    # plus three rare events' worth (3 p_max / reps): where a quantum fails to be learned in
    # λ = 0.02-0.04 of the reps, one failure (probability ~λ) is 5-8 normal SEs off; the
    # normal bound does not hold for such Poisson counts (α 0.125, K 2, τ 2, B 15, seed 19)
    slack = 3 * p.max() / reps
    assert abs(unlearned.mean() - want) <= 5 * se + slack + 1e-12, \
        f"Monte Carlo {unlearned.mean():.6f} ± {se:.2g} vs exact {want:.6f}"


@given(alpha=alphas, tau=small_taus, S=log_sizes(0, 8), batch=batches, K=st.one_of(st.none(), Ks))
@settings(max_examples=15)
def test_sample_rule_is_E_L_at_S_times_B(alpha, tau, S, batch, K):
    got = theory.expected_loss_S(S, alpha, batch, tau, "samples", K)
    assert got == theory.expected_loss_D(S * batch, alpha, tau, K)


@given(alpha=alphas, tau=small_taus, S=log_sizes(0, 9), K=st.one_of(st.none(), st.integers(1, 3000)))
@settings(max_examples=12)
def test_step_rule_with_batch_one_is_the_sample_rule(alpha, tau, S, K):
    S = math.floor(S)
    steps = theory.expected_loss_S(S, alpha, 1, tau, "steps", K)
    assert steps == pytest.approx(theory.expected_loss_D(S, alpha, tau, K), rel=1e-8)


@given(alpha=alphas, K=st.integers(1, 400), tau=small_taus, S=log_sizes(0, 7), batch=batches)
@settings(max_examples=15)
def test_step_rule_matches_brute_force(alpha, K, tau, S, batch):
    S = math.floor(S)
    p = _p(alpha, K)
    with np.errstate(divide="ignore"):     # p = 1 when K = 1
        q = -np.expm1(batch * np.log1p(-p))  # 1 − (1 − p)^B without cancellation (S up to 1e7)
    want = math.fsum(p * stats.binom.cdf(tau - 1, S, q))
    assert theory.expected_loss_S(S, alpha, batch, tau, "steps", K) == pytest.approx(want, rel=1e-8, abs=1e-100)


@given(alpha=alphas, tau=small_taus, batch=batches, S=log_sizes(0, 10))
@example(alpha=1.0, tau=2, batch=7, S=1e9)   # found: scipy's I_x(2, b) is 1e-8 off at b = 1e9
@example(alpha=1.0, tau=2, batch=2, S=1e9)
def test_rules_agree_per_quantum_when_batch_rarely_holds_it(alpha, tau, batch, S):
    """When B p_k ≪ 1 both rules are Poisson(S B p_k) to O(B p_k): they differ by ≤ 2 B p_k."""
    k = np.logspace(0, 9, 40)
    p = theory.frequencies(alpha, None, k)
    small = batch * p < 1e-2
    P_samples = theory.prob_learned_S(k, S, alpha, batch, tau, "samples")
    P_steps = theory.prob_learned_S(k, S, alpha, batch, tau, "steps")
    assert np.all(np.abs(P_samples - P_steps)[small] <= 2 * batch * p[small] + 1e-15)
    assert np.all(P_steps <= P_samples + 1e-12)  # a step counts a quantum at most once


@given(alpha=alphas, tau=taus, D=log_sizes(0, 14), k=log_sizes(0, 9))
def test_prob_learned_D_is_the_binomial_survival(alpha, tau, D, k):
    D, k = math.floor(D), math.floor(k)
    p = float(theory.frequencies(alpha, None, k))
    want = stats.binom.sf(tau - 1, D, p)
    assert theory.prob_learned_D(k, D, alpha, tau) == pytest.approx(want, rel=1e-9, abs=1e-100)


def test_prob_learned_N_is_a_step_at_N_over_C():
    got = theory.prob_learned_N([1, 5, 6, 7], 60, 0.5, C=10)
    assert list(got) == [1.0, 1.0, 1.0, 0.0]


@given(alpha=alphas, K=st.integers(1, 2000), tau=small_taus, N=log_sizes(0, 4), D=log_sizes(0, 10),
       C=st.sampled_from([1.0, 3.0]))
@example(alpha=3.0, K=80, tau=2, N=100.0, D=1e9, C=1.0)     # scipy's binom.cdf off by 3.5e-8
def test_expected_loss_ND_matches_brute_force(alpha, K, tau, N, D, C):
    D = math.floor(D)
    n = min(math.floor(N / C), K)
    p = _p(alpha, K)
    want = math.fsum(p[:n] * binom_cdf(tau - 1, D, p[:n])) + math.fsum(p[n:])
    assert theory.expected_loss_ND(N, D, alpha, C, tau, K) == pytest.approx(want, rel=1e-8, abs=1e-100)


@given(alpha=alphas, tau=small_taus, N=log_sizes(0, 12), D=log_sizes(0, 14))
@example(alpha=0.25, tau=7, N=1000.0, D=2371.373705661655)   # found: sides equal to 1.4e-12
@settings(max_examples=25)
def test_ND_limits_and_monotone(alpha, tau, N, D):
    N = float(math.floor(N))
    L = theory.expected_loss_ND(N, D, alpha, 1.0, tau)
    assert theory.expected_loss_ND(0, D, alpha, 1.0, tau) == pytest.approx(1.0, rel=1e-14)
    # the bounds hold with equality where the other limit does not bind (N = 1000 holds
    # every quantum that D = 2371 can teach at τ = 7), and the two sides come from different
    # sums, each integrated to a relative 1e-11: compare them to 1e-10, not to 1e-12
    tol = 1e-10
    assert L >= theory.expected_loss_D(D, alpha, tau) * (1 - tol)
    assert L >= theory.loss_N(N, alpha) * (1 - tol)
    assert theory.expected_loss_ND(2 * N, D, alpha, 1.0, tau) <= L * (1 + tol)
    assert theory.expected_loss_ND(N, 2 * D, alpha, 1.0, tau) <= L * (1 + tol)
    # enough data to see every quantum the network can hold τ times → L(N)
    lots = 1e4 * tau / float(theory.frequencies(alpha, None, max(N, 1)))
    assert theory.expected_loss_ND(N, lots, alpha, 1.0, tau) == pytest.approx(theory.loss_N(N, alpha), rel=1e-6)


@given(alpha=alphas, tau=taus, C=st.floats(0.1, 100.0), compute=log_sizes(6, 30))
def test_compute_optimum_minimises_the_asymptotic_loss(alpha, tau, C, compute):
    opt = theory.compute_optimal(alpha, tau, C)
    mu = alpha / (alpha + 1)

    def excess(logN):
        N = math.exp(logN)
        D = compute / (6 * N)
        return theory.loss_n_asymptote(N / C, alpha) + theory.loss_D_asymptote(D, alpha, tau)

    res = optimize.minimize_scalar(excess, bounds=(-60, 100), method="bounded",
                                   options={"xatol": 1e-10})
    assert opt.N(compute) == pytest.approx(math.exp(res.x), rel=1e-3)
    assert opt.D(compute) * opt.N(compute) * 6 == pytest.approx(compute, rel=1e-12)
    assert opt.L(compute) == pytest.approx(res.fun, rel=1e-7)
    assert (opt.N_exponent, opt.D_exponent, opt.L_exponent) == pytest.approx(
        (1 / (alpha + 2), (alpha + 1) / (alpha + 2), alpha / (alpha + 2)), rel=1e-14)
    assert opt.B * 1e6 ** -mu == pytest.approx(theory.loss_D_asymptote(1e6, alpha, tau), rel=1e-12)


@pytest.mark.parametrize("call, name", [
    (lambda: theory.expected_loss_D(10, 0.5, tau=0), "tau"),
    (lambda: theory.expected_loss_D(10, 0.5, tau=1.5), "tau"),
    (lambda: theory.expected_loss_D(-1, 0.5), "D"),
    (lambda: theory.expected_loss_D(float("nan"), 0.5), "D"),
    (lambda: theory.expected_loss_D(10, -0.5), "alpha"),
    (lambda: theory.expected_loss_D(10, 0.5, K=0), "K"),
    (lambda: theory.expected_loss_D(10, 0.5, K=5, b=np.ones((5, 2))), "b"),
    (lambda: theory.expected_loss_S(10, 0.5, batch=0), "batch"),
    (lambda: theory.expected_loss_S(10, 0.5, batch=4, rule="epochs"), "rule"),
    (lambda: theory.expected_loss_S(-10, 0.5, batch=4), "S"),
    (lambda: theory.expected_loss_ND(-1, 10, 0.5), "N"),
    (lambda: theory.expected_loss_ND(1, [1, float("nan")], 0.5), "D"),
    (lambda: theory.prob_learned_D(0, 10, 0.5), "k"),
    (lambda: theory.compute_optimal(0.5, C=-1), "C"),
    (lambda: theory.compute_optimal(0.5, a=1, b=1), "b"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("alpha, tau", [(0.3, 1), (1.0, 5), (2.0, 1)])
def test_exact_compute_optimum_has_the_predicted_exponents(alpha, tau):
    """Minimising the exact E[L(N, D = c/6N)] over N: L* − L∞ and N* scale with the
    exponents of compute_optimal, and its sum-of-asymptotes L* bounds the exact one."""
    opt = theory.compute_optimal(alpha, tau)

    def exact_optimum(c):
        f = lambda logN: theory.expected_loss_ND(math.exp(logN), c / (6 * math.exp(logN)), alpha, 1.0, tau)  # noqa: E731
        grid = np.linspace(0, math.log(c / 6), 200)
        i = int(np.argmin([f(g) for g in grid]))
        res = optimize.minimize_scalar(f, bounds=(grid[max(i - 1, 0)], grid[min(i + 1, 199)]),
                                       method="bounded", options={"xatol": 1e-6})
        return math.exp(res.x), res.fun

    (N1, L1), (N2, L2) = exact_optimum(1e18), exact_optimum(1e26)
    assert math.log(L1 / L2) / math.log(1e8) == pytest.approx(opt.L_exponent, abs=0.01)
    assert math.log(N2 / N1) / math.log(1e8) == pytest.approx(opt.N_exponent, abs=0.02)
    assert L2 < opt.L(1e26) and L1 < opt.L(1e18)


@given(alpha=st.floats(0.05, 1.5), K=st.integers(2, 10), tau=st.integers(1, 4), batch=st.integers(1, 20),
       seed=seeds)
@settings(max_examples=10)
@example(alpha=0.125, K=2, tau=2, batch=15, seed=19)
def test_monte_carlo_step_rule_within_standard_errors(alpha, K, tau, batch, seed):
    """Draw S batches of B samples; a quantum is learned once present in τ distinct steps."""
    rng = np.random.default_rng(seed)
    p = _p(alpha, K)
    q_K = -math.expm1(batch * math.log1p(-p[-1]))
    S, reps = min(max(tau, math.ceil(tau / q_K)), 300), 1000  # rarest quantum seen ~τ times
    present = rng.multinomial(batch, p, size=(reps, S)) > 0
    unlearned = (present.sum(axis=1) < tau) @ p
    want = theory.expected_loss_S(S, alpha, batch, tau, "steps", K)
    # multinomial presences are negatively associated (Joag-Dev & Proschan 1983), so
    # Var X ≤ Σ_k p_k² P_k (1 − P_k): an upper bound on the standard error, also for rare events
    P = theory.prob_learned_S(np.arange(1, K + 1), S, alpha, batch, tau, "steps", K)
    se = math.sqrt(np.sum(p ** 2 * P * (1 - P)) / reps)
    # plus three rare events' worth (3 p_max / reps): where a quantum fails to be learned in
    # λ = 0.02-0.04 of the reps, one failure (probability ~λ) is 5-8 normal SEs off; the
    # normal bound does not hold for such Poisson counts (α 0.125, K 2, τ 2, B 15, seed 19)
    slack = 3 * p.max() / reps
    assert abs(unlearned.mean() - want) <= 5 * se + slack + 1e-12, \
        f"Monte Carlo {unlearned.mean():.6f} ± {se:.2g} vs exact {want:.6f}"


@given(alpha=alphas, tau=taus, S=log_sizes(0, 10), batch=batches, k=log_sizes(0, 8))
def test_prob_learned_S_step_rule_is_the_binomial_survival(alpha, tau, S, batch, k):
    S, k = math.floor(S), math.floor(k)
    p = float(theory.frequencies(alpha, None, k))
    q = -math.expm1(batch * math.log1p(-p))
    want = stats.binom.sf(tau - 1, S, q)
    got = theory.prob_learned_S(k, S, alpha, batch, tau, "steps")
    assert got == pytest.approx(want, rel=1e-9, abs=1e-100)
    assert theory.prob_learned_S(k, S, alpha, batch, tau, "samples") == pytest.approx(
        stats.binom.sf(tau - 1, S * batch, p), rel=1e-9, abs=1e-100)


@pytest.mark.parametrize("alpha, tau, batch", [(0.1, 1, 1000), (0.5, 3, 50), (2.0, 10, 5)])
def test_quadrature_tail_over_a_finite_range_matches_brute_force(alpha, tau, batch):
    """K = 50000 takes the head + adaptive-quadrature path (steps rule; a callable b)."""
    K = 50_000
    p = _p(alpha, K)
    q = -np.expm1(batch * np.log1p(-p))
    k = np.arange(1, K + 1, dtype=float)
    b = lambda x: 1 + 1 / np.sqrt(x)  # noqa: E731
    for S in (1, 30, 10**3, 10**5, 10**7):
        want = math.fsum(p * stats.binom.cdf(tau - 1, S, q))
        got = theory.expected_loss_S(S, alpha, batch, tau, "steps", K)
        assert got == pytest.approx(want, rel=1e-8, abs=1e-100), S
        want_b = math.fsum(p * b(k) * stats.binom.cdf(tau - 1, S * batch, p))
        assert theory.expected_loss_D(S * batch, alpha, tau, K, b=b) == pytest.approx(want_b, rel=1e-8, abs=1e-100), S


@given(alpha=alphas, tau=small_taus, k=log_sizes(1, 6))
def test_critical_batch_separates_perfect_scaling_from_waste(alpha, tau, k):
    """Steps rule: well below B_crit = 1/p_k, halving B and doubling S keeps P(learned);
    well above it, a bigger batch no longer helps (P ≈ P(Bin(S, 1) ≥ τ) = 1 for S ≥ τ)."""
    k = math.floor(k)
    B_crit = theory.critical_batch(k, alpha)
    assert B_crit == pytest.approx(1 / float(theory.frequencies(alpha, None, k)))
    small = B_crit / 1e3                           # batches may be fractional here
    S = 1000 * tau                                 # about τ expected occurrences
    P1 = theory.prob_learned_S(k, S, alpha, small, tau, "steps")
    P2 = theory.prob_learned_S(k, 2 * S, alpha, small / 2, tau, "steps")
    assert 0.45 < P1 < 0.7 and P1 == pytest.approx(P2, abs=3e-3)  # ≈ P(Poisson(τ) ≥ τ)
    big = 1e3 * B_crit
    P_big = theory.prob_learned_S(k, tau, alpha, big, tau, "steps")
    assert P_big == pytest.approx(1.0, abs=1e-6 * tau)
    assert theory.prob_learned_S(k, tau, alpha, 10 * big, tau, "steps") - P_big < 1e-6 * tau


@pytest.mark.parametrize("call, name", [
    (lambda: theory.prob_learned_D([1, 2, 3], [10, 20], 0.5), "k and D"),
    (lambda: theory.expected_loss_ND([1, 2, 3], [10, 20], 0.5), "N and D"),
    (lambda: theory.prob_learned_N([1, 2], [1, 2, 3], 0.5), "k and N"),
])
def test_shape_mismatch_names_the_arguments(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@given(alpha=alphas, tau=small_taus, batch=batches, Ss=sorted_log_sizes(2, 9, size=4),
       rule=st.sampled_from(["samples", "steps"]))
@settings(max_examples=15)
def test_expected_loss_S_decreases_in_S_and_increases_in_tau(alpha, tau, batch, Ss, rule):
    S = np.array(Ss)
    L = theory.expected_loss_S(S, alpha, batch, tau, rule)
    assert np.all(np.diff(L) <= 1e-13 * L[:-1])
    assert np.all(theory.expected_loss_S(S, alpha, batch, tau + 1, rule) >= L * (1 - 1e-12))


@given(alpha=alphas, tau=small_taus, batch=batches, S=log_sizes(2, 9))
@settings(max_examples=15)
def test_step_and_sample_rules_agree_once_the_unlearned_quanta_are_rare_per_batch(alpha, tau, batch, S):
    """At S steps the quanta still unlearned have B p_k ≈ τ/S ≪ 1; the rules then agree to
    a relative τ/S, and the step rule is never ahead (a step counts a quantum once).
    The two rules go through different numerical routes (incomplete-beta sums against the
    steps rule's quadrature tail, about 1e-9 relative), and at τ = 1 they are the same number
    ((1 − p)^{SB} both), so "never ahead" holds to that accuracy, not to round-off."""
    S = S * tau
    steps = theory.expected_loss_S(S, alpha, batch, tau, "steps")
    samples = theory.expected_loss_S(S, alpha, batch, tau, "samples")
    assert steps >= samples * (1 - 1e-9)
    assert steps / samples - 1 <= tau / S + 1e-9


@pytest.mark.parametrize("D", [1e7, 123456789.0, 1e9])
@pytest.mark.parametrize("tau", [1, 2, 30])
@pytest.mark.parametrize("mean", [0.3, 2.5, 60.0])
def test_binomial_tails_at_large_integer_D_match_exact_sums(D, tau, mean):
    """P(Bin(D, p) ≥ τ) and P(Bin(D, p) < τ) against 50-digit sums of the pmf, to 1e-13
    relative: scipy's incomplete beta alone is up to 6e-9 off for integer D ~ 1e7–1e9."""
    from theory._sums import learned_prob, unlearned_prob
    mpmath.mp.dps = 50
    n, q = mpmath.mpf(D), mpmath.mpf(mean / D)
    pmf = [mpmath.binomial(n, j) * q ** j * (1 - q) ** (n - j)
           for j in range(tau + int(mean) + 150)]          # the upper tail to < 1e-40
    lower, upper = mpmath.fsum(pmf[:tau]), mpmath.fsum(pmf[tau:])
    assert float(learned_prob(D, mean / D, tau)) == pytest.approx(float(upper), rel=1e-13)
    assert float(unlearned_prob(D, mean / D, tau)) == pytest.approx(float(lower), rel=1e-13)
