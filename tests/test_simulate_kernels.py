"""The Numba kernels against the per-sample NumPy reference and against scipy's laws.

Statistical checks use fixed seeds (deterministic) and state their thresholds: two-sample
KS tests at p > 1e-3 each (about 20 of them: ≤ 2% false alarms if the seeds were redrawn),
moment checks at 5 standard errors.
"""
import numba
import numpy as np
import pytest
from numba import njit
from scipy import stats

import simulate
import theory
from simulate import _kernels
from tests import naive_simulate


def _state(seed):
    return np.random.SeedSequence(seed).generate_state(4, np.uint64)


def _pure_safe(fn, *args):
    """Call a test kernel; under NUMBA_DISABLE_JIT (coverage runs) it is Python, so its
    np.random.seed would reseed NumPy's global state (restored here) and its uint64
    generator arithmetic wraps with overflow warnings (silenced)."""
    state = np.random.get_state()
    try:
        with np.errstate(over="ignore"):
            return fn(*args)
    finally:
        np.random.set_state(state)


@njit(cache=True)
def _binomial_draws(state, seed32, n, p, size):
    np.random.seed(seed32)
    out = np.empty(size, np.int64)
    for i in range(size):
        out[i] = _kernels._binomial(state, n, p)
    return out


@njit(cache=True)
def _exponential_draws(state, size):
    out = np.empty(size)
    for i in range(size):
        out[i] = _kernels._exponential(state)
    return out


def test_ziggurat_exponential_follows_the_law():
    """The ziggurat's three exits: the layer rectangles, the wedges (beyond the next
    layer's edge) and the tail beyond r = X[1]; each region's frequency against e^-x."""
    draws = _pure_safe(_exponential_draws, _state(2), 400_000)
    assert stats.kstest(draws, "expon").pvalue > 1e-3
    n = draws.size
    assert abs(draws.mean() - 1.0) < 5 / np.sqrt(n)
    r = _kernels._ZIG_X[1]
    for lo, hi in [(0.0, 0.05), (0.05, 1.0), (1.0, 3.0), (3.0, r), (r, np.inf)]:
        prob = np.exp(-lo) - np.exp(-hi)
        freq = np.mean((draws >= lo) & (draws < hi))
        assert abs(freq - prob) < 5 * np.sqrt(prob * (1 - prob) / n) + 1e-6, (lo, hi)
    edges, dens = _kernels._ZIG_X, _kernels._ZIG_F
    areas = edges[1:255] * (dens[2:256] - dens[1:255])  # every layer has the same area v
    np.testing.assert_allclose(areas, areas[0], rtol=1e-12)
    np.testing.assert_allclose(edges[1] * dens[1] + dens[1], areas[0], rtol=1e-12)


def _chi2_pvalue(draws, law, bins=40):
    """Chi-square goodness of fit of integer draws to a discrete scipy law, on about
    ``bins`` bins of equal probability (integer cut points from the law's quantiles)."""
    cuts = np.unique(law.ppf(np.linspace(0, 1, bins + 1)[1:-1]))
    probs = np.diff(np.concatenate([[0.0], law.cdf(cuts - 1), [1.0]]))
    observed = np.bincount(np.searchsorted(cuts, draws, side="right"), minlength=probs.size)
    keep = probs > 0
    assert observed[~keep].sum() == 0, "draws where the law has no mass"
    return stats.chisquare(observed[keep], probs[keep] / probs[keep].sum() * draws.size).pvalue


@pytest.mark.parametrize("n, p", [
    (10**12, 3e-12),        # inversion with a tiny p (1 − p rounds in float64)
    (10**12, 2e-11),        # mean 20: still inversion
    (10**12, 1e-4),         # BTPE
    (40, 0.7),              # flipped inversion
    (7, 0.5),
])
def test_binomial_follows_scipy(n, p):
    draws = _pure_safe(_binomial_draws, _state(1), 12345, n, p, 20_000)
    law = stats.binom(n, p)
    se = np.sqrt(law.var() / draws.size)
    assert abs(draws.mean() - law.mean()) < 5 * se, (draws.mean(), law.mean())
    assert abs(draws.var() / law.var() - 1) < 5 * np.sqrt(2 / draws.size) + 5 / draws.size
    assert _chi2_pvalue(draws, law) > 1e-3


