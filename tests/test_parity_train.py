"""The fused trainer: fused equals separate training, resume equals an uninterrupted run,
checkpoints and run directories, and a tiny sweep that learns."""
import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from empirical.parity import (ModelConfig, RunConfig, TaskConfig, TrainConfig, is_complete,
                              load_run, log_steps, network_table, train)
from empirical.parity.sweeps import split_alphas
from empirical.parity.task import SweepSampler
from empirical.parity.train import DataStream, build_model, make_task
from parity_helpers import one_torch_thread  # noqa: F401 (autouse fixture)


def tiny_config(**train_kw):
    tk = dict(steps=12, batch=64, seeds=[0, 1], eval_points=5, checkpoints=3, test_per_task=8,
              eval_chunk=40, device="cpu")
    tk.update(train_kw)
    return RunConfig(TaskConfig(n_tasks=6, n_bits=8, k=3, alpha=0.4),
                     ModelConfig(widths=[3, 7, 12]),
                     TrainConfig(**tk))


def train_alone(config, info, steps, device="cpu"):
    """One network trained by itself with a plain nn.Module and torch.optim.Adam, fed by its
    own stream: a one-group SweepSampler (counter sampler) or a fresh DataStream with the
    same seed (the streams sampler of older runs), so the same batches as in the sweep."""
    task = make_task(config, alpha=info["alpha"])
    mlp = build_model(config).network(info["index"]).to(device)
    opt = torch.optim.Adam(mlp.parameters(), lr=config.train.lr)
    if config.train.sampler == "counter":
        sampler = SweepSampler(task, [info], config.train.batch, device)

        def batch(step):
            sub, bits, y = sampler.draw(step)
            return task.encode(sub[0], bits[0]), y[0]
    else:
        stream = DataStream(task, info["seed"], info["D"], config.train.batch, device)
        batch = lambda step: stream.next()      # noqa: E731
    for step in range(1, steps + 1):
        x, y = batch(step)
        opt.zero_grad()
        F.cross_entropy(mlp(x), y).backward()
        opt.step()
    return mlp.cpu()


@pytest.mark.parametrize("depth,D,sampler,alphas", [
    (1, None, "counter", None), (2, None, "counter", None), (1, [50, 200], "counter", None),
    (3, [100], "counter", None), (1, None, "counter", [0.2, 0.9]),
    (1, [30, 70], "counter", [0.9, 0.2]), (1, None, "streams", None),
    (2, [50, 200], "streams", None)])
def test_fused_training_equals_separate_training(tmp_path, depth, D, sampler, alphas):
    """Every network of a fused sweep (several streams drawn in one batched operation, and
    several α as groups) equals the same network trained alone on its own stream (float32;
    the sums run in another order, hence the tolerance)."""
    config = tiny_config(D=D, steps=15, sampler=sampler)
    config.model.depth = depth
    if alphas:
        config.task.alpha, config.task.alphas = alphas[0], alphas
    nets = network_table(config)
    run_dir = train(config, tmp_path / "run")
    if alphas:
        fused = [net for d in split_alphas(run_dir, tmp_path / "split")
                 for net in load_run(d).networks()]
        assert [i["alpha"] for i, _ in fused] == [n["alpha"] for n in nets]
        fused = [(dict(info, index=n["index"]), mlp) for (info, mlp), n in zip(fused, nets)]
    else:
        fused = load_run(run_dir).networks()
    assert len(fused) == len(nets) == 3 * 2 * (len(D) if D else 1) * len(alphas or [1])
    for info, mlp in fused:
        alone = train_alone(config, info, 15)
        for p, q in zip(mlp.parameters(), alone.parameters()):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4,
                                       msg=f"network {info} differs from its separate training")
    # and the fused networks did move away from their initialisation
    init = build_model(config).network(2)
    assert not torch.allclose(fused[2][1].net[-1].weight, init.net[-1].weight)


class Killed(Exception):
    pass


def _kill_at(step):
    def cb(s, losses):
        if s == step:
            raise Killed
    return cb


def assert_same_run(resumed, full):
    """An interrupted-and-resumed run equals the uninterrupted one: every metric but wall
    time, the checkpoint steps, every network's parameters bit for bit, and no resume file
    left behind."""
    for key, value in full.metrics.items():
        if key != "wall_time":
            np.testing.assert_array_equal(resumed.metrics[key], value, err_msg=key)
    assert resumed.checkpoint_steps() == full.checkpoint_steps()
    for (_, a), (_, b) in zip(resumed.networks(), full.networks()):
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.equal(p, q)
    assert not (resumed.path / "checkpoints" / "resume.pt").exists()


