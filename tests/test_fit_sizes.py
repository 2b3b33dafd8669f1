"""Size and rank-frequency exponents: discrete MLE, KS x_min, OLS window, envelope."""
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fit.sizes import discrete_power_law_mle, rank_frequency_exponent, zipf_mle
from tests import strategies


def _discrete_power_law(gamma, n, rng, xmin=1, smax=10**6):
    """Exact draws from P(s) ∝ s^-gamma on xmin..smax (the cut tail holds < 1e-5 of the mass
    for the gammas used here)."""
    s = np.arange(xmin, smax + 1, dtype=float)
    p = s ** -gamma
    return rng.choice(s, size=n, p=p / p.sum())


@pytest.mark.parametrize("gamma", [1.7, 2.0, 2.5])
def test_discrete_mle_recovers_gamma(gamma):
    rng = np.random.default_rng(int(gamma * 10))
    x = _discrete_power_law(gamma, 20000, rng)
    fitres = discrete_power_law_mle(x, xmin=1)
    assert abs(fitres.gamma - gamma) < 4 * fitres.stderr, (fitres.gamma, fitres.stderr)
    assert fitres.stderr < 0.03


def test_ks_xmin_finds_the_start_of_the_power_law():
    """Below x_min = 20 the sizes are uniform on 1..19; the KS choice should land at ≈ 20."""
    rng = np.random.default_rng(11)
    tail = _discrete_power_law(2.2, 6000, rng, xmin=20)
    body = rng.integers(1, 20, size=6000).astype(float)
    res = discrete_power_law_mle(np.concatenate([body, tail]))
    assert 15 <= res.xmin <= 30
    assert res.gamma == pytest.approx(2.2, abs=0.1)


def test_reference_word_frequencies_match_clauset_2009():
    """Clauset, Shalizi & Newman 2009, Table 6.1: Moby Dick word frequencies (n = 18 855),
    x_min = 7, alpha = 1.95(2). Data: the powerlaw package's words.txt (see fit/data)."""
    path = resources.files("fit").joinpath("data", "powerlaw_words.txt")
    with path.open("r") as fh:
        words = np.loadtxt(fh)
    res = discrete_power_law_mle(words)
    assert res.n == 18855 and res.xmin == 7
    assert res.gamma == pytest.approx(1.95, abs=0.01)
    assert res.stderr == pytest.approx(0.02, abs=0.005)


def test_size_and_rank_exponents_are_tied_by_gamma_equals_one_plus_one_over_a():
    """Sizes drawn with P(s) ∝ s^-gamma have a rank-frequency slope a = 1/(gamma - 1): the
    OLS fit over the top ranks and the MLE agree on alpha_hat = a - 1."""
    gamma = 1.0 + 1.0 / 1.25         # a = 1.25, alpha = 0.25
    rng = np.random.default_rng(12)
    x = _discrete_power_law(gamma, 50000, rng)
    mle = rank_frequency_exponent(x, method="mle")
    ols = rank_frequency_exponent(x, method="ols", rank_window=(50, 20000))
    assert mle.gamma == pytest.approx(gamma, abs=0.03)
    assert mle.rank_exponent == pytest.approx(1.0 / (mle.gamma - 1.0))
    assert mle.alpha_hat == pytest.approx(0.25, abs=0.04)
    assert ols.alpha_hat == pytest.approx(0.25, abs=0.03)


def test_ols_on_exact_zipf_sizes_gives_alpha():
    k = np.arange(1, 5001)
    alpha = 0.6
    sizes = 1e12 * k ** -(alpha + 1.0)
    res = rank_frequency_exponent(sizes[::-1], method="ols", rank_window=(1, 5000))
    assert res.alpha_hat == pytest.approx(alpha, rel=1e-10)
    assert res.rank_exponent == pytest.approx(alpha + 1, rel=1e-10)


