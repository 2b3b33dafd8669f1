"""α estimators on cluster sizes with known α, the toy model and its calibration."""
import numpy as np
import pytest
import torch

import theory
from empirical.qdg import (ESTIMATORS, QDGClustering, apply_calibration,
                           calibrate, envelope, estimate_alpha, estimate_all, run_toy,
                           toy_embeddings, zipf_mle)


def _zipf_counts(alpha, n_clusters, n_samples, seed):
    p = theory.frequencies(alpha, K=n_clusters)
    return np.random.default_rng(seed).multinomial(n_samples, p / p.sum())


@pytest.mark.parametrize("alpha", [0.3, 0.6])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimator_recovers_alpha_within_interval_on_large_clean_data(estimator, alpha):
    # the rank estimators on 30 planted clusters with 20 000 samples; the size-distribution
    # MLE needs many clusters (3000 clusters, 10^6 samples) for its power-law tail
    n_clusters, n = (3000, 1_000_000) if estimator == "mle" else (30, 20_000)
    sizes = _zipf_counts(alpha, n_clusters, n, seed=0)
    est = estimate_alpha({n_clusters: sizes}, estimator, bootstrap=200, seed=1)
    lo, hi = est.conf_int().loc["alpha_hat"]
    assert abs(est.alpha_hat - alpha) < 0.1      # accuracy; coverage is tested over draws below
    assert lo < est.alpha_hat < hi and hi - lo < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.3, 0.6])
@pytest.mark.parametrize("estimator", ["envelope", "ols", "zipf"])
def test_rank_estimator_intervals_cover_alpha(estimator, alpha):
    """Coverage of the 95 % bootstrap interval over 40 independent draws (30 clusters,
    20 000 samples): at most 8 misses. If the coverage is the nominal 95 %, P(≥ 9 misses) =
    1.3·10^-4 per case (8·10^-4 for the six); an interval that misses 20 % of the time fails
    with probability 0.41, one that misses 30 % with probability 0.89."""
    misses = 0
    for draw in range(40):
        sizes = _zipf_counts(alpha, 30, 20_000, seed=100 + draw)
        lo, hi = estimate_alpha({30: sizes}, estimator, bootstrap=200,
                                seed=draw).conf_int().loc["alpha_hat"]
        misses += not lo <= alpha <= hi
    assert misses <= 8, f"{estimator}: {misses}/40 intervals miss α = {alpha}"


def test_pipeline_on_clean_toy_data_recovers_alpha():
    x, truth = toy_embeddings(0.6, 12, 1500, 64, 0.05, seed=3)
    model = QDGClustering(12, n_init=5, random_state=0).fit(torch.from_numpy(x))
    for name, e in estimate_all({12: model.cluster_sizes_}, estimators=("ols", "zipf"),
                                bootstrap=200).items():
        lo, hi = e.conf_int().loc["alpha_hat"]
        assert lo <= 0.6 <= hi, f"{name}: {e.summary()}"


def test_zipf_mle_on_exact_frequencies():
    # exact expected counts: the MLE returns the exponent that generated them
    p = theory.frequencies(0.7, K=50)
    assert zipf_mle(1e6 * p) == pytest.approx(1.7, abs=1e-4)


def test_envelope_is_rankwise_maximum():
    env = envelope({2: [5, 1], 3: [4, 3, 1], 4: [2, 2, 2, 2]})
    np.testing.assert_array_equal(env, [5, 3, 2, 2])


def test_estimates_have_settings_and_json_fields():
    sizes = {10: _zipf_counts(0.5, 10, 2000, 1), 20: _zipf_counts(0.5, 20, 2000, 2)}
    est = estimate_all(sizes, k=10, bootstrap=20)
    assert set(est) == set(ESTIMATORS)
    d = est["ols"].to_dict()
    assert {"alpha_hat", "ci", "level", "n_bootstrap", "k"} <= set(d) and d["k"] == 10
    assert est["envelope"].settings["ks"] == [10, 20]


def test_estimator_bad_input():
    with pytest.raises(ValueError, match="estimator must be one of"):
        estimate_alpha({5: [3, 2, 1]}, "nope")
    with pytest.raises(ValueError, match="need 3"):
        estimate_alpha({2: [3, 2]}, "ols")
    with pytest.raises(ValueError, match="k=7 is not one of"):
        estimate_alpha({5: [5, 3, 2, 1]}, "ols", k=7)


