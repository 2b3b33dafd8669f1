"""QDG on a tiny sparse-parity run trained on the fly, and the ``quanta qdg`` command."""
import json
from pathlib import Path

import numpy as np
import pytest

import torch

from empirical.qdg.gradients import per_sample_gradients_loop
from empirical.qdg.parity import (alpha_kept, margin_affinity, matched_subtasks, parity_qdg,
                                  subtask_contrast)
from empirical.qdg.similarity import angular_affinity
from quanta.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig, train
    out = tmp_path_factory.mktemp("parity") / "run"
    cfg = RunConfig(TaskConfig(n_tasks=6, n_bits=8, k=2, alpha=0.4), ModelConfig(widths=[8, 64]),
                    TrainConfig(steps=400, batch=500, lr=3e-3, eval_points=3, checkpoints=3,
                                test_per_task=20, device="cpu"))
    return train(cfg, out)


def test_parity_qdg_over_checkpoints(tiny_run):
    res = parity_qdg(tiny_run, checkpoints="all", n_samples=400, loss_threshold=None,
                     bootstrap=10)
    assert res["network"] == 1 and res["width"] == 64 and res["alpha_true"] == 0.4
    rows = res["checkpoints"]
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows) and len(rows) >= 2
    for r in rows:
        assert -1 <= r["ari"] <= 1 and 0 <= r["nmi"] <= 1
        assert set(r["estimators"]) == {"envelope", "ols", "mle", "zipf"}
        assert r["n_kept"] == 400
        assert set(r["ari_margin_by_k"]) == set(r["ari_by_k"])
        c = r["margin_contrast"]
        assert -1 <= c["cos_other_subtasks"] <= 1 and -1 <= c["cos_same_subtask"] <= 1
    # trained: the clusters follow (subtask, label) pairs far better than at initialisation
    k2 = 2 * rows[-1]["n_subtasks_present"]
    assert rows[-1]["ari_subtask_label_by_k"][k2] > rows[0]["ari_subtask_label_by_k"][k2] + 0.1


def test_parity_qdg_threshold_skips_unlearned_checkpoints(tiny_run):
    res = parity_qdg(tiny_run, checkpoints="all", n_samples=300, loss_threshold=1e-3,
                     bootstrap=0)
    first = res["checkpoints"][0]
    assert first["n_kept"] == 0 and first["ari"] is None and "skipped" in first


def test_parity_qdg_bad_checkpoint(tiny_run):
    with pytest.raises(ValueError, match="not saved"):
        parity_qdg(tiny_run, checkpoints="7", n_samples=50)


def test_margin_affinity_is_the_affinity_of_margin_gradients():
    # the two-class loss gradient is ±(1 − p_y) times the gradient of z0 − z1: removing the
    # label's sign from the loss-gradient affinity must give the margin gradients' affinity,
    # computed here independently by one backward pass per sample
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 2))
    x = torch.randn(40, 6)
    y = torch.randint(0, 2, (40,))
    loss_grads = per_sample_gradients_loop(mlp, x, y)
    margin_grads = per_sample_gradients_loop(mlp, x, y,
                                             loss_fn=lambda out, t: out[0, 0] - out[0, 1])
    expected = angular_affinity(margin_grads)
    got = margin_affinity(angular_affinity(loss_grads), y.numpy())
    assert np.abs(got - expected).max() < 2e-3
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 1)
    # without the correction, samples with different labels sit on opposite sides
    diff = y.numpy()[:, None] != y.numpy()[None, :]
    assert np.abs(angular_affinity(loss_grads)[diff] - (1 - expected[diff])).max() < 2e-3


def test_margin_affinity_bad_input():
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        margin_affinity(np.ones((2, 2)), np.array([0, 2]))
    with pytest.raises(ValueError, match="affinity must be 3 x 3"):
        margin_affinity(np.ones((2, 2)), np.array([0, 1, 1]))


def test_subtask_contrast_planted():
    # cosines 0.8 within subtasks and 0.2 across, written as QDG affinities 1 − arccos/π
    sub = np.array([0, 0, 0, 1, 1])
    cos = np.where(sub[:, None] == sub[None, :], 0.8, 0.2)
    np.fill_diagonal(cos, 1.0)
    c = subtask_contrast(1 - np.arccos(cos) / np.pi, sub)
    assert c["cos_same_subtask"] == pytest.approx(0.8)
    assert c["cos_other_subtasks"] == pytest.approx(0.2)


