"""Bootstrap intervals: coverage, BCa against scipy, seeding, failure counting."""
import numpy as np
import pytest
from scipy import stats

import fit
from fit.bootstrap import bca_interval, pair_weights, percentile_interval


def _coverage(form, truth, n_points, noise, draws, resamples, method="pairs", seed=0):
    """Share of `draws` noisy data sets whose 95% bootstrap interval holds the true alpha."""
    x = np.geomspace(10, 1e4, n_points)
    hits = 0
    for ss in np.random.SeedSequence(seed).spawn(draws):
        rng = np.random.default_rng(ss)
        clean = truth.get("E", 0.0) + truth["A"] * x ** -truth["alpha"]
        y = clean * np.exp(noise * rng.standard_normal(n_points))
        res = fit.fit(form, x, y, bootstrap=resamples, seed=rng, bootstrap_method=method,
                      jackknife=False)
        lo, hi = res.conf_int(alpha=0.05).loc["alpha"]
        hits += lo <= truth["alpha"] <= hi
    return hits / draws


def test_power_law_bootstrap_covers_the_truth():
    """200 draws × 300 pairs resamples, 20 points, 5% log-normal noise. Binomial sd of the
    share at 95% is 1.5%, so 90–99% is a ±3 sd band around nominal."""
    share = _coverage("power", dict(A=5.0, alpha=0.5), 20, 0.05, draws=200, resamples=300)
    assert 0.90 <= share <= 0.99, f"coverage {share:.3f} outside [0.90, 0.99]"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pairs", "residuals"])
def test_offset_bootstrap_covers_the_truth(method):
    """200 draws × 300 resamples of E + A x^-alpha on 30 points, 2% noise (~15 s each)."""
    share = _coverage("offset", dict(E=1.0, A=5.0, alpha=0.5), 30, 0.02, draws=200,
                      resamples=300, method=method, seed=1)
    assert 0.90 <= share <= 0.99, f"{method}: coverage {share:.3f} outside [0.90, 0.99]"


def test_bootstrap_is_seeded():
    x = np.geomspace(10, 1e4, 20)
    y = (1 + 5 * x ** -0.5) * np.exp(0.02 * np.random.default_rng(0).standard_normal(20))
    a = fit.fit("offset", x, y, bootstrap=50, seed=7)
    b = fit.fit("offset", x, y, bootstrap=50, seed=7)
    c = fit.fit("offset", x, y, bootstrap=50, seed=8)
    np.testing.assert_array_equal(a.bootstrap_params["alpha"], b.bootstrap_params["alpha"])
    assert not np.array_equal(a.bootstrap_params["alpha"], c.bootstrap_params["alpha"])
    assert a.config["seed"] == 7
    assert a.bootstrap_stderr()["alpha"] == pytest.approx(
        np.std(a.bootstrap_params["alpha"], ddof=1), rel=1e-12)
    assert fit.fit("offset", x, y, bootstrap=0).bootstrap_stderr() is None


def test_batched_bootstrap_equals_one_refit_per_resample():
    """The batched resample refits equal separate fits of each resample's data."""
    rng = np.random.default_rng(2)
    x = np.geomspace(10, 1e4, 25)
    y = (1 + 5 * x ** -0.5) * np.exp(0.02 * rng.standard_normal(25))
    res = fit.fit("offset", x, y, bootstrap=5, seed=3, jackknife=False)
    W = pair_weights(25, 5, np.random.default_rng(3))
    for b in range(5):
        idx = np.repeat(np.arange(25), W[b].astype(int))
        one = fit.fit("offset", x[idx], y[idx])
        assert res.bootstrap_params["alpha"][b] == pytest.approx(one.params["alpha"], rel=1e-5)


def test_failed_refits_are_counted_and_dropped():
    rng = np.random.default_rng(4)
    x = np.geomspace(10, 1e4, 25)
    y = (1 + 5 * x ** -0.5) * np.exp(0.02 * rng.standard_normal(25))
    res = fit.fit("offset", x, y, bootstrap=40, seed=0, maxiter=1)
    assert res.n_failed_bootstrap == 40 - len(res.bootstrap_params["alpha"])
    assert res.n_failed_bootstrap > 0
    assert any("bootstrap refits failed" in w for w in res.warnings)


def test_bca_matches_scipy_for_a_vectorisable_statistic():
    """Our BCa (by hand, jackknife acceleration) against scipy.stats.bootstrap's BCa for the
    OLS slope of log y on log x, with many resamples so Monte Carlo error is small."""
    rng = np.random.default_rng(5)
    x = np.geomspace(10, 1e4, 40)
    y = 3 * x ** -0.4 * np.exp(0.1 * rng.standard_normal(40) ** 2)   # skewed noise
    res = fit.power_law(x, y, bootstrap=20000, seed=1, ci_method="bca")
    ours = tuple(res.conf_int(alpha=0.1).loc["alpha"])

    def slope(u, v, axis=-1):
        uc = u - u.mean(axis, keepdims=True)
        return -np.sum(uc * (v - v.mean(axis, keepdims=True)), axis) / np.sum(uc * uc, axis)

    ref = stats.bootstrap((np.log(x), np.log(y)), slope, paired=True, vectorized=True,
                          n_resamples=20000, confidence_level=0.9, method="BCa",
                          random_state=np.random.default_rng(2)).confidence_interval
    width = ref.high - ref.low
    assert ours[0] == pytest.approx(ref.low, abs=0.03 * width)
    assert ours[1] == pytest.approx(ref.high, abs=0.03 * width)


def test_interval_helpers_on_known_samples():
    s = np.arange(1, 1002, dtype=float)
    assert percentile_interval(s, 0.9) == pytest.approx((51.0, 951.0))
    # symmetric jackknife and a centred estimate: BCa reduces to the percentile interval
    jack = np.array([-1.0, 1.0, -2.0, 2.0])
    assert bca_interval(s, 501.0, jack, 0.9) == pytest.approx(percentile_interval(s, 0.9),
                                                              rel=1e-3)


def test_without_bootstrap_intervals_are_wald():
    x = np.geomspace(10, 1e4, 20)
    y = 2 * x ** -0.3 * np.exp(0.05 * np.random.default_rng(6).standard_normal(20))
    res = fit.power_law(x, y)
    lo, hi = res.conf_int(alpha=0.05).loc["alpha"]
    q = stats.t.ppf(0.975, 18)
    assert (lo, hi) == pytest.approx((res.params["alpha"] - q * res.stderr["alpha"],
                                      res.params["alpha"] + q * res.stderr["alpha"]))
    assert res.bootstrap_params is None and res.n_failed_bootstrap == 0


def test_joint_bootstrap_runs_batched_and_reports():
    N = np.repeat(np.geomspace(1e6, 1e9, 6), 6)
    D = np.tile(np.geomspace(1e7, 1e11, 6), 6)
    y = (1.7 + 400 * N ** -0.34 + 410 * D ** -0.28) * np.exp(
        0.01 * np.random.default_rng(7).standard_normal(36))
    res = fit.fit("chinchilla", N, y, x2=D, bootstrap=100, seed=0)
    d = res.to_dict()
    for key in ("form", "params", "ci", "stderr", "n_points", "aic", "bic",
                "n_failed_bootstrap", "alpha_implied"):
        assert key in d
    assert set(d["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert len(res.bootstrap_params["alpha"]) + res.n_failed_bootstrap == 100
    lo, hi = d["ci"]["alpha"]
    assert lo < res.params["alpha"] < hi