def test_envelope_takes_the_rankwise_maximum_of_curves():
    """Two clusterings of the same samples: one clean Zipf curve, one where every 7th
    cluster lost 70% of its mass to many tiny fragments (ranked beyond the window). The
    envelope recovers the clean slope; the dented curve alone does not."""
    k = np.arange(1, 2001, dtype=float)
    clean = 1e9 * k ** -1.5
    dented = clean.copy()
    dented[::7] *= 0.3
    lost = clean.sum() - dented.sum()
    n_fragments = int(lost / (0.5 * dented.min())) + 1
    fragments = np.full(n_fragments, lost / n_fragments)
    assert fragments[0] < dented.min()
    dented = np.concatenate([dented, fragments])
    res = rank_frequency_exponent([dented, clean], method="envelope", rank_window=(1, 2000))
    assert res.alpha_hat == pytest.approx(0.5, rel=1e-9)
    alone = rank_frequency_exponent(dented, method="ols", rank_window=(1, 2000))
    assert abs(alone.alpha_hat - 0.5) > 0.01


def test_bootstrap_interval_and_bad_input():
    rng = np.random.default_rng(13)
    x = _discrete_power_law(1.8, 3000, rng)
    res = rank_frequency_exponent(x, method="mle", bootstrap=100, seed=1)
    lo, hi = res.conf_int().loc["alpha_hat"]
    assert lo < res.alpha_hat < hi
    with pytest.raises(ValueError, match="not a positive integer"):
        discrete_power_law_mle([1, 2, 2.5])
    with pytest.raises(ValueError, match="method must be one of"):
        rank_frequency_exponent(x, method="fancy")
    with pytest.raises(ValueError, match="rank_window"):
        rank_frequency_exponent(x, method="ols", rank_window=(5, 3))