def _radix_sorted(keys):
    ids = np.arange(keys.size, dtype=np.int64)
    tmp_k, tmp_i = np.empty(keys.size, np.uint64), np.empty(keys.size, np.int64)
    count = np.empty(1 << _kernels.RADIX_BITS, np.int64)
    sk, si = _kernels._radix_sort(keys.copy().view(np.uint64), ids, tmp_k, tmp_i,
                                  keys.size, count)
    return sk.view(np.float64), si


@pytest.mark.parametrize("n", [0, 1, 7, 31, 32, 5000, 40_000])
def test_radix_sort_orders_like_numpy(n):
    rng = np.random.default_rng(3)
    near = 1.0 + rng.permutation(200) * 2.0**-45  # share every radix digit: insertion
    keys = np.concatenate([rng.exponential(size=n) / rng.random(n) ** 3, [0.0, 1.0, 1.0],
                           near, np.repeat(rng.exponential(size=20), 5)])
    rng.shuffle(keys)
    keys = keys[:n]  # the special keys are spread through the first n
    sk, si = _radix_sorted(keys)
    np.testing.assert_array_equal(sk, np.sort(keys))
    np.testing.assert_array_equal(si, np.argsort(keys, kind="stable"))  # ties keep order


CROWD = 1.0 + np.random.default_rng(4).permutation(3000) * 2.0**-30


@pytest.mark.parametrize("keys", [np.r_[CROWD, 0.0, 2.0**1000], CROWD, np.full(100, 7.5),
                                  np.r_[np.zeros(50), 2.0**-1074]])
def test_radix_sort_falls_back_to_every_bit_on_crowded_keys(keys):
    """3000 keys within a relative 2^-18 beside two far outliers share the top digits of
    the span, so the insertion sort would move ~n²/4 elements, over its budget: it sorts
    again on every bit, skipping the digits (the low 22 mantissa bits) that no key sets.
    The crowd alone spans few bits and sorts exactly; constant keys and subnormal spans
    have nothing to sort."""
    sk, si = _radix_sorted(keys)
    np.testing.assert_array_equal(sk, np.sort(keys))
    np.testing.assert_array_equal(si, np.argsort(keys, kind="stable"))


