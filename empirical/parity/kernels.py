"""The fused step's hidden layer as two Triton kernels (step option ``triton``).

The written-out step (:func:`~empirical.parity.steps.loss_and_grads`) writes the
B × H pre-activations, reads them back for the output product, writes their gradient and
reads it for the weight gradient: about six passes over B·H activations, which on an H200
cost more than all its products (BENCHMARKS.md, parity: 0.32 of the floor). Here nothing of
size B × H reaches memory:

- :meth:`FusedLayer.forward`: a program takes BM samples of one group and walks over the
  group's hidden units in blocks of BN: pre = [bits 1]·W + C[subtask] (the bits' product
  with the bias riding as a column, the control part a row lookup), h = relu(pre), and the
  per-network logits h·blockdiag(w_out) accumulated in registers; only the B × NC logits
  are written.
- :meth:`FusedLayer.backward`: a program takes BN units and a share of the batch and
  recomputes pre and h tile by tile; with the logits' gradient it forms ∂/∂pre and
  accumulates the gradients of the bits' weights and bias ([∂pre]ᵀ·[bits 1]), hᵀ·∂z (the
  output weights' gradient is read from it at the end) and the control rows'. The last is a
  sum over the samples of each subtask: the samples of a tile are ranked by run of equal
  subtask (sorted batches have few runs per tile), summed per rank with one product, and
  added to that subtask's row with one atomic add per (rank, unit).

Both kernels are autotuned on CUDA over :data:`FORWARD_CONFIGS` / :data:`BACKWARD_CONFIGS`.
Without CUDA they run in Triton's interpreter (``TRITON_INTERPRET=1``, which
``empirical.parity`` sets on import, before Triton's), whose products have no bf16: there
the products' operands are rounded to the product dtype and multiplied in float32 (the same
values, summed in another order).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from common.errors import InputError, MissingExtraError
from .steps import matmul_dtype

try:
    import triton
    import triton.language as tl
except ImportError:                                                   # pragma: no cover
    triton = None

#: hidden units per group are padded to a multiple of this (the largest BN of the configs)
UNIT_ALIGN = 128


def available() -> bool:
    """Whether Triton can be imported (the step option ``triton`` needs it)."""
    return triton is not None


def _version() -> tuple[int, int]:
    return tuple(int(p) for p in triton.__version__.split(".")[:2])


def why_not(device: torch.device) -> str | None:
    """Why the kernels cannot run on ``device`` (None: they can): no Triton, or no CUDA
    and Triton imported without its interpreter (``empirical.parity`` asks for it on
    import, unless triton came first), or an interpreter older than 3.8 (its NumPy 2
    indexing breaks mid-kernel)."""
    if triton is None:
        return "needs the triton package (pip install triton; CUDA builds of torch include it)"
    if device.type == "cuda":
        return None
    if type(tl.zeros).__name__ != "InterpretedFunction":
        return ("without CUDA runs in Triton's interpreter, which must be chosen before "
                "triton is first imported: set TRITON_INTERPRET=1 in the environment")
    if _version() < (3, 8):
        return (f"without CUDA runs in Triton's interpreter, which needs triton 3.8 or later "
                f"with NumPy 2 (this is {triton.__version__}): pip install 'triton>=3.8'")
    return None


def require(device: torch.device) -> None:
    """Refuse, in one line, what :func:`why_not` says cannot run."""
    reason = why_not(device)
    if reason:
        error = MissingExtraError if triton is None else InputError
        raise error(f"step option 'triton' {reason}")


def _pow2(n: int, least: int = 16) -> int:
    return max(least, 1 << (int(n) - 1).bit_length())


if triton is not None:
    @triton.jit
    def _dot(a, b, PREC: tl.constexpr):
        """a·b accumulated in float32: ``PREC`` "bf16" (bf16 operands), "tf32", "ieee"
        (float32 operands), or "interp" (the interpreter: operands as float32)."""
        if PREC == "interp":
            return tl.dot(a.to(tl.float32), b.to(tl.float32))
        elif PREC == "ieee":
            return tl.dot(a, b, input_precision="ieee")
        elif PREC == "tf32":
            return tl.dot(a, b, input_precision="tf32")
        else:
            return tl.dot(a, b)

    @triton.jit
    def _pre(x, sub, wx_ptr, c_ptr, g, j, Hp, T, k, PREC: tl.constexpr):
        """Pre-activations (BM × BN, float32) of units ``j`` for samples with inputs ``x``
        (BM × KB: bits, 1, zeros) and subtasks ``sub``."""
        w = tl.load(wx_ptr + (g * k.shape[0] + k[:, None]) * Hp + j[None, :])
        pre = _dot(x, w, PREC)
        return pre + tl.load(c_ptr + (g * T + sub[:, None]) * Hp + j[None, :]).to(tl.float32)

    @triton.jit
    def _selector(net, NC: tl.constexpr, c: tl.constexpr):
        """NC × BN, 1 where column (logit) 2·net + c is unit j's: picks each unit's logit
        (``net`` < 0: none)."""
        cols = tl.arange(0, NC)
        return (cols[:, None] == net[None, :] * 2 + c).to(tl.float32)

    @triton.jit
    def _forward_kernel(x_ptr, sub_ptr, wx_ptr, c_ptr, w2_ptr, net_ptr, out_ptr, B, Hp, T,
                        KB: tl.constexpr, NC: tl.constexpr, BM: tl.constexpr,
                        BN: tl.constexpr, PREC: tl.constexpr):
        g = tl.program_id(0).to(tl.int64)
        rows = tl.program_id(1) * BM + tl.arange(0, BM)
        live = rows < B
        k, u = tl.arange(0, KB), tl.arange(0, BN)
        x = tl.load(x_ptr + (g * B + rows[:, None]) * KB + k[None, :], mask=live[:, None],
                    other=0.0)
        sub = tl.load(sub_ptr + g * B + rows, mask=live, other=0)
        acc = tl.zeros((BM, NC), dtype=tl.float32)
        for j0 in range(0, Hp, BN):
            j = j0 + u
            h = tl.maximum(_pre(x, sub, wx_ptr, c_ptr, g, j, Hp, T, k, PREC), 0.0)
            net = tl.load(net_ptr + j)
            w0 = tl.load(w2_ptr + (g * Hp + j) * 2)
            w1 = tl.load(w2_ptr + (g * Hp + j) * 2 + 1)
            block = tl.trans(_selector(net, NC, 0) * w0[None, :]
                             + _selector(net, NC, 1) * w1[None, :])             # BN × NC
            acc += _dot(h.to(x.dtype), block.to(x.dtype), PREC)
        tl.store(out_ptr + (g * B + rows[:, None]) * NC + tl.arange(0, NC)[None, :], acc,
                 mask=live[:, None])

    @triton.jit
    def _subtask_ranks(sub, sub_next, live, BM: tl.constexpr):
        """Each sample's rank (BM) among the tile's distinct runs of equal subtasks, the
        subtask of each rank (BM, -1 where unused), and the one-hot sample × rank matrix."""
        r = tl.arange(0, BM)
        step = (sub != sub_next).to(tl.int32)                  # a new run starts after b
        rank = tl.cumsum(step, 0) - step
        onehot = (rank[:, None] == r[None, :]) & live[:, None]
        of_rank = tl.max(tl.where(onehot, sub[:, None], -1), 0)
        return onehot, of_rank

    @triton.jit
    def _backward_kernel(x_ptr, sub_ptr, wx_ptr, c_ptr, w2_ptr, net_ptr, gz_ptr, dwx_ptr,
                         dc_ptr, dw2_ptr, B, Hp, T, KB: tl.constexpr, NC: tl.constexpr,
                         NW: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                         S: tl.constexpr, PREC: tl.constexpr):
        g = tl.program_id(0).to(tl.int64)
        j = tl.program_id(1) * BN + tl.arange(0, BN)
        k, r = tl.arange(0, KB), tl.arange(0, BM)
        net = tl.load(net_ptr + j)
        w0 = tl.load(w2_ptr + (g * Hp + j) * 2)
        w1 = tl.load(w2_ptr + (g * Hp + j) * 2 + 1)
        # the block's units feed networks n0 … n0 + NW/2 − 1 (sorted): only those logits
        n0 = tl.min(tl.where(net >= 0, net, 1 << 20), 0)
        cols = 2 * n0 + tl.arange(0, NW)
        pick0, pick1 = _selector(net - n0, NW, 0), _selector(net - n0, NW, 1)
        w_out = (pick0 * w0[None, :] + pick1 * w1[None, :]).to(gz_ptr.dtype.element_ty)
        acc_w = tl.zeros((BN, KB), dtype=tl.float32)
        acc_hz = tl.zeros((BN, NW), dtype=tl.float32)                  # hᵀ·∂z
        share = tl.cdiv(tl.cdiv(B, S), BM) * BM
        lo = tl.program_id(2) * share
        hi = tl.minimum(lo + share, B)
        for r0 in range(lo, hi, BM):
            rows = r0 + r
            live = rows < hi
            x = tl.load(x_ptr + (g * B + rows[:, None]) * KB + k[None, :], mask=live[:, None],
                        other=0.0)
            sub = tl.load(sub_ptr + g * B + rows, mask=live, other=0)
            pre = _pre(x, sub, wx_ptr, c_ptr, g, j, Hp, T, k, PREC)
            h = tl.maximum(pre, 0.0)
            gz = tl.load(gz_ptr + (g * B + rows[:, None]) * NC + cols[None, :],
                         mask=live[:, None] & (cols < NC)[None, :], other=0.0)
            acc_hz += _dot(tl.trans(h.to(gz.dtype)), gz, PREC)
            g_h = _dot(gz, w_out, PREC)                  # ∂z of each unit's network · w_out
            g_pre = tl.where(pre > 0, g_h, 0.0).to(x.dtype)
            acc_w += _dot(tl.trans(g_pre), x, PREC)
            sub_next = tl.load(sub_ptr + g * B + rows + 1, mask=rows + 1 < hi, other=-1)
            onehot, of_rank = _subtask_ranks(sub, sub_next, live, BM)
            per_rank = _dot(tl.trans(onehot.to(tl.float32).to(x.dtype)), g_pre, PREC)   # BM × BN
            tl.atomic_add(dc_ptr + (g * Hp + j[None, :]) * T + of_rank[:, None], per_rank,
                          mask=(of_rank >= 0)[:, None], sem="relaxed")
        # relaxed: the sums are read only after the kernel
        tl.atomic_add(dwx_ptr + (g * Hp + j[:, None]) * KB + k[None, :], acc_w, sem="relaxed")
        tl.atomic_add(dw2_ptr + (g * Hp + j) * 2, tl.sum(acc_hz * tl.trans(pick0), 1),
                      sem="relaxed")
        tl.atomic_add(dw2_ptr + (g * Hp + j) * 2 + 1, tl.sum(acc_hz * tl.trans(pick1), 1),
                      sem="relaxed")

    def _config(BM, BN, warps, stages, **more):
        return triton.Config(dict(BM=BM, BN=BN, **more), num_warps=warps, num_stages=stages)

    #: the configurations autotuned on CUDA, (BM, BN, warps, stages[, batch shares S]):
    #: those that compile for sm90 with no or few register spills
    #: (``python benchmarks/triton_sm90.py``; 4 warps spilled 0.1–0.9 KB in the backward)
    FORWARD_CONFIGS = [_config(64, 64, 8, 2), _config(128, 64, 8, 2), _config(128, 64, 8, 3),
                       _config(128, 128, 8, 2)]
    BACKWARD_CONFIGS = [_config(32, 64, 8, 2, S=8), _config(32, 128, 8, 2, S=8),
                        _config(32, 64, 8, 2, S=16), _config(64, 64, 8, 2, S=8),
                        _config(64, 64, 8, 1, S=16), _config(64, 128, 8, 2, S=4)]
    #: what a tuning is kept for (Triton 3.9 refuses a name the kernel does not take)
    _KEY = ["B", "Hp", "T", "KB", "NC", "PREC"]
    _GRADS = ["dwx_ptr", "dc_ptr", "dw2_ptr"]    # accumulated: zeroed before each trial

    def _tuned(forward, backward):
        return (triton.autotune(forward, key=_KEY, cache_results=True)(_forward_kernel),
                triton.autotune(backward, key=_KEY + ["NW"], reset_to_zero=_GRADS,
                                cache_results=True)(_backward_kernel))

    #: the kernels by how they run: bf16 on CUDA, autotuned; float32 products on CUDA (no
    #: tensor-core bf16 path, registers spill: one small tile, for checks); the interpreter
    _KERNELS = {"tuned": _tuned(FORWARD_CONFIGS, BACKWARD_CONFIGS),
                "float32": _tuned([_config(32, 32, 8, 1)], [_config(32, 32, 8, 1, S=8)]),
                "interp": _tuned([_config(64, 128, 4, 2)], [_config(64, 128, 4, 2, S=1)])}
    # the backward's window onto the logits assumes unit blocks within aligned blocks
    assert all(UNIT_ALIGN % c.kwargs["BN"] == 0
               for pair in _KERNELS.values() for kernel in pair for c in kernel.configs)


def _contiguous(*tensors) -> None:
    """The kernels index their inputs as dense row-major arrays: refuse any other."""
    if not all(t.is_contiguous() for t in tensors):
        raise InputError("the Triton kernels need contiguous inputs")


def _most_networks(net: torch.Tensor) -> int:
    """The most networks that the units of one aligned block of :data:`UNIT_ALIGN` feed
    (``net`` sorted, padding −1): the backward's window onto the logits' gradient is
    twice that many columns."""
    most = 0
    for block in net.view(-1, UNIT_ALIGN).tolist():
        fed = [n for n in block if n >= 0]
        most = max(most, fed[-1] - fed[0] + 1 if fed else 0)
    return most


@dataclass
class FusedLayer:
    """The hidden layer of G groups of networks (``Hg`` units feeding ``Mg`` networks per
    group, unit j of a group feeding network ``net[j]`` of it), ``T`` subtasks and
    ``n_bits`` bits, as the two kernels see it: inputs G × B × KB ([bits 1 zeros]), the
    bits' weights G × KB × Hp, the control rows G × T × Hp (both in the product dtype),
    output weights G × Hp × 2 (float32); units padded to Hp with network -1. The forward
    writes NC logit columns per sample; a backward program reads the NW of them that its
    units feed."""
    G: int
    Hg: int
    Mg: int
    T: int
    n_bits: int
    net: torch.Tensor
    dtype: torch.dtype
    prec: str
    NW: int

    @classmethod
    def build(cls, net: torch.Tensor, G: int, Mg: int, T: int, n_bits: int, precision: str):
        """The layer for ``net`` (Hg, the network of each unit in a group; every group is
        laid out alike) in ``precision`` (fp32, tf32, bf16)."""
        require(net.device)
        cuda = net.device.type == "cuda"
        prec = {"fp32": "ieee", "tf32": "tf32", "bf16": "bf16"}[precision] if cuda else "interp"
        Hg = net.shape[0]
        padded = net.new_full((-(-Hg // UNIT_ALIGN) * UNIT_ALIGN,), -1, dtype=torch.int32)
        padded[:Hg] = net
        return cls(G, Hg, Mg, T, n_bits, padded, matmul_dtype(precision), prec,
                   NW=min(_pow2(2 * Mg), _pow2(2 * _most_networks(padded))))

    @property
    def kernels(self) -> str:
        """Which of :data:`_KERNELS`: the interpreter's, bf16 autotuned, or float32's."""
        return {"interp": "interp", "bf16": "tuned"}.get(self.prec, "float32")

    @property
    def Hp(self) -> int:
        return self.net.shape[0]

    @property
    def KB(self) -> int:
        return _pow2(self.n_bits + 1)

    @property
    def NC(self) -> int:
        """Logit columns: two per network of a group, padded."""
        return _pow2(2 * self.Mg)

    def inputs(self, sub: torch.Tensor, bits: torch.Tensor, y: torch.Tensor):
        """The batch (subtasks G × B, bits G × B × n_bits, labels G × B) sorted by subtask
        within each group (fewer control-row sums per tile; the loss is a mean, so the
        order is immaterial) as (x G × B × KB, subtasks int32, labels)."""
        sub, order = sub.sort(dim=1)
        bits = bits.gather(1, order[..., None].expand_as(bits))
        x = F.pad(bits.to(self.dtype), (0, self.KB - self.n_bits))
        x[..., self.n_bits] = 1
        return x, sub.to(torch.int32), y.gather(1, order)

    def pack(self, w_in: torch.Tensor, b_in: torch.Tensor, w_out: torch.Tensor):
        """The parameters (``w_in`` H × (T + n_bits), control columns first; ``b_in``;
        ``w_out`` H × 2) as (bits' weights, control rows, output weights)."""
        G, Hg, Hp, T, n = self.G, self.Hg, self.Hp, self.T, self.n_bits
        w = w_in.view(G, Hg, T + n)
        wx = torch.cat([w[..., T:], b_in.view(G, Hg, 1)], -1).transpose(1, 2)
        wx = F.pad(wx, (0, Hp - Hg, 0, self.KB - n - 1)).to(self.dtype).contiguous()
        ctrl = F.pad(w[..., :T].transpose(1, 2), (0, Hp - Hg)).to(self.dtype).contiguous()
        w2 = F.pad(w_out.view(G, Hg, 2), (0, 0, 0, Hp - Hg)).float().contiguous()
        return wx, ctrl, w2

    def forward(self, x, sub, wx, ctrl, w2) -> torch.Tensor:
        """Logits G × B × NC (float32; column 2m + c is network m's logit c; no b_out)."""
        G, B = sub.shape
        out = torch.empty(G, B, self.NC, dtype=torch.float32, device=x.device)
        _contiguous(x, sub, wx, ctrl, w2)
        kernel = _KERNELS[self.kernels][0]
        kernel[lambda m: (G, triton.cdiv(B, m["BM"]))](
            x, sub, wx, ctrl, w2, self.net, out, B, self.Hp, self.T, KB=self.KB, NC=self.NC,
            PREC=self.prec)
        return out

    def backward(self, x, sub, wx, ctrl, w2, gz):
        """Gradients from the logits' ``gz`` (G × B × NC, the product dtype): of the bits'
        weights with the bias (G × Hp × KB, unit-major), of the control rows (G × Hp × T)
        and of the output weights (G × Hp × 2), float32."""
        G, B = sub.shape
        dev, f32 = x.device, torch.float32
        dwx = torch.zeros(G, self.Hp, self.KB, dtype=f32, device=dev)
        dc = torch.zeros(G, self.Hp, self.T, dtype=f32, device=dev)
        dw2 = torch.zeros(G, self.Hp, 2, dtype=f32, device=dev)
        _contiguous(x, sub, wx, ctrl, w2, gz)
        kernel = _KERNELS[self.kernels][1]
        kernel[lambda m: (G, self.Hp // m["BN"], m["S"])](
            x, sub, wx, ctrl, w2, self.net, gz, dwx, dc, dw2, B, self.Hp, self.T, KB=self.KB,
            NC=self.NC, NW=self.NW, PREC=self.prec)
        return dwx, dc, dw2
