"""``export_run`` / ``quanta parity export``: networks chosen by width, float16 checkpoints
that load and analyse like the float32 originals (within stated tolerances), the exact
float32 export, and the checks that keep an export honest."""
import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from empirical.parity import (ModelConfig, RunConfig, TaskConfig, TrainConfig, analysis,
                              export_run, is_complete, load_run, train)
from empirical.parity.run import select_networks
from quanta import cli

#: float16 keeps 11 significant bits: a weight moves by at most half an ulp, 2^-11 relative
#: (2^-25 absolute below the normal range)
HALF_REL, HALF_ABS = 2.0 ** -11, 2.0 ** -25
#: per-subtask test loss of a float16 network against its float32 original (nats): measured
#: up to ~2e-4 on this run; the bound leaves a factor 5
LOSS_TOL = 1e-3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run that learns (6 subtasks, k = 2): 3 widths, a few checkpoints."""
    cfg = RunConfig(TaskConfig(n_tasks=6, n_bits=8, k=2, alpha=0.4),
                    ModelConfig(widths=[8, 32, 64]),
                    TrainConfig(steps=400, batch=500, lr=3e-3, eval_points=6, checkpoints=4,
                                test_per_task=200, device="cpu"))
    return train(cfg, tmp_path_factory.mktemp("run") / "r")


def _test_losses(run, mlp):
    sub, bits = run.task.test_set(run.config.train.test_per_task, run.config.train.test_seed)
    with torch.no_grad():
        loss = F.cross_entropy(mlp(run.task.encode(sub, bits)), run.task.label(sub, bits),
                               reduction="none")
    return loss.view(run.task.n_tasks, -1).mean(1).numpy()


def test_select_networks():
    infos = [dict(index=i, width=w) for i, w in enumerate([8, 32, 64, 8, 32, 64])]  # 2 seeds
    assert select_networks(infos) == list(range(6))
    assert select_networks(infos, "widest:2") == [1, 2, 4, 5]
    assert select_networks(infos, "narrowest:1") == [0, 3]
    assert select_networks(infos, "64,8") == [0, 2, 3, 5]
    assert select_networks(infos, [32]) == [1, 4]
    for bad, match in (("widest:0", "positive count"), ("widest", "positive count"),
                       ("16", r"widths \[16\] are not in the run"), ("big", "expected")):
        with pytest.raises(ValueError, match=match):
            select_networks(infos, bad)


def test_float16_export_loads_and_analyses_like_the_original(trained, tmp_path):
    src = load_run(trained)
    half = load_run(export_run(trained, tmp_path / "h", checkpoint_steps="all",
                               networks="widest:2"))
    full = load_run(export_run(trained, tmp_path / "f", checkpoint_steps="all",
                               networks="widest:2", half=False))
    assert half.checkpoint_steps() == src.checkpoint_steps()
    ck = half.checkpoint()
    assert ck["dtype"] == "float16" and all(v.dtype == torch.float16
                                            for v in ck["model"].values())
    assert "optimizer" not in ck and [n["width"] for n in ck["networks"]] == [32, 64]
    weight_bytes = lambda run: sum(v.numel() * v.element_size()
                                   for v in run.checkpoint()["model"].values())
    assert weight_bytes(half) == weight_bytes(full) // 2
    for step in src.checkpoint_steps():
        nets = half.networks(step)
        assert [info["width"] for info, _ in nets] == [32, 64]
        for info, mlp in nets:
            _, orig = src.network(info["index"], step)
            for p, q in zip(mlp.parameters(), orig.parameters()):
                assert p.dtype == torch.float32
                assert torch.all((p - q).abs() <= HALF_REL * q.abs() + HALF_ABS)
            diff = np.abs(_test_losses(half, mlp) - _test_losses(src, orig))
            assert diff.max() < LOSS_TOL, f"step {step} width {info['width']}: {diff.max()}"
    with pytest.raises(ValueError, match="network 0 is not in the checkpoint"):
        half.network(0)
    # the metrics keep every network; per-subtask losses at ~3 significant digits, and the
    # analysis reads the same exponents (mean losses are kept exactly)
    assert half.metrics["test_loss"].shape == src.metrics["test_loss"].shape
    np.testing.assert_allclose(half.metrics["test_loss"], src.metrics["test_loss"],
                               rtol=2 ** -10, atol=2 ** -24)
    a = analysis.analyze([src], method="both").params
    b = analysis.analyze([half], method="both").params
    assert a.keys() == {k.replace("/h/", "/r/") for k in b} or len(a) == len(b)
    for (ka, va), (kb, vb) in zip(sorted(a.items()), sorted(b.items())):
        assert vb == pytest.approx(va, abs=1e-3), (ka, kb)


def test_float16_export_gives_the_same_qdg_clusters(trained, tmp_path):
    """QDG on the float16 widest network: the same kept samples; up to K = the number of
    subtasks present, the same clusters and scores (ARI between the two labelings ≥ 0.99;
    measured 1.0). Beyond it the Laplacian's extra eigenvectors are not determined by the
    data, so neither the labelings nor their scores are compared there (with the batched
    sampler's network, K = 8 gave ARI 0.25 against 0.34 from one float32 rounding); where
    the labelings agree to ARI ≥ 0.99 the scores against the subtasks move by up to 0.012
    (measured), 0.03 allowed."""
    from sklearn.metrics import adjusted_rand_score

    from empirical.qdg.parity import parity_qdg
    half = export_run(trained, tmp_path / "h", checkpoint_steps="last", networks="widest:1")
    opts = dict(n_samples=400, bootstrap=0, calibration=None, return_labels=True)
    ra, la = parity_qdg(trained, **opts)
    rb, lb = parity_qdg(half, **opts)
    a, b = ra["checkpoints"][-1], rb["checkpoints"][-1]
    assert a["n_kept"] == b["n_kept"] and a["ks"] == b["ks"]
    determined = [k for k in a["ks"] if k <= a["n_subtasks_present"]]
    assert determined, "no K up to the subtasks present: the test compares nothing"
    for k in determined:
        key = f"step{a['step']}_k{k}"
        assert adjusted_rand_score(la[key], lb[key]) >= 0.99
        assert b["ari_by_k"][k] == pytest.approx(a["ari_by_k"][k], abs=0.03)
        assert b["nmi_by_k"][k] == pytest.approx(a["nmi_by_k"][k], abs=0.03)


def test_full_precision_export_is_exact_and_cannot_resume(trained, tmp_path):
    src = load_run(trained)
    steps = src.checkpoint_steps()
    dest = load_run(export_run(trained, tmp_path / "e", checkpoint_steps=steps[-2:],
                               half=False))
    assert dest.checkpoint_steps() == steps[-2:]
    np.testing.assert_array_equal(dest.metrics["test_loss"], src.metrics["test_loss"])
    np.testing.assert_array_equal(dest.metrics["subsets"], src.task.subsets)
    for (ia, a), (ib, b) in zip(dest.networks(), src.networks()):
        assert ia == ib and all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="resume"):
        train(dest.config, tmp_path / "e", resume=True)


def test_smaller_exports_for_sweeps(trained, tmp_path):
    src = load_run(trained)
    small = load_run(export_run(trained, tmp_path / "s", max_evals=3, accuracy=False))
    keep = small.metrics["eval_index"]
    assert keep[0] == 0 and keep[-1] == len(src.metrics["steps"]) - 1 and len(keep) == 3
    np.testing.assert_array_equal(small.metrics["steps"], src.metrics["steps"][keep])
    np.testing.assert_array_equal(small.metrics["mean_test_loss"],
                                  src.metrics["mean_test_loss"][:, keep])
    assert "test_acc" not in small.metrics and small.metrics["test_loss"].shape[1] == 3
    assert is_complete(tmp_path / "s") and analysis.analyze([small])["runs"][0]["complete"]
    with pytest.raises(ValueError, match="max_evals"):
        export_run(trained, tmp_path / "t", max_evals=1)
    assert not (tmp_path / "t").exists()      # refused before anything was written


def test_networks_refused_when_the_task_code_changed(trained, tmp_path):
    """An export records the task's bit subsets; a task rebuilt differently (the task code
    changed) must not be used to evaluate its networks."""
    dest = export_run(trained, tmp_path / "e", checkpoint_steps="last")
    with np.load(dest / "metrics.npz") as z:
        m = {k: z[k] for k in z.files}
    m["subsets"] = m["subsets"][::-1]
    np.savez(dest / "metrics.npz", **m)
    run = load_run(dest)
    assert analysis.analyze([run])["runs"][0]["complete"]     # the metrics still analyse
    with pytest.raises(ValueError, match="other bit subsets"):
        run.networks()


def test_cli_export_networks_and_checkpoints(trained, tmp_path, capsys):
    dest = tmp_path / "c"
    assert cli.main(["parity", "export", str(trained), str(dest), "--checkpoints", "all",
                     "--networks", "widest:1", "--no-accuracy"]) == 0
    assert "exported" in capsys.readouterr().out
    run = load_run(dest)
    assert run.checkpoint_steps() == load_run(trained).checkpoint_steps()
    assert [i["width"] for i, _ in run.networks()] == [64]
    assert json.loads((dest / "config.json").read_text())["model"]["widths"] == [8, 32, 64]
    for args, match in ((["--networks", "widest:x"], "positive count"),
                        (["--checkpoints", "first"], "--checkpoints")):
        assert cli.main(["parity", "export", str(trained), str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1
