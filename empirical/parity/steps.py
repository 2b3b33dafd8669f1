"""One optimizer step of the fused model (forward, loss, backward, Adam), in the ways
``TrainConfig.step`` names.

- ``eager``: autograd through :meth:`FusedMLP.forward` (``compile`` compiles that forward
  and the batch draw), then ``torch.optim.Adam``: the reference every other step is tested
  against.
- ``manual``: the same step with the backward written out (:func:`loss_and_grads`): one
  hidden layer, so the gradients are four matrix products and a mask, and nothing autograd
  would keep is kept. Eager kernels.
- ``compiled``: batch drawing, forward, loss and backward as one ``torch.compile``d
  function of the step number, then Adam (fused on CUDA).
- ``graphs`` / ``compiled_graphs``: the ``manual`` / ``compiled`` step and a capturable
  fused Adam captured once in a CUDA graph and replayed each step (CUDA only): no Python
  and no kernel launches per step.

Every step returns the per-network losses of its batch (measured before its update). In
``bf16`` the matrix products take bf16 inputs and the activations are kept in bf16, while
the weights, their gradients and Adam's state stay float32.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

from common.errors import InputError
from .model import FusedMLP
from .task import SparseParityTask, SweepSampler

#: optimizer steps run before a CUDA graph is captured (cuBLAS workspaces, compilation)
WARMUP_STEPS = 3
#: the written-out step pads hidden units, inputs and logits to multiples of this
ALIGN = 8


def matmul_dtype(precision: str) -> torch.dtype:
    """The dtype of matrix-product inputs and activations for a ``TrainConfig.precision``."""
    return torch.bfloat16 if precision == "bf16" else torch.float32


def network_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each network: logits G × B × Mg × 2 (float32), labels G × B →
    losses (G·Mg,) in network order."""
    logp = F.log_softmax(logits, -1)
    nll = -logp.gather(-1, y[:, :, None, None].expand(*logits.shape[:3], 1))[..., 0]
    return nll.mean(1).reshape(-1)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def input_width(in_dim: int) -> int:
    """Columns of the written-out step's input: the in_dim inputs, a constant 1 (the bias,
    so that it rides in the products), zeros up to a multiple of :data:`ALIGN`."""
    return _round_up(in_dim + 1, ALIGN)


def with_bias_column(x: torch.Tensor) -> torch.Tensor:
    """``x`` (… × in_dim) as the written-out step's input (:func:`input_width` columns)."""
    I = x.shape[-1]
    out = F.pad(x, (0, input_width(I) - I))
    out[..., I] = 1
    return out