def test_matched_subtasks():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    subtasks = np.array([5, 5, 5, 6, 6, 6, 7, 7])
    found = matched_subtasks(labels, subtasks)
    assert set(found) == {5, 6, 7} and found[5] == 1.0
    assert matched_subtasks(labels, subtasks, threshold=0.9) == {5: 1.0}


def test_cli_toy_json(tmp_path, capsys):
    out = tmp_path / "toy.json"
    code = main(["qdg", "toy", "--alpha", "0.5", "--n-clusters", "10", "--samples", "500",
                 "--dim", "32", "--sigma", "0.05", "--ks", "5", "10", "--bootstrap", "20",
                 "--n-init", "2", "--json", str(out), "--plot", str(tmp_path / "toy.png")])
    assert code == 0
    res = json.loads(out.read_text())
    assert res["alpha_true"] == 0.5
    for e in res["estimators"].values():
        assert isinstance(e["alpha_hat"], float) and len(e["ci"]) == 2
    assert (tmp_path / "toy.png").stat().st_size > 0
    assert "alpha_hat" in capsys.readouterr().out


def test_cli_parity_json(tiny_run, tmp_path):
    out = tmp_path / "p.json"
    code = main(["qdg", "parity", str(tiny_run), "--checkpoints", "all", "--samples", "300",
                 "--loss-threshold", "0.5", "--json", str(out), "--plot-dir", str(tmp_path)])
    assert code == 0
    res = json.loads(out.read_text())
    assert all("ari" in r and "nmi" in r for r in res["checkpoints"])


def test_cli_bad_input_is_one_line(capsys):
    code = main(["qdg", "toy", "--alpha", "0.5", "--n-clusters", "5", "--samples", "20",
                 "--ks", "50"])
    assert code == 2
    err = capsys.readouterr().err
    assert "n_clusters=50 is not smaller than the number of samples" in err
    assert len(err.strip().splitlines()) == 1


def test_alpha_kept_needs_three_subtasks_and_recovers_zipf():
    assert alpha_kept(np.array([0] * 50 + [1] * 3)) is None   # two counts: no power law
    assert alpha_kept(np.zeros(40, int)) is None
    rng = np.random.default_rng(0)
    k = np.arange(1, 201)
    p = k ** -1.4 / np.sum(k ** -1.4)                           # α = 0.4
    labels = rng.choice(200, size=200_000, p=p)
    assert abs(alpha_kept(labels) - 0.4) < 0.05


