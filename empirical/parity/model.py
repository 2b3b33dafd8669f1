"""Many MLPs trained as one module (the fused design measured on an H100; see BENCHMARKS.md).

All networks' first-layer units sit side by side in one wide layer, ``w_in`` (H × in_dim,
H = Σ widths), so one matrix product with the one-hot-plus-bits input serves every network
that sees the same batch. The output layer is one product with a block-diagonal matrix
built from the per-unit output weights ``w_out`` (H × 2): unit j of network m only feeds
network m's logits. Hidden-to-hidden layers (depth > 1) are batched matrix products over
networks padded to the largest width; padded weights are masked to zero. Summing the
networks' losses gives every network exactly its own gradient, and Adam is elementwise, so
fused training is mathematically the same as training each network alone.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from common.errors import InputError


class MLP(nn.Module):
    """A standalone ReLU MLP: ``depth`` hidden layers of ``width`` units, 2 output logits."""

    def __init__(self, in_dim: int, width: int, depth: int = 1, out_dim: int = 2):
        super().__init__()
        dims = [in_dim] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.width, self.depth = in_dim, width, depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]


def _uniform_(t: torch.Tensor, fan_in: int, generator: torch.Generator) -> None:
    """PyTorch's default nn.Linear init (weights and biases U(±1/sqrt(fan_in)))."""
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        t.copy_(torch.empty(t.shape, dtype=t.dtype).uniform_(-bound, bound, generator=generator))


