"""fit.tokens: kernels against naive references, recovery of a generator's truth,
calibrated false alarms, invariances, readers and the JSON interface."""
import dataclasses
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings

from common.errors import InputError
from fit.tokens import analyze, calibrate, classify, design, fit_curves
from fit.tokens.analysis import fit_interval
from fit.tokens.curves import SHARP, null_curves
from fit.tokens.stream import HIST_BINS, _add_rows
from simulate.tokens import TokenConfig, generate_tokens
from tests import naive_tokens
from tests.strategies import seeds

FAST = dict(bootstrap=200, fit_bootstrap=50, n_calibration=5_000)


@settings(max_examples=20)
@given(seed=seeds)
def test_curve_kernel_matches_lstsq(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(3, 12))
    x = np.cumsum(rng.uniform(0.2, 2.0, m)) + 10
    x = np.exp(x)
    losses = rng.lognormal(0, 1, (50, m))
    losses[:5] = 0.0                                  # flat rows: both fits exact
    floor = float(rng.uniform(0.01, 1))
    got = fit_curves(losses, design(x), floor)
    ref = naive_tokens.fit_curves(losses, x, floor)
    np.testing.assert_allclose(got.delta_bic, ref["delta_bic"], atol=1e-8)
    np.testing.assert_allclose(got.drop[5:], ref["drop"][5:], atol=1e-10)
    np.testing.assert_allclose(got.slope, ref["slope"], atol=1e-10)
    assert np.array_equal(got.gap[5:], ref["gap"][5:])


@settings(max_examples=20)
@given(seed=seeds)
def test_group_kernel_matches_token_by_token_sums(seed):
    rng = np.random.default_rng(seed)
    n, m, G = 300, int(rng.integers(3, 9)), 16
    losses = rng.lognormal(-1, 2, (n, m))
    losses[:3, 0] = 0.0
    classes = rng.integers(0, 3, n).astype(np.int8)
    gap = rng.integers(0, m - 1, n).astype(np.int16)
    group = rng.integers(0, G, n)
    edges = np.geomspace(1e-3, losses.max() * 0.5, HIST_BINS + 1)
    groups, hist = np.zeros((G, 3 * m + 1)), np.zeros((m, HIST_BINS + 2), np.int64)
    col, prio = _add_rows(losses, 0.3, classes, gap, group, edges, np.ones(m), groups, hist)
    assert np.all((prio >= 0) & (prio < 1))
    np.testing.assert_allclose(groups, naive_tokens.group_totals(losses, 0.3, classes, gap,
                                                                group, G), rtol=1e-12)
    inner = (losses > edges[0] * 1.0001) & (losses < edges[-1] * 0.9999)
    exact = naive_tokens.histogram(np.where(inner, losses, np.nan), edges)  # away from edges
    assert np.array_equal(hist.sum(1), np.full(m, n))
    assert np.array_equal(hist[:, 1:-1].sum(1), exact[:, 1:-1].sum(1))
    assert np.array_equal(col, naive_tokens.emergence_column(losses, 0.3))


# ------------------------------------------------------------------ false alarms
def test_false_alarm_rate_is_what_calibration_states():
    """On fresh power-law curves (random slopes and noise), the share called sharp is the
    calibrated rate, within 4 binomial standard errors."""
    x = np.geomspace(1.9e7, 6.4e9, 7)
    d = design(x)
    rng = np.random.default_rng(11)
    slopes, noise = -rng.uniform(0, 0.6, 4000), rng.uniform(0.05, 0.5, 4000)
    cal = calibrate(d, slopes, noise, target=0.01, n_null=40_000, seed=1)
    fresh = np.exp(null_curves(d, -rng.uniform(0, 0.6, 40_000), rng.uniform(0.05, 0.5, 40_000),
                               rng))
    rate = np.mean(classify(fit_curves(fresh, d, 0.0), cal.threshold, 1.0) == SHARP)
    se = np.sqrt(0.01 * 0.99 / 40_000)
    assert abs(rate - cal.false_alarm) < 4 * se + 1e-3, (rate, cal)
    assert cal.false_alarm <= 0.01


# ------------------------------------------------------------------ recovery
@pytest.fixture(scope="module")
def sizes_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "g.npz"
    generate_tokens(TokenConfig(n_tokens=200_000, seed=21)).save(path)
    return path, analyze(path, bootstrap=400, fit_bootstrap=100)


def test_recovers_alpha_from_the_mean_loss(sizes_run):
    _, r = sizes_run
    lo, hi = r.conf_int().loc["alpha_offset"]
    assert lo <= 0.4 <= hi, (lo, r.estimates["alpha_offset"], hi)


def test_recovers_alpha_from_where_tokens_drop(sizes_run):
    """Polygenic curves called sharp (≈3.5% of them, mostly in the early gaps) bias the
    drop exponent low: stated tolerance 0.03 around the bootstrap interval."""
    _, r = sizes_run
    lo, hi = r.conf_int().loc["alpha_drops"]
    assert lo - 0.03 <= 0.4 <= hi + 0.03, (lo, hi)