def test_calibration_inverts_a_linear_bias():
    rng = np.random.default_rng(0)
    a = np.repeat([0.2, 0.5, 1.0, 1.5], 50)
    hat = 0.1 + 0.6 * a + 0.03 * rng.standard_normal(a.size)
    cal = calibrate(a, hat)
    assert cal["c1"] == pytest.approx(0.6, abs=0.02) and cal["c0"] == pytest.approx(0.1, abs=0.02)
    assert cal["residual_sd"] == pytest.approx(0.05, rel=0.2)       # 0.03 / 0.6
    np.testing.assert_allclose(apply_calibration(0.1 + 0.6 * 0.8, cal), 0.8, atol=0.03)


def test_toy_run_reports_truth_and_estimates():
    res = run_toy(0.5, 10, 600, 32, 0.05, (5, 10), reps=2, k=10, bootstrap=20, n_init=2, seed=0)
    assert res["alpha_true"] == 0.5
    assert res["ari"][10] == pytest.approx(1.0)
    for e in res["estimators"].values():
        assert len(e["ci"]) == 2 and len(e["per_rep"]) == 2
    assert list(res["sizes"]["10"]) == list(res["sizes"]["true"][:10])
    # with the clusters recovered exactly (ARI 1), each estimate is the estimator applied
    # to the true sizes, its interval holds it, and the reported mean is over the reps
    from empirical.qdg import estimate_alpha
    for name, e in res["estimators"].items():
        sizes = ({5: res["sizes"]["5"], 10: res["sizes"]["10"]} if name == "envelope"
                 else {10: res["sizes"]["true"]})         # the envelope uses every K
        truth = estimate_alpha(sizes, name, k=10, bootstrap=0)
        assert e["per_rep"][0]["alpha_hat"] == pytest.approx(truth.alpha_hat, abs=1e-12)
        assert e["alpha_hat"] == pytest.approx(np.mean([r["alpha_hat"] for r in e["per_rep"]]))


def test_toy_embeddings_are_unit_vectors_with_zipf_labels():
    x, labels = toy_embeddings(1.0, 5, 20_000, 8, 0.3, seed=0)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    freq = np.bincount(labels, minlength=5) / labels.size
    p = theory.frequencies(1.0, K=5)
    se = np.sqrt(p * (1 - p) / labels.size)
    assert np.all(np.abs(freq - p) < 5 * se)
    with pytest.raises(ValueError, match="sigma"):
        toy_embeddings(1.0, 5, 10, 8, -1.0)


def test_rank_frequency_plot_sorts_curves_and_refuses_nothing_to_plot():
    import matplotlib.pyplot as plt

    from empirical.qdg.plots import plot_rank_frequency
    ax = plot_rank_frequency({3: [1, 0, 5, 2], "true": [4, 3, 1]}, true_label="true subtasks")
    try:
        k3 = [ln for ln in ax.get_lines() if ln.get_label() == "K=3"][0]
        assert list(k3.get_ydata()) == [5, 2, 1]
        assert any(ln.get_label() == "true subtasks" for ln in ax.get_lines())
    finally:
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="no clustering"):
        plot_rank_frequency({"true": [3, 2, 1]})


def test_default_k_is_the_smallest_and_bad_bootstrap_is_refused():
    from empirical.qdg import estimate_alpha
    sizes = {10: np.round(500 * np.arange(1, 11.0) ** -1.5), 40: np.round(500 * np.arange(1, 41.0) ** -1.2)}
    assert estimate_alpha(sizes, "ols", bootstrap=0).settings["k"] == 10
    with pytest.raises(ValueError, match="bootstrap"):
        estimate_alpha(sizes, "ols", bootstrap=-1)
    with pytest.raises(ValueError, match="level"):
        estimate_alpha(sizes, "ols", level=0)


def test_a_bias_cell_rerun_alone_gives_the_same_numbers():
    from empirical.qdg.toy import bias_study
    kw = dict(dims=[8], sigmas=[0.2], n_clusters=[12], samples=[150], ks=[4, 6], reps=1,
              n_init=1, estimators=["ols"])
    both = bias_study([0.3, 0.9], **kw)
    alone = bias_study([0.9], **kw)
    np.testing.assert_array_equal(both[both.alpha_true == 0.9].alpha_hat.values,
                                  alone.alpha_hat.values)


