"""Reading fitted exponents against the quantization model; the literature table; plots."""
import json

import numpy as np
import pytest

import fit
import theory
from fit.consistency import consistency
from fit.literature import FIGURE18_ROWS, figure18_points, load_literature
from quanta import cli


def _noisy_power(x, A, alpha, rng, noise=0.01):
    return A * x ** -alpha * np.exp(noise * rng.standard_normal(x.size))


def test_model_exponents_give_zero_gap_and_matching_alphas():
    alpha = 0.5
    c = consistency(alpha, alpha / (alpha + 1))       # exact model pair, no samples
    assert c.gap == pytest.approx(0.0, abs=1e-15)
    assert c.alpha_from_N == pytest.approx(alpha) and c.alpha_from_D == pytest.approx(alpha)
    assert c.gamma_tilted == pytest.approx(0.0, abs=1e-12)
    assert c.consistent is None                       # no bootstrap samples, no verdict


def test_tilted_pair_round_trips_through_theory():
    aN, aD = theory.tilted_exponents(0.4, 0.3)
    c = consistency(aN, aD)
    assert (c.alpha_tilted, c.gamma_tilted) == pytest.approx((0.4, 0.3))
    assert c.gap == pytest.approx(aD - theory.alpha_D(aN))


def test_bootstrap_consistency_of_model_and_off_model_data():
    """Over 40 independent data sets (30 points, 1 % noise): the model's pair (α_D =
    α_N/(α_N+1)) is read as consistent, and the implied-α interval covers α, in at least 32
    (if the 95 % intervals hold, P(≥ 9 misses of 40) = 1.3·10^-4 each); the off-model pair
    α_D = α_N (a gap of 0.11, many standard errors) is flagged in at least 39."""
    x = np.geomspace(10, 1e5, 30)
    alpha = 0.4
    missed = uncovered = unflagged = 0
    for draw in range(40):
        rng = np.random.default_rng(1000 + draw)
        fN = fit.power_law(x, _noisy_power(x, 2, alpha, rng), bootstrap=400, seed=3 * draw)
        fD = fit.power_law(x, _noisy_power(x, 2, alpha / (1 + alpha), rng), bootstrap=400,
                           seed=3 * draw + 1)
        good = consistency(fN, fD)
        assert good.n_samples == 400 and not good.paired
        missed += good.consistent is not True
        lo, hi = good.alpha_from_D_ci
        uncovered += not lo < alpha < hi
        fD_bad = fit.power_law(x, _noisy_power(x, 2, alpha, rng), bootstrap=400,
                               seed=3 * draw + 2)
        bad = consistency(fN, fD_bad)
        unflagged += bad.consistent is not False
        if draw == 0:
            assert "consistent: False" in bad.summary() and bad.gap_ci[0] > 0
    assert missed <= 8 and uncovered <= 8, (missed, uncovered)
    assert unflagged <= 1


def test_joint_fit_is_read_with_paired_draws():
    N = np.repeat(np.geomspace(1e6, 1e9, 6), 6)
    D = np.tile(np.geomspace(1e7, 1e11, 6), 6)
    aN = 0.5
    y = (1.5 + 300 * N ** -aN + 300 * D ** -(aN / (1 + aN))) * np.exp(
        0.003 * np.random.default_rng(4).standard_normal(36))
    res = fit.fit("chinchilla", N, y, x2=D, bootstrap=200, seed=0)
    c = consistency(res)
    assert c.paired and c.n_samples == 200 - res.n_failed_bootstrap
    assert c.gap_ci[0] <= 0 <= c.gap_ci[1]
    implied = res.alpha_implied()
    assert implied["N"]["value"] == pytest.approx(res.params["alpha"])
    assert implied["D"]["value"] == pytest.approx(theory.alpha_from_alpha_D(res.params["beta"]))


def test_literature_table_columns_and_rows():
    table = load_literature()
    assert len(table) == 137
    for col in ("Compute range max (FLOP)", "Data range max", "Size range max (parameters)"):
        assert col in table.columns
    assert not any(str(c).startswith("Unnamed") for c in table.columns)
    # the upper ends really are the upper ends
    both = table[["Size range (parameters)", "Size range max (parameters)"]].dropna()
    assert (both.iloc[:, 1] >= both.iloc[:, 0]).all()