def test_cli_envelope_reads_one_clustering_per_column(tmp_path, capsys):
    import json

    from quanta import cli

    k = np.arange(1, 500.0)
    clean = np.round(1e6 * k ** -1.5)
    dented = clean.copy()
    dented[::5] *= 0.5
    path = tmp_path / "clusterings.csv"
    path.write_text("c1,c2\n" + "".join(f"{a},{b}\n" for a, b in zip(dented, clean)))
    out = tmp_path / "env.json"
    assert cli.main(["fit", "sizes", str(path), "--method", "envelope", "--rank-window", "1",
                     "300", "--bootstrap", "0", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["alpha_hat"] == pytest.approx(0.5, abs=0.01)
    assert "envelope" in capsys.readouterr().out


def test_nan_negative_and_fractional_sizes_are_refused_with_their_row():
    good = np.round(1e4 * np.arange(1, 60.0) ** -1.4)
    for bad, row in ((np.nan, 3), (-4.0, 7)):
        s = good.copy()
        s[row - 1] = bad
        for method in ("ols", "mle"):
            with pytest.raises(ValueError, match=f"row {row}: "):
                rank_frequency_exponent(s, method=method)
        with pytest.raises(ValueError, match=f"curve 2, row {row}"):
            rank_frequency_exponent([good, s], method="envelope")
    s = good.copy()
    s[4] = 2.5                 # the row as given, not its place in the sorted curve
    with pytest.raises(ValueError, match=r"row 5: 2\.5 is not an integer"):
        rank_frequency_exponent(s, method="mle")
    with pytest.raises(ValueError, match="bootstrap"):
        rank_frequency_exponent(good, bootstrap=-1)


def test_flat_sizes_give_alpha_at_most_zero_and_keep_every_bootstrap_draw():
    # sizes ∝ r^-1.05: alpha = 0.05, so many resamples estimate a <= 1
    sizes = np.round(1e5 * np.arange(1, 300.0) ** -1.05)
    res = rank_frequency_exponent(sizes, method="ols", bootstrap=1000, seed=0)
    assert res.alpha_hat == pytest.approx(res.rank_exponent - 1)
    assert np.all(np.isfinite(res.bootstrap)) and res.bootstrap.size == 1000
    assert np.mean(res.bootstrap <= 0) > 0.05          # draws below 0 kept, not dropped
    lo, hi = res.conf_int().loc["alpha_hat"]
    assert lo <= np.quantile(res.bootstrap, 0.03)
    flat = rank_frequency_exponent(np.round(1e5 * np.arange(1, 300.0) ** -0.8), method="ols")
    assert flat.alpha_hat == pytest.approx(-0.2, abs=0.01)
    assert any("no positive alpha" in w for w in flat.warnings)


@pytest.mark.parametrize("mode", ["table", "literature", "sizes"])
def test_cli_json_dash_is_pure_json(tmp_path, capsys, mode):
    import json

    from quanta import cli

    if mode == "table":
        x = np.geomspace(10, 1e4, 12)
        path = tmp_path / "t.csv"
        path.write_text("N,loss\n" + "".join(f"{a},{2 * a ** -0.4}\n" for a in x))
        args = ["fit", str(path), "--x", "N", "--y", "loss", "--bootstrap", "50"]
    elif mode == "literature":
        args = ["fit", "literature"]
    else:
        path = tmp_path / "s.csv"
        path.write_text("s\n" + "".join(f"{v:g}\n" for v in np.round(1e4 * np.arange(1, 80.0) ** -1.4)))
        args = ["fit", "sizes", str(path), "--bootstrap", "1500"]
    assert cli.main(args + ["--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    if mode == "sizes":
        assert data["n_bootstrap"] == 1500            # as asked, not capped


# ---------------------------------------------------------------- properties

@settings(max_examples=10)
@given(seed=strategies.seeds, gamma=strategies.gammas)
def test_discrete_mle_standard_error_is_the_spread_of_the_estimate(seed, gamma):
    """Exact draws from P(s) = s^-γ/ζ(γ) (numpy's Zipf sampler, x_min = 1): over 60 data
    sets of 400 samples, z = (γ̂ − γ)/SE should be standard normal if the inverse-Fisher
    SE is right (measured over 600 data sets at γ = 2.2…3.5: mean 0.03–0.05, the MLE's
    small bias, sd 0.98–1.02). The mean of 60 z has sd 0.14 and their sd about 0.09:
    mean within ±0.72 and sd within [0.6, 1.45] are 5-sd bands."""
    rng = np.random.default_rng(seed)
    z = []
    for _ in range(60):
        est = discrete_power_law_mle(rng.zipf(gamma, 400), xmin=1)
        z.append((est.gamma - gamma) / est.stderr)
    z = np.array(z)
    assert abs(z.mean()) < 0.72 and 0.6 < z.std(ddof=1) < 1.45, (z.mean(), z.std(ddof=1))


@settings(max_examples=15)
@given(seed=strategies.seeds, method=st.sampled_from(["ols", "mle"]))
def test_the_order_of_the_sizes_does_not_matter(seed, method):
    """An estimate and its bootstrap interval depend on the sizes, not on their order."""
    rng = np.random.default_rng(seed)
    sizes = rng.zipf(2.2, 300).astype(float)
    a = rank_frequency_exponent(sizes, method=method, bootstrap=50, seed=1)
    b = rank_frequency_exponent(rng.permutation(sizes), method=method, bootstrap=50, seed=1)
    assert a.to_dict() == b.to_dict()


@given(a=strategies.rank_exponents, n=st.integers(5, 400),
       scale=strategies.log_sizes(0.0, 9.0), seed=strategies.seeds)
def test_exact_zipf_sizes_give_their_rank_exponent(a, n, scale, seed):
    """Sizes exactly C·r^-a, in any order: the log-log least squares returns a (and
    α̂ = a − 1) to rounding, and the Zipf maximum likelihood on them, as expected counts,
    returns a too (Gibbs' inequality: the cross-entropy is minimal at the true law)."""
    sizes = scale * np.arange(1, n + 1, dtype=float) ** -a
    sizes = np.random.default_rng(seed).permutation(sizes)
    res = rank_frequency_exponent(sizes, method="ols")
    assert res.rank_exponent == pytest.approx(a, rel=1e-9)
    assert res.alpha_hat == pytest.approx(a - 1.0, abs=1e-8)
    assert zipf_mle(sizes) == pytest.approx(a, abs=1e-5)