@pytest.mark.parametrize("D,save_every", [(None, None), ([30, 100], None), ([30], 0.0)])
def test_resume_after_kill_equals_uninterrupted(tmp_path, D, save_every):
    config = tiny_config(D=D, steps=40, eval_points=12, checkpoints=4)
    full = load_run(train(config, tmp_path / "full"))
    kill_step = 29 if save_every is None else 33   # between checkpoints (1, 3, 12, 40) or not
    with pytest.raises(Killed):
        train(config, tmp_path / "cut", callback=_kill_at(kill_step), save_every_s=save_every)
    part = load_run(tmp_path / "cut")
    assert part.metrics["n_evals"] < len(full.metrics["steps"])   # the kill lost the end
    with pytest.raises(ValueError, match="resume"):
        train(config, tmp_path / "cut")
    assert_same_run(load_run(train(config, tmp_path / "cut", resume=True)), full)


def test_time_limit_pauses_and_resume_finishes_the_same_run(tmp_path):
    config = tiny_config(D=[30], steps=40, eval_points=12, checkpoints=4)
    full = load_run(train(config, tmp_path / "full"))
    assert is_complete(tmp_path / "full")
    calls = 0
    while True:  # a limit of 0 s pauses after every step: 40 calls
        train(config, tmp_path / "cut", resume=calls > 0, time_limit_s=0.0)
        calls += 1
        if is_complete(tmp_path / "cut"):
            break
        assert (tmp_path / "cut" / "checkpoints" / "resume.pt").exists()
        assert calls < 100
    assert calls == 40
    assert_same_run(load_run(tmp_path / "cut"), full)
    assert not is_complete(tmp_path / "never_run")


def test_resume_refuses_a_different_config(tmp_path):
    train(tiny_config(steps=3), tmp_path / "r")
    with pytest.raises(ValueError, match="config"):
        train(tiny_config(steps=3, lr=2e-3), tmp_path / "r", resume=True)