class FusedMLP(nn.Module):
    """``len(widths)`` MLPs of one depth as a single module.

    ``forward(x)`` gives every network's logits for a shared input; ``forward(xs, groups=G)``
    feeds block g of networks its own input ``xs[g]`` (see :meth:`forward`).
    """

    def __init__(self, in_dim: int, widths, depth: int = 1, out_dim: int = 2):
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1:
            raise InputError(f"widths must be positive integers, got {widths}")
        if depth < 1:
            raise InputError(f"depth must be >= 1, got {depth}")
        self.in_dim, self.widths, self.depth, self.out_dim = in_dim, widths, depth, out_dim
        M, H, Hmax = len(widths), sum(widths), max(widths)
        offsets = np.concatenate([[0], np.cumsum(widths)])
        self.offsets = [int(o) for o in offsets]
        unit_net = np.repeat(np.arange(M), widths)
        unit_pos = np.arange(H) - offsets[unit_net]
        self.register_buffer("unit_net", torch.as_tensor(unit_net), persistent=False)
        self.register_buffer("unit_pos", torch.as_tensor(unit_pos), persistent=False)
        mask = (torch.arange(Hmax)[None, :] < torch.as_tensor(widths)[:, None]).float()
        self.register_buffer("mask", mask, persistent=False)
        self.w_in = nn.Parameter(torch.zeros(H, in_dim))
        self.b_in = nn.Parameter(torch.zeros(H))
        self.w_hidden = nn.ParameterList(
            [nn.Parameter(torch.zeros(M, Hmax, Hmax)) for _ in range(depth - 1)])
        self.b_hidden = nn.ParameterList(
            [nn.Parameter(torch.zeros(M, Hmax)) for _ in range(depth - 1)])
        self.w_out = nn.Parameter(torch.zeros(H, out_dim))
        self.b_out = nn.Parameter(torch.zeros(M, out_dim))

    @property
    def n_networks(self) -> int:
        return len(self.widths)

    def init_network(self, i: int, generator: torch.Generator) -> None:
        """Initialise network ``i`` like a fresh standalone :class:`MLP` (PyTorch's default
        init), drawing from ``generator`` in the order of that MLP's layers."""
        mlp = self._random_mlp(i, generator)
        self.load_network(i, mlp)

    def _random_mlp(self, i: int, generator: torch.Generator) -> MLP:
        mlp = MLP(self.in_dim, self.widths[i], self.depth, self.out_dim)
        for lin in mlp.linears():
            _uniform_(lin.weight, lin.in_features, generator)
            _uniform_(lin.bias, lin.in_features, generator)
        return mlp

    def _slices(self, i: int):
        return slice(self.offsets[i], self.offsets[i + 1]), self.widths[i]

    @torch.no_grad()
    def load_network(self, i: int, mlp: MLP) -> None:
        """Copy a standalone MLP's parameters into network ``i``."""
        units, w = self._slices(i)
        lins = mlp.linears()
        self.w_in[units] = lins[0].weight.to(self.w_in)
        self.b_in[units] = lins[0].bias.to(self.b_in)
        for l, lin in enumerate(lins[1:-1]):
            self.w_hidden[l][i].zero_()
            self.b_hidden[l][i].zero_()
            self.w_hidden[l][i, :w, :w] = lin.weight.to(self.w_in)
            self.b_hidden[l][i, :w] = lin.bias.to(self.w_in)
        self.w_out[units] = lins[-1].weight.T.to(self.w_out)
        self.b_out[i] = lins[-1].bias.to(self.b_out)

    @torch.no_grad()
    def network(self, i: int) -> MLP:
        """Network ``i`` as a standalone :class:`MLP` (a copy, on the CPU, float32)."""
        units, w = self._slices(i)
        mlp = MLP(self.in_dim, w, self.depth, self.out_dim)
        lins = mlp.linears()
        lins[0].weight.copy_(self.w_in[units].float().cpu())
        lins[0].bias.copy_(self.b_in[units].float().cpu())
        for l, lin in enumerate(lins[1:-1]):
            lin.weight.copy_(self.w_hidden[l][i, :w, :w].float().cpu())
            lin.bias.copy_(self.b_hidden[l][i, :w].float().cpu())
        lins[-1].weight.copy_(self.w_out[units].T.float().cpu())
        lins[-1].bias.copy_(self.b_out[i].float().cpu())
        return mlp

    def forward(self, x: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """Logits of every network.

        ``x`` (B × in_dim): one input shared by all networks → logits (B × M × 2).
        ``x`` (G × B × in_dim) with ``groups=G``: network block g (networks g·M/G … (g+1)·M/G−1,
        which must have the same widths in every block) sees ``x[g]`` → (G × B × M/G × 2).
        All blocks go through batched matrix products, without a loop over blocks.
        """
        shared = x.dim() == 2
        if shared:
            x = x[None]
        G, M, H = groups, self.n_networks, self.offsets[-1]
        if x.shape[0] != G or M % G:
            raise InputError(f"x has {x.shape[0]} blocks for groups={G} and {M} networks")
        Mg, Hg = M // G, H // G
        if G > 1 and self.widths[:Mg] * G != self.widths:
            raise InputError("groups need the same widths in every block of networks")
        if G == 1:   # one product with the one-hot-plus-bits input (the measured design)
            h = F.relu(F.linear(x, self.w_in, self.b_in))                      # 1 × B × H
        else:
            w_in = self.w_in.view(G, Hg, self.in_dim).transpose(1, 2)
            h = F.relu(torch.baddbmm(self.b_in.view(G, 1, Hg), x, w_in))     # G × B × Hg
        if self.depth > 1:
            B = h.shape[1]
            hp = h.new_zeros(M, self.mask.shape[1], B).index_put(
                (self.unit_net, self.unit_pos), h.transpose(1, 2).reshape(H, B))
            for w, b in zip(self.w_hidden, self.b_hidden):
                hp = F.relu(torch.baddbmm(b[:, :, None], w * self.mask[:, :, None], hp)) \
                    * self.mask[:, :, None]
            h = hp[self.unit_net, self.unit_pos].view(G, Hg, B).transpose(1, 2)
        net = self.unit_net[:Hg]                                                  # local to a block
        units = torch.arange(Hg, device=h.device)
        block = self.w_out.new_zeros(Hg, Mg, G, self.out_dim).index_put(
            (units, net), self.w_out.view(G, Hg, self.out_dim).transpose(0, 1))
        block = block.permute(2, 0, 1, 3).reshape(G, Hg, Mg * self.out_dim)
        logits = torch.bmm(h, block.to(h.dtype)).view(G, -1, Mg, self.out_dim) \
            + self.b_out.view(G, 1, Mg, self.out_dim)
        return logits[0] if shared else logits
