"""The step option ``triton`` (empirical.parity.kernels): its two kernels against the
written-out float32 step for every configuration the GPU may autotune to, batches in any
order, padded units, several groups; and the whole step against the fp32 eager step after
50 steps. Without CUDA the kernels run in Triton's interpreter (tests/conftest.py)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.nn import functional as F

from common.errors import InputError
from empirical.parity import FusedMLP, TrainConfig
from empirical.parity.steps import _losses_and_logit_grads, loss_and_grads, unit_slots
from strategies import seeds
from parity_helpers import needs_triton, one_torch_thread  # noqa: F401 (autouse fixture)

pytestmark = needs_triton
kernels = pytest.importorskip("empirical.parity.kernels")


def problem(seed, groups=2, widths=(3, 9, 20), T=5, n=7, B=150, sort=True):
    """A fused model with random parameters and a random batch (subtasks, bits, labels)."""
    rng = np.random.default_rng(seed)
    model = FusedMLP(T + n, list(widths) * groups)
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    for p in model.parameters():
        torch.nn.init.normal_(p, generator=gen)
    sub = torch.as_tensor(rng.integers(0, T, (groups, B)))
    if sort:
        sub = sub.sort(1).values
    bits = torch.as_tensor(rng.integers(0, 2, (groups, B, n)), dtype=torch.uint8)
    y = torch.as_tensor(rng.integers(0, 2, (groups, B)))
    return model, sub, bits, y


def reference(model, sub, bits, y):
    """Losses and gradients of the written-out float32 step (tested against autograd)."""
    G, T = sub.shape[0], model.in_dim - bits.shape[-1]
    x = torch.cat([F.one_hot(sub, T), bits], -1).float()
    return loss_and_grads(model.w_in, model.b_in, model.w_out, model.b_out,
                          unit_slots(model, G), x, y)


def kernel_grads(layer, model, x, sub, y, fwd=None, bwd=None):
    """Losses and (g_w_in, g_b_in, g_w_out) through the kernels, with given configs."""
    G, B = sub.shape
    wx, ctrl, w2 = layer.pack(model.w_in, model.b_in, model.w_out)
    if fwd is None:
        z = layer.forward(x, sub, wx, ctrl, w2)
    else:
        z = torch.empty(G, B, layer.NC)
        kernels._forward_kernel[(G, -(-B // fwd.kwargs["BM"]))](
            x, sub, wx, ctrl, w2, layer.net, z, B, layer.Hp, layer.T, KB=layer.KB,
            NC=layer.NC, PREC=layer.prec, **fwd.kwargs)
    M2 = 2 * layer.Mg
    logits = z[..., :M2].reshape(G, B, -1, 2) + model.b_out.view(G, 1, -1, 2)
    losses, g_logits = _losses_and_logit_grads(logits, y)
    gz = F.pad(g_logits.reshape(G, B, M2), (0, layer.NC - M2)).to(layer.dtype).contiguous()
    if bwd is None:
        dwx, dc, dw2 = layer.backward(x, sub, wx, ctrl, w2, gz)
    else:
        dwx = torch.zeros(G, layer.Hp, layer.KB)
        dc, dw2 = torch.zeros(G, layer.Hp, layer.T), torch.zeros(G, layer.Hp, 2)
        m = bwd.kwargs
        kernels._backward_kernel[(G, layer.Hp // m["BN"], m["S"])](
            x, sub, wx, ctrl, w2, layer.net, gz, dwx, dc, dw2, B, layer.Hp, layer.T,
            KB=layer.KB, NC=layer.NC, NW=layer.NW, PREC=layer.prec, **m)
    H, n, Hg = model.w_in.shape[0], layer.n_bits, layer.Hg
    g_w_in = torch.cat([dc[:, :Hg], dwx[:, :Hg, :n]], -1).reshape(H, -1)
    return losses, (g_w_in, dwx[:, :Hg, n].reshape(H), dw2[:, :Hg].reshape(H, 2))


def build(model, G, T, n, precision="fp32"):
    Hg, Mg = model.w_in.shape[0] // G, model.n_networks // G
    return kernels.FusedLayer.build(model.unit_net[:Hg] % Mg, G, Mg, T, n, precision)


def assert_matches(got, want, rtol=1e-5, atol=1e-5):
    losses, grads = got
    torch.testing.assert_close(losses, want[0], rtol=rtol, atol=atol)
    for g, r in zip(grads, want[1]):
        torch.testing.assert_close(g, r, rtol=rtol, atol=atol)


@settings(max_examples=6, deadline=None)
@given(seeds, st.integers(1, 3), st.sampled_from([(1,), (2, 5), (3, 9, 20), (130,)]),
       st.integers(1, 150), st.booleans())
def test_kernels_give_the_written_out_losses_and_gradients(seed, groups, widths, B, sort):
    """Any batch size (partial tiles), widths over a block of units (130 > 128: two
    blocks, padded), one to three groups, batches sorted by subtask or not (the control
    rows' sums rank the subtasks of each tile whatever their order)."""
    T, n = 5, 7
    model, sub, bits, y = problem(seed, groups, widths, T, n, B, sort)
    layer = build(model, groups, T, n)
    x = F.pad(bits.float(), (0, layer.KB - n))
    x[..., n] = 1
    want = reference(model, sub, bits, y)
    assert_matches(kernel_grads(layer, model, x, sub.to(torch.int32), y), want)


def _configs():
    return [pytest.param(which, c, id=f"{which}-" + "-".join(f"{k}{v}" for k, v in c.kwargs.items())
                         + f"-w{c.num_warps}-s{c.num_stages}")
            for which, cs in (("forward", getattr(kernels, "FORWARD_CONFIGS", [])),
                              ("backward", getattr(kernels, "BACKWARD_CONFIGS", [])),
                              *_float32_configs())
            for c in cs]


def _float32_configs():
    """The one tile of float32 products on CUDA (for checks)."""
    if not hasattr(kernels, "_KERNELS"):
        return []
    forward, backward = kernels._KERNELS["float32"]
    return [("forward", forward.configs), ("backward", backward.configs)]


@pytest.mark.parametrize("which,config", _configs())
def test_every_autotuned_configuration_gives_the_same_gradients(which, config):
    """The GPU autotunes over these; each tile shape and batch split must give the written-
    out step's numbers (batch 300: several tiles, a partial one; 2 groups; 9 networks over
    4 blocks of units, so that the backward reads a window of 16 of the 32 logit columns,
    at another offset in each block)."""
    T, n = 6, 9
    model, sub, bits, y = problem(11, 2, (3, 5, 60, 60, 60, 60, 60, 60, 70), T, n, 300)
    layer = build(model, 2, T, n)
    assert (layer.NC, layer.NW, layer.Hp) == (32, 16, 512)
    x, s, y2 = layer.inputs(sub, bits, y)
    fwd, bwd = (config, None) if which == "forward" else (None, config)
    assert_matches(kernel_grads(layer, model, x, s, y2, fwd, bwd), reference(model, sub, bits, y))


def test_the_kernels_compile_for_the_h200_without_a_gpu():
    """What the interpreter cannot check: Triton's compiler and the ptxas it ships accept
    both kernels for sm90 (bf16 with tensor-core wgmma products, and the float32 tile),
    within the shared memory (benchmarks/triton_sm90.py, the first configuration of each)."""
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "triton_sm90.py"
    import triton
    if not (Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas").exists():
        pytest.skip("this triton has no ptxas")
    for precision in ("bf16", "fp32"):
        res = subprocess.run([sys.executable, str(script), "--first", "--precision", precision],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr
        lines = res.stdout.splitlines()
        assert len(lines) == 2 and all("registers" in line for line in lines), res.stdout
        if precision == "bf16":
            assert all("wgmma True" in line for line in lines), res.stdout


def test_the_batch_is_sorted_by_subtask_with_its_labels_and_bits():
    model, sub, bits, y = problem(3, 2, (4,), 5, 7, 60, sort=False)
    layer = build(model, 2, 5, 7, "bf16")
    x, s, y2 = layer.inputs(sub, bits, y)
    assert x.dtype == torch.bfloat16 and x.shape == (2, 60, layer.KB)
    assert (s[:, 1:] >= s[:, :-1]).all()
    for g in range(2):       # the same samples: (subtask, bits, label) as multisets
        want = sorted(zip(sub[g].tolist(), map(tuple, bits[g].tolist()), y[g].tolist()))
        got = sorted(zip(s[g].tolist(), map(tuple, x[g, :, :7].int().tolist()), y2[g].tolist()))
        assert got == want
    assert (x[..., 7] == 1).all() and (x[..., 8:] == 0).all()


def test_the_step_leaves_dense_gradients_shaped_as_the_parameters():
    """One group (a Figure-2 sweep): a gradient sliced out of the kernels' unit-major
    layout would be strided, which CUDA's fused Adam refuses."""
    from empirical.parity import ModelConfig, RunConfig, TaskConfig
    from empirical.parity.train import new_step
    cfg = RunConfig(TaskConfig(n_tasks=6, n_bits=8, k=3, alpha=0.4), ModelConfig(widths=[3, 5]),
                    TrainConfig(steps=2, batch=64, device="cpu", step="manual",
                                precision="bf16", step_options=["triton"]))
    model, step = new_step(cfg)
    step(1)
    for name, p in model.named_parameters():
        assert p.grad.shape == p.shape and p.grad.is_contiguous(), name
        assert p.grad.stride() == p.stride(), name


def test_triton_does_not_combine_with_the_other_hidden_layer_options():
    with pytest.raises(InputError, match="triton"):
        TrainConfig(step="manual", step_options=["triton", "gather_in"]).validate()