def test_recovers_alpha_from_drops_without_polygenic_tokens(tmp_path):
    path = tmp_path / "mono.npz"
    generate_tokens(TokenConfig(n_tokens=100_000, monogenic=1.0, seed=22)).save(path)
    r = analyze(path, **FAST)
    lo, hi = r.conf_int().loc["alpha_drops"]
    assert lo <= 0.4 <= hi, (lo, r.estimates["alpha_drops"], hi)


def test_recovers_monogenic_fraction_and_emergence(sizes_run):
    """Stated tolerance 0.05: polygenic curves called sharp (under 5% of them, measured
    from the truth) move the estimate up by about 0.03 on this generator."""
    _, r = sizes_run
    t = r.truth
    lo, hi = r.conf_int().loc["monogenic_fraction"]
    assert lo - 0.05 <= 0.5 <= hi + 0.05, (lo, hi)
    assert t["recall"] > 0.99 and t["gap_accuracy"] > 0.99
    assert t["polygenic_called_sharp"] < 0.05


def test_checkpoints_recover_alpha_and_learning_order(tmp_path):
    path = tmp_path / "steps.npz"
    cfg = TokenConfig(n_tokens=60_000, sizes=None, steps=tuple(np.geomspace(1e3, 1.43e5, 12)),
                      seed=23)
    generate_tokens(cfg).save(path)
    r = analyze(path, **FAST)
    lo, hi = r.conf_int().loc["alpha_offset"]
    assert lo <= 0.4 <= hi, (lo, hi)
    order = r.emergence["order"]
    assert order["spearman"] < -0.8
    assert abs(order["exponent"] - 1.0) < 0.15          # S_k ∝ 1/p_k
    assert sum(r.emergence["counts"]) + r.emergence["never"] == 60_000


# ------------------------------------------------------------------ invariances
@pytest.fixture(scope="module")
def small():
    return generate_tokens(TokenConfig(n_tokens=8_000, n_quanta=100_000, doc_length=64,
                                       seed=31))


@settings(max_examples=4)
@given(seed=seeds)
def test_permuting_tokens_changes_nothing(small, seed):
    perm = np.random.default_rng(seed).permutation(small.losses.shape[0])
    meta = {"document": small.metadata["document"]}
    a = analyze(small.losses, sizes=small.x, metadata=meta, **FAST)
    b = analyze(small.losses[perm], sizes=small.x,
                metadata={"document": meta["document"][perm]}, **FAST)
    for k, v in a.estimates.items():
        assert np.isclose(v, b.estimates[k], rtol=1e-9, equal_nan=True), k
    np.testing.assert_allclose(a.conf_int().to_numpy(), b.conf_int().to_numpy(), rtol=1e-9)
    assert a.classification["counts"] == b.classification["counts"]


@settings(max_examples=4)
@given(seed=seeds)
def test_scaling_losses_leaves_exponents_unchanged(small, seed):
    """Losses in another unit (c·L): the same exponents and classes. c is a power of two so
    that c·L is exact in floating point (else rounding moves borderline tokens)."""
    c = 2.0 ** int(np.random.default_rng(seed).integers(-8, 9))
    a = analyze(small.losses, sizes=small.x, **FAST)
    b = analyze(small.losses * c, sizes=small.x, **FAST)
    for k in ("exponent_power", "exponent_offset", "exponent_drops", "monogenic_fraction"):
        assert np.isclose(a.estimates[k], b.estimates[k], rtol=1e-5), k
    assert a.classification["counts"] == b.classification["counts"]


def test_chunk_size_does_not_matter(small):
    a = analyze(small.losses, sizes=small.x, metadata={"document": small.metadata["document"]},
                **FAST)
    b = analyze(small.losses, sizes=small.x, metadata={"document": small.metadata["document"]},
                chunk_size=777, **FAST)
    for k, v in a.estimates.items():
        assert np.isclose(v, b.estimates[k], rtol=1e-9, equal_nan=True), k


# ------------------------------------------------------------------ readers and output
def test_every_format_gives_the_same_result(small, tmp_path):
    pytest.importorskip("zarr")
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zarr

    np.save(tmp_path / "m.npy", small.losses)
    np.savez(tmp_path / "m.npz", losses=small.losses, sizes=small.x)
    pq.write_table(pa.table({f"N{j}": small.losses[:, j] for j in range(len(small.x))}),
                   tmp_path / "m.parquet", row_group_size=1000)
    root = zarr.open_group(str(tmp_path / "m.zarr"), mode="w")
    root.create_array("losses", data=small.losses, chunks=(1000, len(small.x)))
    root.create_array("sizes", data=small.x)
    results = [analyze(tmp_path / f"m.{ext}", sizes=None if ext in ("npz", "zarr") else small.x,
                       **FAST) for ext in ("npy", "npz", "parquet", "zarr")]
    for r in results[1:]:
        for k, v in results[0].estimates.items():
            assert np.isclose(v, r.estimates[k], rtol=1e-9, equal_nan=True), k