def test_cli_parity_plots_when_the_last_checkpoint_is_skipped(tmp_path, capsys):
    """A loss threshold that the final checkpoint misses: the text report goes to stderr
    with --json -, and the rank-frequency plot uses the last clustered checkpoint."""
    from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig, train
    run = train(RunConfig(TaskConfig(n_tasks=6, n_bits=10, k=3, alpha=0.4),
                          ModelConfig(widths=[4, 16]),
                          TrainConfig(steps=60, batch=200, eval_points=8, checkpoints=3,
                                      test_per_task=20, device="cpu")), tmp_path / "r")
    code = main(["qdg", "parity", str(run), "--checkpoints", "all", "--samples", "300",
                 "--loss-threshold", "0.05", "--plot-dir", str(tmp_path / "p"), "--json", "-"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert "skipped" in res["checkpoints"][-1]
    assert (tmp_path / "p" / "qdg_parity_checkpoints.png").exists()
    rank_plot = (tmp_path / "p" / "qdg_parity_rank_frequency.png").exists()
    assert rank_plot == any("sizes" in r for r in res["checkpoints"])


def test_learned_subtasks_are_what_the_metrics_say_and_are_sampled_by_frequency(tiny_run):
    from empirical.parity import load_run
    from empirical.qdg.parity import _draw_samples, learned_subtasks
    run = load_run(tiny_run)
    res, arrays = parity_qdg(tiny_run, n_samples=300, subtasks="learned", bootstrap=0,
                             calibration=None, return_labels=True)
    loss = run.metrics["test_loss"][res["network"], -1]
    assert res["sampled_subtasks"] == np.flatnonzero(loss < 0.1).tolist()
    step = res["checkpoints"][-1]["step"]
    assert set(arrays[f"step{step}_subtask"]) <= set(res["sampled_subtasks"])
    # the draw follows the task's frequencies renormalised over the chosen subtasks:
    # counts within 4 standard errors of n·p_i/Σp
    chosen = np.array([0, 2, 5])
    gen = torch.Generator().manual_seed(1)
    x, y, sub = _draw_samples(run.task, 40_000, gen, chosen)
    p = run.task.frequencies[chosen] / run.task.frequencies[chosen].sum()
    counts = np.array([(sub.numpy() == c).sum() for c in chosen])
    assert counts.sum() == 40_000
    assert np.all(np.abs(counts - 40_000 * p) < 4 * np.sqrt(40_000 * p * (1 - p)))
    assert torch.equal(y, run.task.label(sub, x[:, run.task.n_tasks:].to(torch.uint8)))
    with pytest.raises(ValueError, match="subtasks must be"):
        parity_qdg(tiny_run, subtasks="some")
    assert learned_subtasks(run, res["network"], 0, 1e-9).size == 0


def test_calibrated_alpha_maps_through_the_linear_calibration():
    from empirical.qdg.clustering import cluster_sizes
    from empirical.qdg.estimators import estimate_alpha
    from empirical.qdg.parity import calibrated_alpha
    rng = np.random.default_rng(0)
    k = np.arange(1, 41)
    labels = {K: rng.choice(K, size=4000, p=k[:K] ** -1.5 / np.sum(k[:K] ** -1.5))
              for K in (20, 40)}
    sizes = {K: cluster_sizes(v) for K, v in labels.items()}
    cal = dict(estimator="ols", c0=-0.1, c1=0.8, residual_sd=0.3, toy_k=10, source="x")
    out = calibrated_alpha(sizes, labels, cal, bootstrap=50, seed=1, alpha_true=0.5)
    raw = estimate_alpha(sizes, "ols", k=20, bootstrap=50, seed=1, labels_by_k=labels)
    assert out["k"] == 20 and out["alpha_raw"] == pytest.approx(raw.alpha_hat)
    assert out["alpha_calibrated"] == pytest.approx((raw.alpha_hat + 0.1) / 0.8)
    assert out["ci_calibrated"] == pytest.approx(sorted((v + 0.1) / 0.8 for v in raw.conf_int(alpha=1 - raw.level).loc["alpha_hat"]))
    same = calibrated_alpha(sizes, labels, dict(cal, c0=0.0, c1=1.0), bootstrap=50, seed=1)
    assert same["alpha_calibrated"] == pytest.approx(same["alpha_raw"])


def test_the_committed_calibration_loads(tmp_path):
    from empirical.qdg.parity import load_calibration
    cal = load_calibration()
    if cal is None:
        pytest.skip("no committed bias study")
    report = json.loads((Path(__file__).resolve().parents[1] / "results" / "qdg" / "bias"
                         / "report.json").read_text())["recommended"]
    assert (cal["estimator"], cal["toy_k"]) == (report["estimator"], report["k"])
    assert cal["c1"] == report["calibration"]["c1"]
    with pytest.raises(ValueError, match="no bias report"):
        load_calibration(tmp_path / "missing.json")


def test_cli_parity_networks_writes_labels_that_reproduce_the_scores(tiny_run, tmp_path):
    from sklearn.metrics import adjusted_rand_score
    out, npz = tmp_path / "n.json", tmp_path / "labels.npz"
    assert main(["qdg", "parity", str(tiny_run), "--networks", "widest:2", "--samples", "300",
                 "--loss-threshold", "none", "--bootstrap", "0", "--calibration", "none",
                 "--json", str(out), "--npz", str(npz), "--plot-dir", str(tmp_path / "p")]) == 0
    res = json.loads(out.read_text())
    assert [r["width"] for r in res["networks"]] == [8, 64]
    with np.load(npz) as z:
        for r in res["networks"]:
            c = r["checkpoints"][-1]
            true = z[f"net{r['network']}_step{c['step']}_subtask"]
            for k in c["ks"]:
                labels = z[f"net{r['network']}_step{c['step']}_k{k}"]
                assert adjusted_rand_score(true, labels) == pytest.approx(c["ari_by_k"][str(k)])
            assert "calibrated" not in c
    assert (tmp_path / "p" / "qdg_parity_networks.png").exists()
