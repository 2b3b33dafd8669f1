"""The step variants (empirical.parity.steps) against the fp32 eager (autograd) step, the
written-out backward against autograd, the CUDA-graph warm-up, and old run folders, which
must load and resume as they were trained."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from empirical.parity import (ModelConfig, RunConfig, TaskConfig, TrainConfig, is_complete,
                              load_run, train)
from empirical.parity.steps import InputLayout, ManualStep, adam_states, adam_update, \
    lookup_logits, loss_and_grads, network_losses, unit_slots, warm_up_and_restore
from empirical.parity.train import build_model, new_step
from strategies import seeds
from parity_helpers import needs_triton, one_torch_thread  # noqa: F401 (autouse fixture)

#: ‖θ_variant − θ_fp32‖ / ‖θ_fp32 − θ_0‖ after 50 steps: float32 variants differ from the
#: eager step only in the order of sums; bf16 products (8-bit mantissa) move each Adam
#: update by up to one learning rate where a gradient is near zero (measured: 0.04)
TOLERANCE = {"fp32": 1e-5, "bf16": 0.1}


def config(step="eager", precision="fp32", device="cpu", options=(), **train_kw):
    tk = dict(steps=50, batch=128, seeds=[0, 1], D=[40, 300], eval_points=3, checkpoints=2,
              test_per_task=8, device=device, step=step, precision=precision,
              step_options=list(options))
    tk.update(train_kw)
    return RunConfig(TaskConfig(n_tasks=8, n_bits=10, k=3, alpha=0.4),
                     ModelConfig(widths=[3, 7, 12]), TrainConfig(**tk))


def params_after(cfg, steps=50):
    model, step = new_step(cfg)
    for s in range(1, steps + 1):
        losses = step(s)
    assert torch.isfinite(losses).all()
    return torch.cat([p.detach().float().reshape(-1).cpu() for p in model.parameters()])


def relative_gap(got, ref, init):
    return float((got - ref).norm() / (ref - init).norm())


ALL_OPTIONS = ("gather_in", "gather_out", "adam")


@pytest.mark.parametrize("step,precision,options", [
    ("manual", "fp32", ()), ("manual", "bf16", ()), ("eager", "bf16", ()),
    ("manual", "fp32", ("gather_in",)), ("manual", "fp32", ("gather_out",)),
    ("manual", "fp32", ("adam",)), ("manual", "fp32", ALL_OPTIONS),
    ("manual", "bf16", ALL_OPTIONS),
    # the Triton kernels (tests/test_parity_kernels.py), in its interpreter without CUDA
    pytest.param("manual", "fp32", ("triton",), marks=needs_triton),
    pytest.param("manual", "bf16", ("adam", "triton"), marks=needs_triton)])
def test_step_variants_equal_the_fp32_eager_step_after_50_steps(step, precision, options):
    ref = params_after(config())
    init = torch.cat([p.detach().reshape(-1) for p in build_model(config()).parameters()])
    gap = relative_gap(params_after(config(step, precision, options=options)), ref, init)
    assert gap <= TOLERANCE[precision], f"{step}+{options}/{precision}: gap {gap:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ALL_OPTIONS])
def test_compiled_step_equals_the_fp32_eager_step(options):
    """The whole step compiled, with the step options too (torch.compile on the CPU: about
    a minute to compile each)."""
    ref = params_after(config())
    init = torch.cat([p.detach().reshape(-1) for p in build_model(config()).parameters()])
    gap = relative_gap(params_after(config("compiled", options=options)), ref, init)
    assert gap <= TOLERANCE["fp32"], f"compiled+{options}: gap {gap:.2e}"


@settings(max_examples=20)
@given(seeds, st.integers(1, 3), st.sampled_from([[1], [2, 5], [4, 1, 3]]))
def test_written_out_gradients_equal_autograd(seed, groups, widths):
    """loss_and_grads against autograd through FusedMLP.forward (float64, random inputs
    and parameters, several groups of networks)."""
    rng = np.random.default_rng(seed)
    from empirical.parity import FusedMLP
    model = FusedMLP(9, widths * groups).double()
    for p in model.parameters():
        torch.nn.init.normal_(p, generator=torch.Generator().manual_seed(int(rng.integers(1e9))))
    B = int(rng.integers(1, 40))
    x = torch.as_tensor(rng.integers(0, 2, (groups, B, 9))).double()
    y = torch.as_tensor(rng.integers(0, 2, (groups, B)))
    losses = network_losses(model(x, groups), y)
    losses.sum().backward()
    got, grads = loss_and_grads(model.w_in, model.b_in, model.w_out, model.b_out,
                                unit_slots(model, groups).double(), x, y)
    torch.testing.assert_close(got, losses.detach())
    for p, g in zip([model.w_in, model.b_in, model.w_out, model.b_out], grads):
        torch.testing.assert_close(g.double(), p.grad, rtol=1e-6, atol=1e-9)


@settings(max_examples=20)
@given(seeds, st.integers(1, 3), st.sampled_from([[1], [2, 5], [4, 1, 3]]),
       st.sampled_from([("gather_in",), ("gather_out",), ("gather_in", "gather_out")]))
def test_written_out_gradients_with_step_options_equal_autograd(seed, groups, widths, options):
    """The control rows looked up (gather_in: the bits-first, transposed layout) and the
    output layer's backward as a per-unit lookup (gather_out) give autograd's losses and
    gradients (float64, one-hot subtasks and random bits, random parameters)."""
    rng = np.random.default_rng(seed)
    from empirical.parity import FusedMLP
    T, n = 5, 4
    model = FusedMLP(T + n, widths * groups).double()
    for p in model.parameters():
        torch.nn.init.normal_(p, generator=torch.Generator().manual_seed(int(rng.integers(1e9))))
    B = int(rng.integers(1, 40))
    sub = torch.as_tensor(rng.integers(0, T, (groups, B)))
    bits = torch.as_tensor(rng.integers(0, 2, (groups, B, n)))
    y = torch.as_tensor(rng.integers(0, 2, (groups, B)))
    x = torch.cat([torch.nn.functional.one_hot(sub, T), bits], -1).double()
    losses = network_losses(model(x, groups), y)
    losses.sum().backward()
    layout = InputLayout(T, n, gather="gather_in" in options)
    got, grads = loss_and_grads(model.w_in, model.b_in, model.w_out, model.b_out,
                                unit_slots(model, groups).double(),
                                layout.encode(sub, bits, torch.float64), y, layout, sub, options)
    torch.testing.assert_close(got, losses.detach())
    for p, g in zip([model.w_in, model.b_in, model.w_out, model.b_out], grads):
        torch.testing.assert_close(g.double(), p.grad, rtol=1e-6, atol=1e-9)


@settings(max_examples=10)
@given(seeds)
def test_adam_in_the_step_is_torch_adam(seed):
    """adam_update on the optimizer's own state tensors gives torch.optim.Adam's parameters
    and state, step after step (float64), and the state dict Adam saves and loads."""
    rng = np.random.default_rng(seed)
    shapes = [(7, 3), (7,), (2, 2)]
    p0 = [torch.as_tensor(rng.normal(size=s)) for s in shapes]
    grads = [[torch.as_tensor(rng.normal(size=s)) * 10.0 ** rng.integers(-6, 1) for s in shapes]
             for _ in range(12)]
    ref = [p.clone().requires_grad_() for p in p0]
    got = [p.clone().requires_grad_() for p in p0]
    ref_opt, got_opt = torch.optim.Adam(ref, lr=1e-3), torch.optim.Adam(got, lr=1e-3)
    states = adam_states(got_opt, got)
    for gs in grads:
        for p, g in zip(ref, gs):
            p.grad = g.clone()
        ref_opt.step()
        with torch.no_grad():
            adam_update(got, gs, states, 1e-3)
    for a, b in zip(ref, got):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    again = torch.optim.Adam([p.clone() for p in p0], lr=1e-3)
    again.load_state_dict(got_opt.state_dict())
    for a, b in zip(ref_opt.state_dict()["state"].values(), again.state_dict()["state"].values()):
        for k in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(a[k], b[k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.bfloat16, 0.05)])
def test_evaluation_with_looked_up_control_rows_equals_the_forward(dtype, tol):
    """lookup_logits (the evaluation of gather_in: a subtask-major block's control rows
    added per subtask) against FusedMLP.forward on the one-hot inputs; bf16 within its
    rounding."""
    from empirical.parity import FusedMLP, SparseParityTask
    task = SparseParityTask(n_tasks=9, n_bits=11, k=3)
    model = FusedMLP(task.input_dim, [3, 10, 5]).double()
    for p in model.parameters():
        torch.nn.init.normal_(p, generator=torch.Generator().manual_seed(3))
    sub, bits = task.test_set(6, seed=1)
    t0, t1 = 2, 7
    sl = slice(t0 * 6, t1 * 6)
    want = model(task.encode(sub[sl], bits[sl], dtype=torch.float64))
    got = lookup_logits(model, bits[sl], t0, t1, dtype).double()
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("options", [ALL_OPTIONS])
def test_a_run_with_step_options_resumes_exactly(tmp_path, options):
    """Paused after one step and resumed (a fresh process's model, optimizer and step, then
    the checkpoint's state loaded into them), a run with the step options ends where an
    uninterrupted one does: Adam's state lives in the optimizer, read afresh every step."""
    cfg = config("manual", options=options, steps=30)
    full = load_run(train(cfg, tmp_path / "full"))
    train(cfg, tmp_path / "paused", time_limit_s=0.0)
    resumed = load_run(train(cfg, tmp_path / "paused", resume=True))
    assert is_complete(resumed.path)
    for key, value in full.metrics.items():
        if key != "wall_time":
            np.testing.assert_array_equal(resumed.metrics[key], value, err_msg=key)
    a, b = (torch.load(r.path / "checkpoints" / "step_00000030.pt", weights_only=True)
            for r in (full, resumed))
    for k in a["optimizer"]["state"]:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(a["optimizer"]["state"][k][name], b["optimizer"]["state"][k][name])


def test_step_options_are_checked():
    for options, match in ((["gather_in", "fused"], "step_options must be distinct"),
                           (["adam", "adam"], "step_options must be distinct")):
        with pytest.raises(ValueError, match=match):
            config("manual", options=options).validate()
    with pytest.raises(ValueError, match="not 'eager'"):
        config("eager", options=["adam"]).validate()
    with pytest.raises(ValueError, match="needs a compiled step"):
        config("graphs", options=["autotune"]).validate()
    cfg = config("compiled", options=["adam", "autotune", "gather_in"]).validate()
    assert cfg.train.step_options == ["gather_in", "adam", "autotune"]


@pytest.mark.parametrize("already", [0, 5])
def test_warm_up_then_restore_leaves_the_run_unchanged(already):
    """The CUDA-graph step warms up (real steps) before its capture and then restores the
    parameters and Adam's state: training goes on exactly as without the warm-up, from a
    fresh optimizer or a resumed one."""
    def run(warm):
        cfg = config("manual")
        model, step = new_step(cfg)
        assert isinstance(step, ManualStep)
        for s in range(1, already + 1):
            step(s)
        if warm:
            step.step_t.fill_(already + 1)
            warm_up_and_restore(step._body, step.params, step.opt)
        for s in range(already + 1, already + 6):
            step(s)
        return [p.detach().clone() for p in model.parameters()]
    for a, b in zip(run(False), run(True)):
        assert torch.equal(a, b)


def test_written_out_steps_refuse_what_they_do_not_handle(tmp_path):
    with pytest.raises(ValueError, match="one hidden layer"):
        train(RunConfig(TaskConfig(n_tasks=4, n_bits=6), ModelConfig(widths=[3], depth=2),
                        TrainConfig(steps=2, step="manual", device="cpu")), tmp_path / "a")
    with pytest.raises(ValueError, match="sampler 'counter'"):
        train(config("manual", sampler="streams"), tmp_path / "b")
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        params_after(config("graphs"), 1)
    with pytest.raises(ValueError, match="step must be one of"):
        train(config("fused"), tmp_path / "c")


def test_a_run_folder_of_older_code_loads_and_resumes_as_it_was_trained(tmp_path):
    """config.json written before the step and sampler fields (and the alphas field)
    existed: it loads as step "eager" with the per-stream sampler, and resumes to the same
    result as an uninterrupted run of that sampler."""
    cfg = config(sampler="streams", steps=30)
    full = load_run(train(cfg, tmp_path / "full"))
    train(cfg, tmp_path / "old", time_limit_s=0.0)
    path = tmp_path / "old" / "config.json"
    saved = json.loads(path.read_text())
    for part, key in (("train", "step"), ("train", "sampler"), ("task", "alphas")):
        del saved[part][key]
    path.write_text(json.dumps(saved))
    old = RunConfig.from_json(path.read_text())
    assert (old.train.step, old.train.sampler, old.task.alphas) == ("eager", "streams", None)
    resumed = load_run(train(old, tmp_path / "old", resume=True))
    assert is_complete(resumed.path)
    for key, value in full.metrics.items():
        if key != "wall_time":
            np.testing.assert_array_equal(resumed.metrics[key], value, err_msg=key)


def test_committed_runs_of_older_code_still_load():
    """Committed runs whose config.json predates the step and sampler fields load with the
    legacy values (per-stream sampler, eager step); the newer ones with what they saved."""
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "results" / "parity"
    dirs = sorted(d for d in root.iterdir() if (d / "config.json").exists())
    saved = {d: json.loads((d / "config.json").read_text())["train"] for d in dirs}
    assert any("sampler" not in s for s in saved.values())
    for d in dirs:
        run = load_run(d)
        want = (saved[d].get("sampler", "streams"), saved[d].get("step", "eager"))
        assert (run.config.train.sampler, run.config.train.step) == want, d.name
        assert run.metrics["test_loss"].shape[0] == len(run.info())


@pytest.mark.gpu
@pytest.mark.parametrize("step,precision,options", [
    ("eager", "bf16", ()), ("manual", "fp32", ()), ("graphs", "fp32", ()), ("graphs", "bf16", ()),
    ("compiled", "bf16", ()), ("compiled_graphs", "fp32", ()), ("compiled_graphs", "bf16", ()),
    ("graphs", "bf16", ALL_OPTIONS), ("compiled_graphs", "bf16", ALL_OPTIONS),
    ("graphs", "fp32", ("triton",)), ("graphs", "bf16", ("triton",)),
    ("compiled_graphs", "bf16", ("adam", "triton"))])
def test_cuda_step_variants_equal_the_fp32_eager_step(step, precision, options):
    """On the GPU (TF32 off for fp32): every variant, the CUDA-graph ones included."""
    torch.backends.cuda.matmul.allow_tf32 = False
    ref = params_after(config(device="cuda"))
    init = torch.cat([p.detach().reshape(-1) for p in build_model(config()).parameters()])
    # cuBLAS sums in other orders, and Adam turns a flipped near-zero gradient into a
    # step of lr (benchmarks/parity_menu.py: TOLERANCE)
    tol = {"fp32": 1e-2, "bf16": 0.3}[precision]
    gap = relative_gap(params_after(config(step, precision, device="cuda", options=options)),
                       ref, init)
    assert gap <= tol, f"{step}+{options}/{precision} on CUDA: gap {gap:.2e}"
