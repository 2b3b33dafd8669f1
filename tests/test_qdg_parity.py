"""QDG on a tiny sparse-parity run trained on the fly, and the ``quanta qdg`` command."""
import json

import numpy as np
import pytest

from empirical.qdg.parity import matched_subtasks, parity_qdg
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