CONFIGS = {
    "D tau=1": dict(regime="D", alpha=0.5, x=[3, 20, 150], K=30, tau=1),
    "D tau=3": dict(regime="D", alpha=0.3, x=[10, 60, 400], K=40, tau=3),
    "D sparse tail": dict(regime="D", alpha=0.5, x=[20, 100, 300], K=2000, tau=2),
    "D capacity": dict(regime="D", alpha=0.5, x=[10, 60, 400], K=40, tau=2, N=12, C=1.5),
    "S samples": dict(regime="S", alpha=0.5, x=[2, 10, 60], K=30, batch=5, tau=2),
    "S steps": dict(regime="S", alpha=0.5, x=[2, 10, 60], K=30, batch=5, tau=2,
                    rule="steps"),
    "S steps big batch": dict(regime="S", alpha=1.0, x=[1, 3, 12], K=12, batch=40, tau=3,
                              rule="steps"),
    "N noisy": dict(regime="N", alpha=0.5, x=[3, 10, 25], K=40, noisy=True, D=80, tau=2),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernel_matches_per_sample_reference_in_distribution(name):
    check_against_reference(name)


@pytest.mark.parametrize("name", [name for name in CONFIGS if name.startswith("D")])
def test_later_windows_keep_the_law(monkeypatch, name):
    """A first window of Poisson time ending at x_max/50 instead of 10 SD past it: the
    data kernel must go through several windows (drawing the head clocks again in each)
    and still match the per-sample reference."""
    monkeypatch.setattr(simulate.core, "first_window", lambda x_max: x_max / 50)
    check_against_reference(name)


def test_a_clock_at_exactly_zero_is_an_occurrence():
    """A generator state whose first Exp(1) draw is exactly 0 (the ziggurat gives 0 with
    chance 2^-53): that clock belongs to the rarest head quantum, which must count as
    learned by the first sample like every other quantum by 10^6 samples."""
    K = 30
    p = np.asarray(theory.frequencies(0.5, K), float)
    sf = np.r_[np.cumsum(p[::-1])[::-1], 0.0]
    x = np.array([1, 10**6], np.int64)
    states = np.array([[1, 0, 1, 1]], np.uint64)
    assert _kernels._exponential(states[0].copy()) == 0.0
    out, learned = _kernels._simulate(_kernels.MODE_SAMPLES, p, sf, p.copy(), x, 1, 1, K, 0,
                                      states, True, 1, 1 << 20,
                                      simulate.core.first_window(1e6))
    assert out[0, -1] == 0.0 and learned[0, K - 1] == 1.0 and np.all(learned[-1] == 1.0)


def check_against_reference(name):
    """KS tests of the kernel's losses (each grid point and a difference) against the
    per-sample reference, and its learned fractions within 5 standard errors."""
    cfg = dict(CONFIGS[name])
    regime, alpha, x = cfg.pop("regime"), cfg.pop("alpha"), cfg.pop("x")
    fast = simulate.run(regime, alpha, x, reps=4000, seed=7, **cfg)
    slow, frac = naive_simulate.losses(regime, alpha, x, reps=1500, seed=8, **cfg)
    # the same learned set sums to the same loss up to rounding: compare on a 1e-12 lattice
    fast_l, slow = np.round(fast.losses, 12), np.round(slow, 12)
    for j in range(len(x)):  # each grid point, and the joint law along a realization
        p = stats.ks_2samp(fast_l[:, j], slow[:, j]).pvalue
        assert p > 1e-3, f"{name}: loss at x={x[j]} differs from the reference (KS p={p:.2g})"
    delta = stats.ks_2samp(fast_l[:, -1] - fast_l[:, 0], slow[:, -1] - slow[:, 0])
    assert delta.pvalue > 1e-3, f"{name}: L(x_last) − L(x_first) differs (KS)"
    se = np.sqrt(frac * (1 - frac) / 1500 + fast.p_learned * (1 - fast.p_learned) / 4000)
    assert np.all(np.abs(fast.p_learned - frac) <= 5 * se + 2e-3), name


def test_plain_N_equals_reference_exactly():
    x = np.array([1, 2.5, 7, 30, 100])
    res = simulate.run("N", 0.7, x, K=60, C=1.0, reps=3, a=0.1, b=2.0)
    slow, frac = naive_simulate.losses("N", 0.7, x, K=60, reps=3, seed=0, a=0.1, b=2.0)
    np.testing.assert_allclose(res.losses, slow, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(res.p_learned, frac)


@pytest.mark.parametrize("kw", [dict(regime="D", tau=2), dict(regime="S", batch=7, rule="steps"),
                                dict(regime="N", noisy=True, D=5000)])
def test_same_seed_same_numbers_whatever_the_threads(kw):
    kw = dict(kw)
    regime = kw.pop("regime")
    x = [5, 50, 500] if regime != "N" else [3, 30, 300]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate.run(regime, 0.4, x, K=2000, reps=40, seed=11, **kw)
        numba.set_num_threads(before)
        many = simulate.run(regime, 0.4, x, K=2000, reps=40, seed=11, **kw)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one.losses, many.losses)
    np.testing.assert_array_equal(one.p_learned, many.p_learned)
    other = simulate.run(regime, 0.4, x, K=2000, reps=40, seed=12, **kw)
    assert not np.array_equal(one.losses, other.losses)


def test_one_realization_gives_a_monotone_curve():
    res = simulate.run("D", 0.6, np.geomspace(1, 1e6, 25), K=5000, tau=2, reps=50, seed=3)
    assert np.all(np.diff(res.losses, axis=1) <= 1e-15)


@pytest.mark.parametrize("kw", [dict(regime="D", tau=2), dict(regime="D", tau=1, N=700),
                                dict(regime="S", batch=7, rule="steps"),
                                dict(regime="N", noisy=True, D=5000)])
def test_skipping_p_learned_leaves_the_losses_unchanged(kw):
    kw = dict(kw)
    regime = kw.pop("regime")
    x = [5, 50, 500, 5000] if regime != "N" else [3, 30, 300]
    full = simulate.run(regime, 0.4, x, K=2000, reps=37, seed=5, **kw)
    lean = simulate.run(regime, 0.4, x, K=2000, reps=37, seed=5, p_learned=False, **kw)
    np.testing.assert_array_equal(full.losses, lean.losses)
    assert lean.p_learned is None and full.p_learned.shape == (len(x), 2000)
    # the learned fractions and the losses describe the same realizations
    w = np.asarray(theory.frequencies(0.4, 2000))
    np.testing.assert_allclose(full.mean, ((1.0 - full.p_learned) * w).sum(axis=1), rtol=1e-9)


@pytest.mark.parametrize("buffer, budget", [(1, 1 << 29), (1 << 20, 1)])
def test_p_learned_is_exact_across_flushes_and_fewer_workers(monkeypatch, buffer, budget):
    """A code buffer so small that each worker flushes every few realizations, or a table
    budget so small that one worker runs everything: the counts must still cover every
    realization exactly once, and equal the default run's."""
    x = [10, 100, 1000]
    default = simulate.run("D", 0.5, x, K=300, reps=333, seed=2)
    monkeypatch.setattr(simulate.core, "CODE_BUFFER", buffer)
    monkeypatch.setattr(simulate.core, "P_TABLE_BUDGET", budget)
    res = simulate.run("D", 0.5, x, K=300, reps=333, seed=2)
    assert np.all(np.diff(res.p_learned, axis=0) >= 0)
    counts = res.p_learned * 333
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    w = np.asarray(theory.frequencies(0.5, 300))
    np.testing.assert_allclose(res.mean, ((1.0 - res.p_learned) * w).sum(axis=1), rtol=1e-9)
    np.testing.assert_array_equal(res.losses, default.losses)
    np.testing.assert_array_equal(res.p_learned, default.p_learned)


@pytest.mark.parametrize("alpha, K, h", [(0.4, 1000, 37), (1.5, 5000, 1), (0.05, 300, 299)])
def test_alias_table_gives_each_tail_quantum_its_probability(alpha, K, h):
    """Walker's table: slot b keeps quantum h + b with chance table[b, 0] and otherwise
    gives its alias; the implied law must be p[i] / sf[h] over the tail i ≥ h."""
    p = np.asarray(theory.frequencies(alpha, K))
    sf = np.concatenate([np.cumsum(p[::-1])[::-1], [0.0]])
    table = _kernels._alias(p, sf, h, K)
    M = K - h
    implied = np.zeros(K)
    np.add.at(implied, h + np.arange(M), table[:, 0] / M)
    np.add.at(implied, table[:, 1].astype(np.int64), (1.0 - table[:, 0]) / M)
    np.testing.assert_allclose(implied[h:], p[h:] / sf[h], rtol=1e-9, atol=1e-15)
    assert implied[:h].sum() == 0.0


def test_fully_learned_curve_ends_exactly_at_the_floor():
    """The data kernel's loss is Σw − (mass learned), both double-double sums: once every
    quantum is learned it must be L∞ exactly, not a rounding residue (~1e-17) that a log
    plot or a tail fit would read as signal."""
    res = simulate.run("D", 0.4, [1e3, 1e12], K=200, tau=2, reps=20, seed=1, a=0.1, b=1.0,
                       p_learned=False)
    assert np.all(res.losses[:, -1] == res.config["loss_infinity"])
    assert np.all(res.losses[:, 0] > res.config["loss_infinity"])
