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

The written-out steps take options (``TrainConfig.step_options``) that do the same
arithmetic another way: ``gather_in`` (the one-hot control part of the input as a row
lookup, :class:`InputLayout`; evaluations too, :func:`lookup_logits`), ``gather_out`` (the
output layer's backward as a per-unit lookup, :func:`_unit_lookup`), ``adam`` (Adam inside
the step's function, :func:`adam_update`), ``autotune`` (inductor's max-autotune) and
``triton`` (the hidden layer's forward and backward as two Triton kernels that never write
the activations, :class:`TritonGrads`; evaluations look the control rows up).

Every step returns the per-network losses of its batch (measured before its update). In
``bf16`` the matrix products take bf16 inputs and the activations are kept in bf16, while
the weights, their gradients and Adam's state stay float32.
"""
from __future__ import annotations

from dataclasses import dataclass
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
#: step options whose runs evaluate with the control rows looked up (:func:`lookup_logits`)
LOOKUP_OPTIONS = ("gather_in", "triton")


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


@dataclass(frozen=True)
class InputLayout:
    """The columns of the written-out step's input and of its first-layer weights.

    - ``gather=False`` (the product with the whole input): input columns [control (one-hot,
      ``n_ctrl``) | bits (``n_bits``) | 1 | zeros] up to a multiple of :data:`ALIGN`;
      weights G × Hp × width (unit-major, as ``w_in``). Only ``n_ctrl + n_bits`` matters
      here, so ``InputLayout(in_dim, 0)`` describes any such input.
    - ``gather=True`` (step option ``gather_in``): [bits | 1 | zeros up to ``head``, a
      multiple of ALIGN | control | zeros]; weights transposed, G × width × Hp, so that the
      bits' rows are an aligned prefix (their product is a slice) and a control row is
      contiguous over the units (the forward reads the row of each sample's subtask whole).
      The weight gradient is unit-major in both (:meth:`weight_grad`).
    """
    n_ctrl: int
    n_bits: int
    gather: bool = False

    @property
    def head(self) -> int:
        """Columns before the control part (gather layout): bits, the 1, zeros."""
        return _round_up(self.n_bits + 1, ALIGN) if self.gather else 0

    @property
    def bias(self) -> int:
        return self.n_bits if self.gather else self.n_ctrl + self.n_bits

    @property
    def bits(self) -> int:
        """The first bit's column."""
        return 0 if self.gather else self.n_ctrl

    @property
    def width(self) -> int:
        if self.gather:
            return self.head + _round_up(self.n_ctrl, ALIGN)
        return input_width(self.n_ctrl + self.n_bits)

    def encode(self, sub: torch.Tensor, bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Subtasks (…) and bits (… × n_bits) as the input (… × width)."""
        x = torch.zeros(*sub.shape, self.width, dtype=dtype, device=bits.device)
        x[..., self.bits:self.bits + self.n_bits] = bits
        x[..., self.bias] = 1
        return x.scatter_(-1, sub[..., None] + self.head, 1.0)

    def pack(self, w_in: torch.Tensor, b_in: torch.Tensor, G: int, Hp: int,
             dtype: torch.dtype) -> torch.Tensor:
        """``w_in`` (H × in_dim) and ``b_in`` as the G groups' weight matrices, hidden units
        padded to Hp."""
        H, I = w_in.shape
        Hg, T = H // G, self.n_ctrl
        w, b = w_in.view(G, Hg, I), b_in.view(G, Hg)
        if not self.gather:
            W = w_in.new_zeros(G, Hp, self.width, dtype=dtype)
            W[:, :Hg, :I] = w
            W[:, :Hg, I] = b
            return W
        W = w_in.new_zeros(G, self.width, Hp, dtype=dtype)
        wt = w.transpose(1, 2)
        W[:, :self.n_bits, :Hg] = wt[:, T:]
        W[:, self.bias, :Hg] = b
        W[:, self.head:self.head + T, :Hg] = wt[:, :T]
        return W

    def pre_activations(self, W: torch.Tensor, x: torch.Tensor, sub) -> torch.Tensor:
        """x·Wᵀ + b for every group (G × B × Hp): one product, or (``gather``) the bits'
        product plus each sample's control row looked up."""
        if not self.gather:
            return torch.bmm(x, W.transpose(1, 2))
        K, T = self.head, self.n_ctrl
        groups = torch.arange(W.shape[0], device=W.device)[:, None]
        return torch.bmm(x[..., :K], W[:, :K]) + W[:, K:K + T][groups, sub]

    @staticmethod
    def weight_grad(g_pre: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The gradient of the weights, unit-major (G × Hp × width, input columns in this
        layout's order), from that of the pre-activations: a unit's row is contiguous, as
        ``w_in``'s is, whichever layout the forward used."""
        return torch.bmm(g_pre.transpose(1, 2), x)

    def unpack(self, g_W: torch.Tensor, G: int, Hg: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-major weight gradients (:meth:`weight_grad`) → (of ``w_in`` H × in_dim, of
        ``b_in`` H)."""
        T, n = self.n_ctrl, self.n_bits
        rows = g_W[:, :Hg]
        w = rows[..., :T + n] if not self.gather else \
            torch.cat([rows[..., self.head:self.head + T], rows[..., :n]], -1)
        return (w.reshape(G * Hg, T + n).contiguous(),
                rows[..., self.bias].reshape(G * Hg).contiguous())


def _unit_lookup(g_logits: torch.Tensor, w_out_p: torch.Tensor, slot_p: torch.Tensor):
    """∂loss/∂h of every unit (G × B × Hp, float32) without the block-diagonal product:
    unit j's gradient is its network's logit gradient times its own output weights (step
    option ``gather_out``; compiled, one pass fused with the ReLU mask). Padded units look
    up network 0 with zero weights."""
    net = slot_p[0].argmax(-1)                                          # Hp
    gz = g_logits[:, :, net]                                            # G × B × Hp × 2
    return gz[..., 0] * w_out_p[:, None, :, 0] + gz[..., 1] * w_out_p[:, None, :, 1]


def _losses_and_logit_grads(logits: torch.Tensor, y: torch.Tensor):
    """Per-network mean cross-entropy (M,) and its gradient with respect to the logits."""
    B = logits.shape[1]
    logp = F.log_softmax(logits, -1)
    yf = y[:, :, None, None].to(logits.dtype)        # no F.one_hot: it syncs on CUDA
    target = torch.cat([1 - yf, yf], -1)                                     # G × B × 1 × 2
    losses = -(logp * target).sum(-1).mean(1).reshape(-1)
    return losses, (logp.exp() - target) / B                                 # G × B × Mg × 2


def loss_and_grads(w_in, b_in, w_out, b_out, slot: torch.Tensor, x: torch.Tensor,
                   y: torch.Tensor, layout: InputLayout | None = None, sub=None,
                   options=()):
    """Per-network losses and the gradient of their sum, for one hidden layer, written out.

    ``x`` (G × B × ``layout.width``, the matrix-product dtype; default layout: the inputs,
    the bias column, zeros, see :func:`with_bias_column`) is group g's batch for networks
    g·M/G … (g+1)·M/G − 1; ``sub`` (G × B) its subtasks (for the ``gather_in`` layout);
    ``slot`` (H × M/G, float) is one-hot: the network, within its group, that each hidden
    unit feeds. With pre = x Wᵀ + b, h = relu(pre), logits z = h·blockdiag(w_out) + b_out
    and p = softmax(z): ∂/∂z = (p − onehot(y))/B per network; ∂/∂h = ∂/∂z·blockdiagᵀ;
    ∂/∂pre = ∂/∂h·[h > 0]; ∂/∂[W b] = (∂/∂pre)ᵀ [x 1]; ∂/∂blockdiag = hᵀ ∂/∂z.
    ``options`` (:data:`~empirical.parity.config.STEP_OPTIONS`): ``gather_in`` (the layout
    says so) and ``gather_out`` compute the same quantities another way.

    Every product runs on operands padded to multiples of :data:`ALIGN` (hidden units per
    group, inputs with the bias column, logits): cuBLAS's fast kernels need 16-byte-aligned
    rows, and a sweep's H = Σ widths rarely is. Padded units have zero weights, so they stay
    zero and add nothing. Returns (losses (M,), (g_w_in, g_b_in, g_w_out, g_b_out)) in the
    parameters' dtype (float32 in training).
    """
    H, I = w_in.shape
    layout = layout or InputLayout(I, 0)
    if x.shape[-1] == I and not layout.gather:
        x = with_bias_column(x)
    G, B, _ = x.shape
    Mg = slot.shape[1]
    Hg, dtype, wdt = H // G, x.dtype, w_in.dtype        # products in dtype, the rest in wdt
    Hp, Mp = _round_up(Hg, ALIGN), _round_up(Mg, ALIGN // 2)
    W = layout.pack(w_in, b_in, G, Hp, dtype)
    h = torch.relu(layout.pre_activations(W, x, sub))                       # G × B × Hp
    slot_p = F.pad(slot.view(G, Hg, Mg), (0, Mp - Mg, 0, Hp - Hg))
    w_out_p = F.pad(w_out.view(G, Hg, 2), (0, 0, 0, Hp - Hg))
    block = (slot_p[..., None] * w_out_p[:, :, None, :]).view(G, Hp, 2 * Mp).to(dtype)
    logits = torch.bmm(h, block).view(G, B, Mp, 2)[:, :, :Mg].to(wdt) + b_out.view(G, 1, Mg, 2)
    losses, g_logits = _losses_and_logit_grads(logits, y)
    g_b_out = g_logits.sum(1).reshape(-1, 2)
    gz = F.pad(g_logits, (0, 0, 0, Mp - Mg)).view(G, B, 2 * Mp).to(dtype)
    g_block = torch.bmm(h.transpose(1, 2), gz).to(wdt).view(G, Hp, Mp, 2)
    g_w_out = (g_block * slot_p[..., None]).sum(2)[:, :Hg].reshape(H, 2)
    g_h = _unit_lookup(g_logits, w_out_p, slot_p).to(dtype) if "gather_out" in options \
        else torch.bmm(gz, block.transpose(1, 2))
    g_pre = torch.ops.aten.threshold_backward(g_h, h, 0)
    g_w_in, g_b_in = layout.unpack(layout.weight_grad(g_pre, x).to(wdt), G, Hg)
    return losses, (g_w_in, g_b_in, g_w_out, g_b_out)


@torch.no_grad()
def lookup_logits(model: FusedMLP, bits: torch.Tensor, t0: int, t1: int,
                  dtype: torch.dtype) -> torch.Tensor:
    """Every network's logits (n × M × 2, the parameters' dtype) on a subtask-major block of test
    samples, ``(t1 − t0)`` subtasks with n / (t1 − t0) samples each, their ``bits``
    (n × n_bits): the bits' product, plus each subtask's control row and the bias added to
    its rows, in ``dtype`` (hidden units padded to :data:`ALIGN`); the evaluation of the
    step option ``gather_in``."""
    H, I = model.w_in.shape
    T, n, nb = t1 - t0, bits.shape[0], bits.shape[1]
    Hp, K = _round_up(H, ALIGN), _round_up(nb, ALIGN)
    M, Mp = model.n_networks, _round_up(model.n_networks, ALIGN // 2)
    w = F.pad(model.w_in, (0, 0, 0, Hp - H))
    ctrl = (w[:, t0:t1] + F.pad(model.b_in, (0, Hp - H))[:, None]).T.to(dtype)    # T × Hp
    wb = F.pad(w[:, I - nb:], (0, K - nb)).to(dtype)                             # Hp × K
    pre = F.pad(bits.to(dtype), (0, K - nb)) @ wb.T                              # n × Hp
    h = torch.relu_(pre.view(T, n // T, Hp).add_(ctrl[:, None])).view(n, Hp)
    block = model.w_out.new_zeros(Hp, Mp, 2)
    block[torch.arange(H, device=h.device), model.unit_net] = model.w_out
    logits = (h @ block.view(Hp, 2 * Mp).to(dtype)).view(n, Mp, 2)[:, :M]
    return logits.to(model.b_out.dtype) + model.b_out


def evaluation_lookup(train_config) -> torch.dtype | None:
    """The dtype of :func:`lookup_logits` for a run's evaluations (step options
    ``gather_in``, ``triton``), else None (the module's forward)."""
    if not set(LOOKUP_OPTIONS) & set(train_config.step_options or []):
        return None
    return matmul_dtype(train_config.precision)


def adam_update(params, grads, states, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """Adam (``torch.optim.Adam``'s update, no weight decay) on ``params`` in place (under
    ``torch.no_grad``), with
    the optimizer's own state tensors (step, exp_avg, exp_avg_sq): tensor arithmetic only,
    so that it compiles into the step's function (step option ``adam``) and checkpoints stay
    those of ``torch.optim.Adam``."""
    b1, b2 = betas
    for p, g, st in zip(params, grads, states):
        st["step"] += 1
        st["exp_avg"].lerp_(g, 1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
        t = st["step"].double()            # bias corrections in float64, as Adam's own
        step_size, bc2_sqrt = (lr / (1 - b1 ** t)).to(p.dtype), (1 - b2 ** t).sqrt().to(p.dtype)
        denom = st["exp_avg_sq"].sqrt() / bc2_sqrt + eps
        p.sub_(step_size * st["exp_avg"] / denom)


def adam_states(opt, params) -> list[dict]:
    """The optimizer's state of each parameter, created as ``torch.optim.Adam`` creates it
    (zeros; its step counter on the device for a fused or capturable Adam) where missing."""
    group = opt.param_groups[0]
    for p in params:
        if p not in opt.state or not opt.state[p]:
            on_device = group.get("fused") or group.get("capturable")
            opt.state[p] = {
                "step": torch.zeros((), dtype=torch.float32,
                                    device=p.device if on_device else "cpu"),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
    return [opt.state[p] for p in params]


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


class TritonGrads:
    """Losses and gradients of one step, step option ``triton``: the batch drawn and sorted
    and the parameters packed (:meth:`prepare`), the kernels' forward, the loss and its
    logit gradients (:meth:`loss`), the kernels' backward, the gradients unpacked into the
    parameters' shapes (:meth:`unpack`). The three pieces are compiled when the step is
    (``compile``); the kernels run between them. Called as :meth:`ManualStep.grads`."""

    def __init__(self, model: FusedMLP, task: SparseParityTask, sampler: SweepSampler,
                 precision: str, compile: bool = False, autotune: bool = False):
        from .kernels import FusedLayer
        G = len(sampler.groups)
        Hg, Mg = model.w_in.shape[0] // G, model.n_networks // G
        self.sampler = sampler
        self.layer = FusedLayer.build(model.unit_net[:Hg] % Mg, G, Mg, task.n_tasks,
                                      task.n_bits, precision)
        for name in ("prepare", "loss", "unpack"):
            fn = getattr(self, name)
            setattr(self, name, compiled(fn, autotune) if compile else fn)

    def prepare(self, w_in, b_in, w_out, step_t):
        sub, bits, y = self.sampler.draw(step_t)
        return (*self.layer.inputs(sub, bits, y), *self.layer.pack(w_in, b_in, w_out))

    def loss(self, z: torch.Tensor, b_out: torch.Tensor, y: torch.Tensor):
        """Per-network losses, their logit gradients (G × B × Mg × 2) and those as the
        backward kernel reads them (G × B × NC, the product dtype)."""
        G, B = y.shape
        M2 = 2 * self.layer.Mg
        logits = z[..., :M2].reshape(G, B, -1, 2) + b_out.view(G, 1, -1, 2)
        losses, g_logits = _losses_and_logit_grads(logits, y)
        gz = F.pad(g_logits.reshape(G, B, M2), (0, self.layer.NC - M2))
        return losses, g_logits, gz.to(self.layer.dtype).contiguous()

    def unpack(self, g_wx, g_ctrl, g_w2, g_logits):
        """(g_w_in, g_b_in, g_w_out, g_b_out) from the kernel's unit-major gradients."""
        L = self.layer
        H, n = L.G * L.Hg, L.n_bits
        g_w_in = torch.cat([g_ctrl[:, :L.Hg], g_wx[:, :L.Hg, :n]], -1).reshape(H, L.T + n)
        grads = (g_w_in, g_wx[:, :L.Hg, n].reshape(H), g_w2[:, :L.Hg].reshape(H, 2),
                 g_logits.sum(1).reshape(-1, 2))
        return tuple(g.contiguous() for g in grads)     # CUDA's fused Adam wants dense grads

    def __call__(self, w_in, b_in, w_out, b_out, slot, step_t):
        x, sub, y, wx, ctrl, w2 = self.prepare(w_in, b_in, w_out, step_t)
        losses, g_logits, gz = self.loss(self.layer.forward(x, sub, wx, ctrl, w2), b_out, y)
        grads = self.layer.backward(x, sub, wx, ctrl, w2, gz)
        return losses, self.unpack(*grads, g_logits)


class ManualStep:
    """The written-out step (:func:`loss_and_grads`) on batches drawn by ``sampler``:
    eager kernels, or the draw-forward-backward compiled as one function
    (``compile=True``), optionally captured with Adam in a CUDA graph (``graphs=True``).
    ``options`` are step options (:data:`~empirical.parity.config.STEP_OPTIONS`)."""

    def __init__(self, model: FusedMLP, opt, task: SparseParityTask, sampler: SweepSampler,
                 precision: str, compile: bool = False, graphs: bool = False, options=()):
        if model.depth != 1:
            raise InputError("the written-out step handles one hidden layer only")
        self.model, self.opt, self.task, self.sampler = model, opt, task, sampler
        self.dtype = matmul_dtype(precision)
        self.options = tuple(options)
        self.layout = InputLayout(task.n_tasks, task.n_bits, gather="gather_in" in options)
        self.params = [model.w_in, model.b_in, model.w_out, model.b_out]
        self.slot = unit_slots(model, len(sampler.groups)).to(model.w_in.device)
        task._tables(model.w_in.device)          # fill the task's device cache before tracing
        self.adam = "adam" in options
        autotune, triton = "autotune" in options, "triton" in options
        self._adam = adam_update
        if triton:          # the kernels are called between compiled pieces, not traced
            self.grads = TritonGrads(model, task, sampler, precision, compile, autotune)
            self._adam = compiled(adam_update, autotune) if compile else adam_update
        fn = self.step_with_adam if self.adam else self.grads
        self.fn = compiled(fn, autotune) if compile and not triton else fn
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
        x = self.layout.encode(sub, bits, self.dtype)
        return loss_and_grads(w_in, b_in, w_out, b_out, slot, x, y, self.layout, sub,
                              self.options)

    def step_with_adam(self, params, states, slot, step_t):
        """:meth:`grads` and Adam's update in one function (step option ``adam``)."""
        losses, grads = self.grads(*params, slot, step_t)
        group = self.opt.param_groups[0]
        self._adam(params, grads, states, group["lr"], group["betas"], group["eps"])
        return losses, grads

    @torch.no_grad()        # else torch.compile traces for autograd and keeps activations
    def _body(self) -> torch.Tensor:
        """One step; the gradients are left in ``.grad`` (as every step leaves them)."""
        if self.adam:       # the optimizer's state as it is now (a resume replaces it)
            states = adam_states(self.opt, self.params)
            losses, grads = self.fn(self.params, states, self.slot, self.step_t)
        else:
            losses, grads = self.fn(*self.params, self.slot, self.step_t)
        for p, g in zip(self.params, grads):
            p.grad = g
        if not self.adam:
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


#: inductor options of the step option ``autotune``: Triton GEMM templates benchmarked
#: against cuBLAS, pointwise work fused into the chosen templates' epilogues
AUTOTUNE = {"max_autotune": True, "epilogue_fusion": True}


def compiled(fn: Callable, autotune: bool = False) -> Callable:
    """``fn`` compiled whole for fixed shapes (``autotune``: with :data:`AUTOTUNE`)."""
    return torch.compile(fn, fullgraph=True, dynamic=False,
                         options=dict(AUTOTUNE) if autotune else None)


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
              precision: str, autocast, compile_forward: bool = False, options=()):
    """The step callable ``kind`` names (``TrainConfig.step``, with ``options``:
    ``TrainConfig.step_options``), drawing from ``sampler``."""
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
    return ManualStep(model, opt, task, sampler, precision, compile=kind.startswith("compiled"),
                      graphs=kind.endswith("graphs"), options=options)