def test_json_is_strict_and_keeps_its_keys(sizes_run):
    _, r = sizes_run
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert {"axis", "x", "n_tokens", "mean_loss", "mean_loss_ci", "estimates",
            "classification", "drops", "distribution", "emergence", "examples", "heatmap",
            "truth", "warnings", "config"} <= set(d)
    assert set(d["estimates"]["alpha_offset"]) == {"value", "ci", "ci_columns", "what",
                                                   "n_failed"}
    assert d["n_bootstrap"] + d["n_failed_bootstrap"] == 400
    assert d["truth"]["agreement"]["alpha_offset"]["truth"] == 0.4


def test_plots_draw_every_panel(sizes_run):
    import matplotlib.pyplot as plt

    from fit.tokens import plots

    _, r = sizes_run
    assert r.plot() is not None
    for f in (plots.plot_distribution, plots.plot_fraction_below, plots.plot_drops,
              plots.plot_examples, plots.plot_heatmap):
        assert f(r).has_data() or f is plots.plot_heatmap
    plt.close("all")
    plt.close(plots.plot_overview(r))


def test_plots_from_the_saved_json_draw_what_the_live_result_draws(sizes_run):
    """A ``--json`` file, read back, draws the same lines as the result it came from; the
    mean-loss law drawn from the saved parameters is ``fit.FitResult.predict``'s."""
    import matplotlib.pyplot as plt

    from fit.tokens import plots

    _, r = sizes_run
    saved = json.loads(json.dumps(r.to_dict()))
    grid = np.geomspace(r.x[0], r.x[-1], 50)
    for form, res in r.fits.items():
        np.testing.assert_allclose(plots.fitted_law(form, saved["mean_loss_fits"][form]["params"],
                                                    grid), res.predict(grid), rtol=1e-12)
    for f in (plots.plot_mean_loss, plots.plot_distribution, plots.plot_fraction_below,
              plots.plot_drops, plots.plot_examples):
        live, again = f(r), f(saved)
        assert len(live.lines) == len(again.lines) > 0, f.__name__
        for a, b in zip(live.lines, again.lines):
            np.testing.assert_allclose(a.get_xydata(), b.get_xydata(), rtol=1e-12)
        plt.close("all")


def test_fit_interval_reads_both_conf_int_protocols():
    import pandas as pd

    class Old:
        def conf_int(self, level=None):
            return {"alpha": (0.1, 0.3)}

    class New:
        def conf_int(self, alpha=0.05):
            return pd.DataFrame({"lower": [0.1], "upper": [0.3]}, index=["alpha"])

    assert fit_interval(Old(), "alpha", 0.95) == fit_interval(New(), "alpha", 0.95) == (0.1, 0.3)


def test_resamples_that_draw_no_document_are_dropped_and_counted():
    """Two documents: a Poisson(1) resample weights both 0 with probability e^-2 (13.5 %)
    and then holds no token (its mean is 0/0). Such draws are dropped and counted (within
    4 binomial standard errors of the exact rate) and warned about (over 5 %); no NaN and
    no RuntimeWarning reach the intervals."""
    toy = generate_tokens(TokenConfig(n_tokens=1024, doc_length=512, seed=1))
    assert np.unique(toy.metadata["document"]).size == 2
    B, p = 2000, np.exp(-2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = analyze(toy.losses, sizes=toy.x, metadata={"document": toy.metadata["document"]},
                    bootstrap=B, fit_bootstrap=50, n_calibration=5_000)
    assert abs(r.n_failed_bootstrap - B * p) < 4 * np.sqrt(B * p * (1 - p)), r.n_failed_bootstrap
    assert len(r.mean_loss_boot) == B - r.n_failed_bootstrap
    assert np.isfinite(r.mean_loss_boot).all() and np.isfinite(r.conf_int().to_numpy()).all()
    assert any(w.startswith(f"{r.n_failed_bootstrap} of {B} bootstrap resamples drew none")
               for w in r.warnings), r.warnings
    d = r.to_dict()
    assert (d["n_failed_bootstrap"], d["n_bootstrap"]) == (r.n_failed_bootstrap,
                                                           B - r.n_failed_bootstrap)


def test_one_document_is_refused_for_a_document_bootstrap(small):
    """Every resample of a single document is the data scaled: intervals of width 0."""
    with pytest.raises(InputError, match="needs at least 2"):
        analyze(small.losses[:500], sizes=small.x, metadata={"document": np.zeros(500, int)},
                **FAST)
    r = analyze(small.losses[:500], sizes=small.x, metadata={"document": np.zeros(500, int)},
                unit="token", **FAST)
    assert r.n_failed_bootstrap == 0 and r.unit == "token"


def test_bad_options_are_refused(small):
    for kw in (dict(bootstrap=1), dict(unit="document"), dict(threshold=-1.0),
               dict(groups=1000), dict(level=1.5)):
        with pytest.raises(InputError):
            analyze(small.losses, sizes=small.x, **kw)