def test_cli_bias_without_a_possible_calibration_does_not_crash(tmp_path):
    from quanta.cli import main
    code = main(["qdg", "bias", "--alphas", "0.5", "--dims", "8", "--sigmas", "0.1", "--ks", "5",
                 "--reps", "1", "--samples", "100", "--n-clusters", "10", "--out",
                 str(tmp_path / "b")])
    assert code == 0 and (tmp_path / "b" / "alpha_hat_vs_alpha.png").exists()


def test_bias_report_reads_a_planted_table():
    """Two estimators with planted linear responses α̂ = c0 + c1·α (+ noise for one): the
    report's bias, RMSE and calibration are the hand values, and it recommends the one
    whose calibration leaves the smaller spread."""
    import pandas as pd

    from empirical.qdg.toy import bias_report, summarize_bias
    alphas = np.repeat([0.2, 0.5, 1.0, 1.5], 3)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, alphas.size)
    rows = []
    for est, k, c0, c1, eps in (("ols", 10, -0.1, 0.8, 0.0), ("zipf", 10, 0.0, 1.0, 1.0)):
        for i, a in enumerate(alphas):
            rows.append(dict(estimator=est, k=k, dim=32, sigma=0.2, n_clusters=100,
                             n_samples=2000, alpha_true=a, rep=i % 3,
                             alpha_hat=c0 + c1 * a + eps * noise[i], ari=1.0, nmi=1.0))
    runs = pd.DataFrame(rows)
    summary = summarize_bias(runs)
    ols = summary[summary.estimator == "ols"]
    np.testing.assert_allclose(ols.bias, -0.1 - 0.2 * ols.alpha_true, atol=1e-12)
    rep = bias_report(runs)
    t = {r["estimator"]: r for r in rep["estimators"]}
    assert t["ols"]["calibration"]["c0"] == pytest.approx(-0.1, abs=1e-9)
    assert t["ols"]["calibration"]["c1"] == pytest.approx(0.8, abs=1e-9)
    assert t["ols"]["calibration"]["residual_sd"] == pytest.approx(0.0, abs=1e-9)
    assert t["ols"]["rmse"] == pytest.approx(np.sqrt(np.mean((-0.1 - 0.2 * alphas) ** 2)))
    assert t["zipf"]["mean_bias"] == pytest.approx(summary[summary.estimator == "zipf"].bias.mean())
    assert rep["recommended"]["estimator"] == "ols"


def test_envelope_bootstrap_with_labels_resamples_samples_jointly():
    """Three copies of one clustering have the envelope of one: resampling the samples
    jointly (labels given) gives the same interval for one copy as for three; redrawing
    each K on its own (no labels) narrows it as copies are added."""
    labels = np.random.default_rng(0).choice(40, size=6000,
                                             p=theory.frequencies(0.5, K=40) /
                                             theory.frequencies(0.5, K=40).sum())
    sizes = np.sort(np.bincount(labels))[::-1]
    one = estimate_alpha({40: sizes}, "envelope", bootstrap=200, seed=3,
                         labels_by_k={40: labels})
    three = estimate_alpha({40: sizes, 41: sizes, 42: sizes}, "envelope", bootstrap=200,
                           seed=3, labels_by_k={40: labels, 41: labels, 42: labels})
    one_ci, three_ci = one.conf_int().loc["alpha_hat"], three.conf_int().loc["alpha_hat"]
    assert one.alpha_hat == three.alpha_hat and tuple(one_ci) == pytest.approx(tuple(three_ci))
    apart = estimate_alpha({40: sizes, 41: sizes, 42: sizes}, "envelope", bootstrap=200, seed=3)
    apart_ci = apart.conf_int().loc["alpha_hat"]
    assert apart_ci["upper"] - apart_ci["lower"] < 0.8 * (one_ci["upper"] - one_ci["lower"])
    with pytest.raises(ValueError, match="does not give the sizes"):
        estimate_alpha({40: sizes}, "envelope", labels_by_k={40: labels[:-1]})