def test_figure18_rows_read_parameters_and_data_and_fix_the_swap():
    pts = figure18_points()
    assert len(pts) == sum(len(rows) for _, _, rows in FIGURE18_ROWS) == 16
    hoffmann = pts[pts.label == "Hoffmann et al. 2022"].iloc[0]
    assert (hoffmann.alpha_N, hoffmann.alpha_D) == (0.34, 0.28)
    ard = pts[pts.label == "Ardalani et al. 2022"].iloc[0]
    table = load_literature()
    assert table.loc[ard.row_N, "Scaling Variable 1"] == "Parameters"
    assert table.loc[ard.row_D, "Scaling Variable 1"] == "Data"
    assert (ard.alpha_N, ard.alpha_D) == (4.0, 0.1)
    assert (ard.paper_alpha_N, ard.paper_alpha_D) == (0.1, 4.0) and ard.swapped_in_paper
    assert pts.swapped_in_paper.sum() == 1


def test_figure18_refuses_a_table_whose_rows_moved():
    table = load_literature().iloc[1:].reset_index(drop=True)
    with pytest.raises(ValueError, match="literature table row"):
        figure18_points(table)


def test_plots_return_their_axes():
    import matplotlib.pyplot as plt

    from fit.plots import (plot_fit, plot_literature, plot_local_exponent,
                           plot_rank_frequency, plot_residuals)
    from fit.sizes import rank_frequency_exponent

    rng = np.random.default_rng(5)
    x = np.geomspace(10, 1e4, 15)
    res = fit.offset_power_law(x, 1 + _noisy_power(x, 3, 0.5, rng), bootstrap=50)
    fig, axes = plt.subplots(2, 3)
    try:
        assert plot_fit(res, ax=axes[0, 0], theory=(x, 1 + 3 * x ** -0.5)) is axes[0, 0]
        assert len(axes[0, 0].collections) >= 2          # data and the bootstrap band
        assert plot_residuals(res, ax=axes[0, 1]) is axes[0, 1]
        assert plot_local_exponent(x, res.y, ax=axes[0, 2], offset=1.0, expected=0.5) \
            is axes[0, 2]
        assert plot_literature(figure18_points(), ax=axes[1, 0]) is axes[1, 0]
        sizes = np.round(1e6 * np.arange(1, 300) ** -1.5)
        rf = rank_frequency_exponent(sizes, method="ols", rank_window=(1, 100))
        assert plot_rank_frequency(sizes, rf, ax=axes[1, 1]) is axes[1, 1]
        N = np.repeat(np.geomspace(1e6, 1e9, 4), 4)
        D = np.tile(np.geomspace(1e7, 1e11, 4), 4)
        joint = fit.fit("max", N, 1.5 + np.maximum(300 * N ** -0.4, 300 * D ** -0.3), x2=D)
        assert plot_fit(joint, ax=axes[1, 2]) is axes[1, 2]
    finally:
        plt.close(fig)


def test_cli_literature_and_sizes(tmp_path, capsys):
    out = tmp_path / "lit.json"
    assert cli.main(["fit", "literature", "--json", str(out), "--plot",
                     str(tmp_path / "lit.png")]) == 0
    d = json.loads(out.read_text())
    assert d["n_points"] == 16 and d["swapped_in_paper"] == "Ardalani et al. 2022"
    assert "swapped in the paper's figure" in capsys.readouterr().out
    sizes = tmp_path / "sizes.csv"
    k = np.arange(1, 400)
    sizes.write_text("count\n" + "\n".join(str(int(v)) for v in np.round(1e7 * k ** -1.5)))
    res = tmp_path / "s.json"
    assert cli.main(["fit", "sizes", str(sizes), "--method", "ols", "--rank-window", "1",
                     "100", "--bootstrap", "0", "--json", str(res)]) == 0
    assert json.loads(res.read_text())["alpha_hat"] == pytest.approx(0.5, abs=1e-3)