def test_run_directory_layout_and_contents(tmp_path):
    config = tiny_config(steps=20, D=[40])
    out = train(config, tmp_path / "r")
    files = sorted(p.name for p in out.iterdir())
    assert files == ["checkpoints", "config.json", "metrics.npz"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["device"] == "cpu" and saved["train"]["precision"] == "fp32"
    run = load_run(out)
    steps = log_steps(20, 3)
    assert run.checkpoint_steps() == steps
    assert all(p.name == f"step_{s:08d}.pt" for p, s in
               zip(sorted((out / "checkpoints").iterdir()), steps))
    ck = run.checkpoint(steps[1])
    assert ck["step"] == steps[1] and ck["config"] == saved
    assert {"model", "optimizer", "streams", "metrics"} <= set(ck)
    m = run.metrics
    M, E, T = 6, len(m["steps"]), 6
    assert m["test_loss"].shape == m["test_acc"].shape == (M, E, T)
    assert np.isfinite(m["test_loss"]).all() and int(m["n_evals"]) == E
    np.testing.assert_array_equal(m["widths"], [3, 7, 12, 3, 7, 12])
    np.testing.assert_array_equal(m["D"], [40] * 6)
    np.testing.assert_allclose(m["mean_test_loss"], m["test_loss"] @ run.task.frequencies,
                               rtol=1e-6)
    assert dict(run.task.describe(), alphas=None) == saved["task"]
    # the standalone networks reproduce the fused model's test losses
    info, mlp = run.networks()[4]
    sub, bits = run.task.test_set(config.train.test_per_task, config.train.test_seed)
    x, y = run.task.encode(sub, bits), run.task.label(sub, bits)
    with torch.no_grad():
        loss = F.cross_entropy(mlp(x), y, reduction="none").view(T, -1).mean(1)
    np.testing.assert_allclose(loss.numpy(), m["test_loss"][4, -1], rtol=1e-5, atol=1e-6)
    assert info == dict(index=4, width=7, seed=1, D=40, alpha=0.4,
                        n_params=run.task.n_params(7), step=20)


@pytest.mark.parametrize("sampler", ["counter", "streams"])
def test_new_step_trains_as_train_does(tmp_path, sampler):
    """The benchmarks' fresh model and step (train.new_step) are the trainer's: 12 steps of
    it end on the weights of train's last checkpoint, bit for bit."""
    from empirical.parity.train import new_step

    config = tiny_config(sampler=sampler, D=[40, 300])
    model, step = new_step(config)
    for s in range(1, config.train.steps + 1):
        step(s)
    saved = load_run(train(config, tmp_path / "run")).checkpoint()
    assert saved["step"] == config.train.steps
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name


def test_the_model_and_input_take_no_unused_arguments():
    """build_model reads only the config, and encode's width is always the task's input
    size: parameters that did nothing (build_model's task, encode's width) stay removed."""
    import inspect

    from empirical.parity import SparseParityTask

    assert list(inspect.signature(build_model).parameters) == ["config"]
    assert list(inspect.signature(SparseParityTask.encode).parameters) == [
        "self", "subtask", "bits", "dtype"]


def test_initialisation_is_pytorch_default_and_depends_on_seed_and_width():
    config = tiny_config()
    model = build_model(config)
    w = model.network(2).net[0].weight       # width 12, fan_in 14
    bound = 1 / np.sqrt(14)
    assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound
    again = build_model(config).network(2).net[0].weight
    assert torch.equal(w, again)
    other_seed = model.network(5).net[0].weight  # width 12, seed 1
    assert not torch.equal(w, other_seed)


def test_bad_config_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        train(tiny_config(precision="fp8"), tmp_path / "a")
    with pytest.raises(ValueError, match="D"):
        train(tiny_config(D=[0]), tmp_path / "b")
    # refused before anything is written: repeated seeds would give groups of unequal size
    for kw, name in ((dict(seeds=[0, 0, 1]), "seeds"), (dict(D=[20, 20]), "D")):
        with pytest.raises(ValueError, match=f"{name} must not repeat"):
            train(tiny_config(**kw), tmp_path / name)
        assert not (tmp_path / name).exists()
    # a task with more subtasks than k-subsets, and repeated widths, likewise
    bad_task = RunConfig(TaskConfig(n_tasks=10, n_bits=4, k=3), ModelConfig(widths=[3]),
                         tiny_config().train)
    with pytest.raises(ValueError, match="exceeds the 4 distinct"):
        train(bad_task, tmp_path / "task")
    repeated = RunConfig(TaskConfig(n_tasks=6, n_bits=8), ModelConfig(widths=[3, 7, 3]),
                         tiny_config().train)
    with pytest.raises(ValueError, match="widths must not repeat"):
        train(repeated, tmp_path / "widths")
    assert not (tmp_path / "task").exists() and not (tmp_path / "widths").exists()


def test_resume_takes_tuples_and_ignores_stray_files(tmp_path):
    """A config built with tuples resumes (the saved JSON has lists), and a stray ``.pt``
    file in ``checkpoints/`` is not taken for a checkpoint."""
    config = tiny_config(steps=6, seeds=(0, 1))
    config.model.widths = (3, 7)
    train(config, tmp_path / "r", time_limit_s=0.0)
    torch.save({"unrelated": 1}, tmp_path / "r" / "checkpoints" / "final.pt")
    run = load_run(train(config, tmp_path / "r", resume=True))
    assert is_complete(run.path) and run.config.model.widths == [3, 7]


def test_bf16_option_runs_and_is_recorded(tmp_path):
    run = load_run(train(tiny_config(steps=4, precision="bf16"), tmp_path / "r"))
    assert run.config.train.precision == "bf16"
    assert np.isfinite(run.metrics["test_loss"]).all()


@pytest.mark.slow
def test_tiny_sweep_learns(tmp_path):
    """Wider networks reach lower loss; frequent subtasks are learned first."""
    config = RunConfig(TaskConfig(n_tasks=10, n_bits=16, k=3, alpha=0.4),
                       ModelConfig(widths=[4, 16, 64, 256]),
                       TrainConfig(steps=600, batch=2000, eval_points=15, checkpoints=2,
                                   test_per_task=200, device="cpu"))
    m = load_run(train(config, tmp_path / "r")).metrics
    final = m["mean_test_loss"][:, -1]
    assert np.all(np.diff(final) < 0), f"final loss not decreasing with width: {final}"
    assert final[-1] < 0.5 * np.log(2)
    widest = m["test_loss"][-1, -1]
    rho = __import__("scipy").stats.spearmanr(np.arange(10), widest).statistic
    assert rho > 0.5, f"frequent subtasks not learned first (Spearman {rho:.2f}): {widest}"
    assert widest[:3].mean() < 0.3 < widest[-5:].mean()


@pytest.mark.gpu
@pytest.mark.parametrize("D", [None, [50, 200]])
def test_fused_training_on_cuda_equals_separate(tmp_path, D):
    """On the GPU (fp32, TF32 off), fused training equals each network trained alone on the
    same CUDA batches."""
    config = tiny_config(steps=10, D=D, device="cuda")
    run = load_run(train(config, tmp_path / "g"))
    assert run.config.train.device == "cuda"
    for info, mlp in run.networks():
        alone = train_alone(config, info, 10, device="cuda")
        for p, q in zip(mlp.parameters(), alone.parameters()):
            torch.testing.assert_close(p, q, atol=1e-4, rtol=1e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("precision,compile", [("tf32", False), ("bf16", False), ("bf16", True)])
def test_cuda_precisions_and_compile_run(tmp_path, precision, compile):
    run = load_run(train(tiny_config(steps=20, device="cuda", precision=precision,
                                     compile=compile), tmp_path / "g"))
    assert run.config.train.precision == precision and run.config.train.compile == compile
    assert np.isfinite(run.metrics["test_loss"]).all()

@pytest.mark.slow
def test_sigkilled_process_resumes_to_the_uninterrupted_result(tmp_path):
    """A real kill: SIGKILL the training process once it has written a checkpoint, resume
    with --resume in a new process, compare with an uninterrupted in-process run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["--n-tasks", "6", "--n-bits", "8", "--widths", "3", "7", "--seeds", "0",
            "--steps", "1200", "--batch", "32", "--eval-points", "20", "--checkpoints", "6",
            "--test-per-task", "8", "--device", "cpu", "--threads", "1", "--quiet",
            "--save-every", "0.3"]
    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "quanta", "parity", "train", "--out", str(cut)] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (cut / "checkpoints" / "resume.pt").exists():
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (cut / "metrics.npz").exists() or \
        int(np.load(cut / "metrics.npz")["n_evals"]) < 20
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    from quanta.commands.parity import add_parser, config_from_args
    import argparse
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="c"))
    config = config_from_args(parser.parse_args(["parity", "train", "--out", "x"] + args))
    full = load_run(train(config, tmp_path / "full"))
    resumed = load_run(cut)
    for key, value in full.metrics.items():
        if key != "wall_time":
            np.testing.assert_array_equal(resumed.metrics[key], value, err_msg=key)


def test_finite_D_stream_cycles_through_a_fixed_set_in_fresh_orders():
    """D > 0: each epoch serves exactly the D fixed (input, label) samples once (as a
    multiset: the set may repeat a sample), epochs come in fresh orders, and the set depends
    on seed and D; D = 0 draws fresh samples instead."""
    from collections import Counter
    task = make_task(tiny_config())
    D, batch = 50, 20
    stream = DataStream(task, 0, D, batch, "cpu")
    fixed = Counter(zip(map(tuple, task.encode(stream.sub, stream.bits).tolist()),
                        task.label(stream.sub, stream.bits).tolist()))
    served = []
    for _ in range(-(-5 * D // batch)):             # five epochs (and a bit)
        x, y = stream.next()
        served += list(zip(map(tuple, x.tolist()), y.tolist()))
    epochs = [served[e * D:(e + 1) * D] for e in range(5)]
    for ep in epochs:
        assert Counter(ep) == fixed
    assert len({tuple(ep) for ep in epochs}) == 5, "each epoch needs a fresh order"
    assert not torch.equal(DataStream(task, 1, D, batch, "cpu").bits, stream.bits)
    assert not torch.equal(DataStream(task, 0, D + 1, batch, "cpu").bits[:D], stream.bits)
    online = DataStream(task, 0, 0, batch, "cpu")
    fresh = Counter(zip(map(tuple, torch.cat([online.next()[0] for _ in range(5)]).tolist()),
                        [0] * (5 * batch)))
    assert len(set(r for r, _ in fresh) - set(r for r, _ in fixed)) > 0