def loss_and_grads(w_in, b_in, w_out, b_out, slot: torch.Tensor, x: torch.Tensor,
                   y: torch.Tensor):
    """Per-network losses and the gradient of their sum, for one hidden layer, written out.

    ``x`` (G × B × :func:`input_width`, the matrix-product dtype; see
    :func:`with_bias_column`) is group g's batch for networks g·M/G … (g+1)·M/G − 1;
    ``slot`` (H × M/G, float) is one-hot: the network, within its group, that each hidden
    unit feeds. With pre = x Wᵀ + b, h = relu(pre), logits z = h·blockdiag(w_out) + b_out
    and p = softmax(z): ∂/∂z = (p − onehot(y))/B per network; ∂/∂h = ∂/∂z·blockdiagᵀ;
    ∂/∂pre = ∂/∂h·[h > 0]; ∂/∂[W b] = (∂/∂pre)ᵀ [x 1]; ∂/∂blockdiag = hᵀ ∂/∂z.

    Every product runs on operands padded to multiples of :data:`ALIGN` (hidden units per
    group, inputs with the bias column, logits): cuBLAS's fast kernels need 16-byte-aligned
    rows, and a sweep's H = Σ widths rarely is. Padded units have zero weights, so they stay
    zero and add nothing. Returns (losses (M,), (g_w_in, g_b_in, g_w_out, g_b_out)) in the
    parameters' dtype (float32 in training).
    """
    H, I = w_in.shape
    if x.shape[-1] == I:
        x = with_bias_column(x)
    G, B, Ip = x.shape
    Mg = slot.shape[1]
    Hg, dtype, wdt = H // G, x.dtype, w_in.dtype        # products in dtype, the rest in wdt
    Hp, Mp = _round_up(Hg, ALIGN), _round_up(Mg, ALIGN // 2)
    W = x.new_zeros(G, Hp, Ip)
    W[:, :Hg, :I] = w_in.view(G, Hg, I)
    W[:, :Hg, I] = b_in.view(G, Hg)
    h = torch.relu(torch.bmm(x, W.transpose(1, 2)))                          # G × B × Hp
    slot_p = F.pad(slot.view(G, Hg, Mg), (0, Mp - Mg, 0, Hp - Hg))
    w_out_p = F.pad(w_out.view(G, Hg, 2), (0, 0, 0, Hp - Hg))
    block = (slot_p[..., None] * w_out_p[:, :, None, :]).view(G, Hp, 2 * Mp).to(dtype)
    logits = torch.bmm(h, block).view(G, B, Mp, 2)[:, :, :Mg].to(wdt) + b_out.view(G, 1, Mg, 2)
    logp = F.log_softmax(logits, -1)
    yf = y[:, :, None, None].to(wdt)                 # no F.one_hot: it syncs on CUDA
    target = torch.cat([1 - yf, yf], -1)                                     # G × B × 1 × 2
    losses = -(logp * target).sum(-1).mean(1).reshape(-1)
    g_logits = (logp.exp() - target) / B                                     # G × B × Mg × 2
    g_b_out = g_logits.sum(1).reshape(-1, 2)
    gz = F.pad(g_logits, (0, 0, 0, Mp - Mg)).view(G, B, 2 * Mp).to(dtype)
    g_block = torch.bmm(h.transpose(1, 2), gz).to(wdt).view(G, Hp, Mp, 2)
    g_w_out = (g_block * slot_p[..., None]).sum(2)[:, :Hg].reshape(H, 2)
    g_pre = torch.ops.aten.threshold_backward(torch.bmm(gz, block.transpose(1, 2)), h, 0)
    g_W = torch.bmm(g_pre.transpose(1, 2), x).to(wdt)                      # G × Hp × Ip
    g_w_in = g_W[:, :Hg, :I].reshape(H, I).contiguous()
    g_b_in = g_W[:, :Hg, I].reshape(H).contiguous()
    return losses, (g_w_in, g_b_in, g_w_out, g_b_out)


def unit_slots(model: FusedMLP, groups: int) -> torch.Tensor:
    """H × M/G float one-hot: the network, within its group, that each hidden unit feeds."""
    Mg = model.n_networks // groups
    local = model.unit_net % Mg
    return F.one_hot(local, Mg).float()


class EagerStep:
    """Autograd through :meth:`FusedMLP.forward`, then the optimizer. ``batches(step)``
    gives (x G × B × in_dim float32, y G × B); ``autocast`` is the precision context;
    ``forward`` the (possibly compiled) module."""

    def __init__(self, model: FusedMLP, opt, batches: Callable, groups: int, autocast,
                 forward=None):
        self.model, self.opt, self.batches, self.groups = model, opt, batches, groups
        self.autocast, self.forward = autocast, model if forward is None else forward

    def __call__(self, step: int) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        x, y = self.batches(step)
        with self.autocast():
            logits = self.forward(x, self.groups).float()              # G × B × M/G × 2
        losses = network_losses(logits, y)
        losses.sum().backward()
        self.opt.step()
        return losses.detach()


class ManualStep:
    """The written-out step (:func:`loss_and_grads`) on batches drawn by ``sampler``:
    eager kernels, or the draw-forward-backward compiled as one function
    (``compile=True``), optionally captured with Adam in a CUDA graph (``graphs=True``)."""

    def __init__(self, model: FusedMLP, opt, task: SparseParityTask, sampler: SweepSampler,
                 precision: str, compile: bool = False, graphs: bool = False):
        if model.depth != 1:
            raise InputError("the written-out step handles one hidden layer only")
        self.model, self.opt, self.task, self.sampler = model, opt, task, sampler
        self.dtype = matmul_dtype(precision)
        self.params = [model.w_in, model.b_in, model.w_out, model.b_out]
        self.slot = unit_slots(model, len(sampler.groups)).to(model.w_in.device)
        task._tables(model.w_in.device)          # fill the task's device cache before tracing
        self.grads_of = torch.compile(self.grads, fullgraph=True, dynamic=False) \
            if compile else self.grads
        device = model.w_in.device
        self.step_t = torch.zeros((), dtype=torch.int64, device=device)
        self.graph = None
        if graphs:
            if device.type != "cuda":
                raise InputError("CUDA graphs need a CUDA device")
            self.graph = torch.cuda.CUDAGraph()
        self.captured = False

    def grads(self, w_in, b_in, w_out, b_out, slot, step_t):
        """Draw the batch of ``step_t`` and return (losses, gradients)."""
        sub, bits, y = self.sampler.draw(step_t)
        I = self.task.input_dim
        x = self.task.encode(sub, bits, dtype=self.dtype, width=input_width(I))
        x[..., I] = 1                                      # the bias column
        return loss_and_grads(w_in, b_in, w_out, b_out, slot, x, y)

    def _body(self) -> torch.Tensor:
        losses, grads = self.grads_of(*self.params, self.slot, self.step_t)
        for p, g in zip(self.params, grads):
            p.grad = g
        self.opt.step()
        return losses

    def __call__(self, step: int) -> torch.Tensor:
        self.step_t.fill_(step)
        if self.graph is None:
            return self._body().detach()
        if not self.captured:
            self._capture()
        self.graph.replay()
        return self.losses

    def _capture(self) -> None:
        """Warm up on a side stream (compiling, creating Adam's state), then capture one
        step in the CUDA graph."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            warm_up_and_restore(self._body, self.params, self.opt)
        torch.cuda.current_stream().wait_stream(side)
        with torch.cuda.graph(self.graph):
            self.losses = self._body()
        self.captured = True


@torch.no_grad()
def _snapshot(params, opt) -> tuple[list, dict]:
    return ([p.detach().clone() for p in params],
            {p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)}
             for p, st in opt.state.items()})


def warm_up_and_restore(body: Callable, params, opt, steps: int = WARMUP_STEPS) -> None:
    """Run ``body`` (one training step) ``steps`` times, so that everything a capture needs
    exists (compiled kernels, Adam's state tensors), then put the parameters and Adam's
    state back in place, as they were (state created by the warm-up back to zero, Adam's
    initial state): the tensors a capture records stay, their values are the step's."""
    saved, had = _snapshot(params, opt)
    for _ in range(steps):
        body()
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)
        for p, st in opt.state.items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    v.copy_(had[p][k]) if p in had else v.zero_()


def optimizer(model: FusedMLP, lr: float, step: str, device: torch.device):
    """Adam as each step uses it: fused on CUDA, capturable for the CUDA-graph steps."""
    cuda = device.type == "cuda"
    return torch.optim.Adam(model.parameters(), lr=lr, fused=cuda,
                            capturable=cuda and step.endswith("graphs"))


def make_step(kind: str, model: FusedMLP, opt, task: SparseParityTask, sampler: SweepSampler,
              precision: str, autocast, compile_forward: bool = False):
    """The step callable ``kind`` names (``TrainConfig.step``), drawing from ``sampler``."""
    if kind == "eager":
        # with compile_forward the batch draw is compiled too: drawn eagerly it is about a
        # hundred small kernels, which on a GPU cost more to launch than to run
        draw = torch.compile(sampler.draw, dynamic=False) if compile_forward else sampler.draw
        step_t = torch.zeros((), dtype=torch.int64, device=sampler.device)

        def batches(step):
            sub, bits, y = draw(step_t.fill_(step))     # a tensor: no recompilation per step
            return task.encode(sub, bits), y
        fwd = torch.compile(model) if compile_forward else None
        return EagerStep(model, opt, batches, len(sampler.groups), autocast, fwd)
    if kind not in ("manual", "compiled", "graphs", "compiled_graphs"):
        raise InputError(f"unknown step {kind!r}")
    return ManualStep(model, opt, task, sampler, precision,
                      compile=kind.startswith("compiled"), graphs=kind.endswith("graphs"))