def test_max_form_recovers_the_model_exponents_from_theory_curves():
    """On theory.expected_loss_ND (α = 0.5), the quantization model's own joint form finds
    α_N ≈ α and α_D ≈ α/(α+1), is consistent with the model, and beats the Chinchilla sum by
    AIC; the sum form, fitted to the same curves, biases α_N upwards."""
    alpha = 0.5
    N = np.repeat(np.geomspace(1e2, 1e5, 8), 8)
    D = np.tile(np.geomspace(1e3, 1e7, 8), 8)
    L = np.array([float(np.squeeze(theory.expected_loss_ND(n, d, alpha)))
                  for n, d in zip(N, D)])
    mx = fit.fit("max", N, L, x2=D)
    sm = fit.fit("chinchilla", N, L, x2=D)
    assert mx.params["alpha"] == pytest.approx(alpha, abs=0.01)
    assert mx.params["beta"] == pytest.approx(theory.alpha_D(alpha), abs=0.01)
    assert abs(consistency(mx.params["alpha"], mx.params["beta"]).gap) < 0.01
    assert mx.aic < sm.aic - 100
    assert sm.params["alpha"] > alpha + 0.1


def test_separate_fits_with_the_same_seed_are_paired_as_independent_draws():
    # the same seed and point count give the same resample weights at each index; pairing
    # draws by index would correlate them and shrink the gap's interval
    x = np.geomspace(1e2, 1e6, 16)
    rng = np.random.default_rng(3)
    yN = 0.02 + 3 * x ** -0.4 * np.exp(rng.normal(0, 0.02, 16))
    yD = 0.02 + x ** -(0.4 / 1.4) * np.exp(rng.normal(0, 0.02, 16))
    fN = fit.power_law(x, yN, bootstrap=4000, seed=0)
    widths = []
    for seed in (0, 1):
        lo, hi = consistency(fN, fit.power_law(x, yD, bootstrap=4000, seed=seed)).gap_ci
        widths.append(hi - lo)
    assert widths[0] == pytest.approx(widths[1], rel=0.15)


def test_draws_outside_the_model_are_kept_not_dropped():
    """The implied-α interval is the percentile interval of every draw mapped through the
    (nondecreasing) inverse α = α_D/(1 − α_D), continued as +∞ for α_D ≥ 1: inside the
    model it equals the interval of the mapped draws; with draws at α_D ≥ 1 its upper end
    is +∞ instead of an interval of the remaining draws only."""
    rng = np.random.default_rng(0)
    sN = rng.normal(0.4, 0.02, 4000)
    inside = rng.uniform(0.1, 0.9, 4000)
    c = consistency((0.4, sN), (0.5, inside))
    mapped = np.percentile(inside / (1 - inside), [2.5, 97.5])
    assert c.alpha_from_D_ci == pytest.approx(tuple(mapped), rel=2e-2)
    assert c.outside_fraction == 0.0
    straddling = rng.uniform(0.5, 1.5, 4000)               # half the draws have α_D ≥ 1
    c = consistency((0.4, sN), (0.9, straddling))
    lo = np.percentile(straddling, 2.5)
    assert c.alpha_from_D_ci == (pytest.approx(lo / (1 - lo)), np.inf)
    assert c.outside_fraction == pytest.approx(np.mean(straddling >= 1))
    # the gap d − n/(n+1) is defined for every draw: its interval uses all of them
    gaps = straddling[:4000] - sN / (sN + 1)
    assert c.gap_ci == pytest.approx(tuple(np.percentile(gaps, [2.5, 97.5])), rel=1e-2)
    # (α, γ) of the tilted variant needs α_N > α_D > 0: no interval when most draws lack it
    assert c.alpha_tilted_ci is None and c.tilted_outside_fraction > 0.9
    assert "no tilted interval" in c.summary() and "outside the model" in c.summary()


def test_fits_passed_the_wrong_way_round_are_refused_and_joint_gives_beta():
    x = np.geomspace(10, 1e4, 12)
    rng = np.random.default_rng(1)
    fN = fit.power_law(x, _noisy_power(x, 2, 0.4, rng), variable="N")
    fD = fit.power_law(x, _noisy_power(x, 2, 0.3, rng), variable="D")
    with pytest.raises(ValueError, match="L\\(D\\)"):
        consistency(fD, fN)
    N = np.repeat(np.geomspace(1e6, 1e9, 5), 5)
    D = np.tile(np.geomspace(1e7, 1e11, 5), 5)
    joint = fit.fit("chinchilla", N, 1.5 + 300 * N ** -0.5 + 300 * D ** -0.3, x2=D)
    assert consistency(fN, joint).alpha_D == pytest.approx(joint.params["beta"])
