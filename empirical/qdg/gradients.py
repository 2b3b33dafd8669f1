"""Per-sample loss gradients, vectorised with ``torch.func`` (``vmap`` over ``grad``).

QDG (Michaud et al. 2023, section 5) compares samples by the direction of their loss
gradient. Each sample's gradient is computed once, in chunks of ``chunk_size`` samples by
``vmap(grad(loss))``, never by one backward pass per sample. For large models the gradients
can be projected to ``project_dim`` dimensions with a seeded Gaussian (Johnson–Lindenstrauss)
matrix, which preserves their cosine similarities to about ``1/sqrt(project_dim)``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from common.errors import InputError

#: module types whose parameters QDG leaves out by default (embeddings and normalisation)
EXCLUDED_MODULES: tuple[type[nn.Module], ...] = (
    nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
    nn.modules.batchnorm._NormBase, getattr(nn, "RMSNorm", nn.LayerNorm))


def select_parameters(model: nn.Module, names: Sequence[str] | None = None) -> list[str]:
    """Names of the parameters whose gradients QDG uses.

    ``names=None`` takes every trainable parameter except those of embedding and
    normalisation layers (the paper's choice); otherwise ``names`` is checked and returned.
    """
    all_names = [n for n, p in model.named_parameters() if p.requires_grad]
    if names is not None:
        unknown = sorted(set(names) - set(all_names))
        if unknown:
            raise InputError(f"params: unknown parameter names {unknown}")
        if not names:
            raise InputError("params: empty selection")
        return [n for n in all_names if n in set(names)]
    skip = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, EXCLUDED_MODULES):
            for p_name, _ in mod.named_parameters(recurse=False):
                skip.add(f"{mod_name}.{p_name}" if mod_name else p_name)
    chosen = [n for n in all_names if n not in skip]
    if not chosen:
        raise InputError("model has no parameters outside embedding/normalisation layers")
    return chosen


def cross_entropy_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Default loss: cross-entropy in nats of logits ``output`` (…, C), mean over samples.

    Written as softplus(logsumexp_{j≠y}(z_j − z_y)), in float64, rather than as
    ``F.cross_entropy``: its gradient softmax − onehot computes ∂L/∂z_y = p_y − 1, which
    rounds to exactly 0 for a confident sample while ∂L/∂z_j stays e^-margin, so the
    gradient loses the label symmetry ∂L/∂z_y = −Σ_j ∂L/∂z_j that the gradient directions
    (and ``margin_affinity``) rest on. Here ∂L/∂z_y = −sigmoid(·) exactly. Same value."""
    return nn.functional.softplus(_rival_margin(output, target)).mean()


def _rival_margin(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """r = logsumexp_{j≠y}(z_j − z_y) per sample, in float64: the cross-entropy is
    softplus(r)."""
    z = output.double()
    zy = z.gather(-1, target[..., None])
    is_y = torch.arange(z.shape[-1], device=z.device) == target[..., None]
    return torch.logsumexp((z - zy).masked_fill(is_y, float("-inf")), dim=-1)


def log_cross_entropy_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log of :func:`cross_entropy_loss`, per sample (summed): its gradient ∇L_i / L_i has
    the direction of ∇L_i, which is all QDG uses, at O(1) size. A sample with margin m has
    ∇L_i ~ e^-m, 0 in float32 beyond m ≈ 100 nats (and in float64 beyond ≈ 745); log L_i
    = log softplus(r) ≈ r there, r = logsumexp_{j≠y}(z_j − z_y) = −m, computed as r below
    r = −30 (where the two agree to 1e-13)."""
    r = _rival_margin(output, target)
    return torch.where(r < -30.0, r, torch.log(nn.functional.softplus(r.clamp(min=-30.0)))).sum()


class GaussianProjection:
    """A seeded ``n_params × dim`` Gaussian matrix with entries N(0, 1/dim).

    Made in blocks of ``block_rows`` rows, block b from its own generator seeded by
    (seed, b), so any rows can be drawn without the others. The whole matrix is kept when
    it takes at most ``max_bytes`` (4 · n_params · dim bytes in float32); above that (a
    70M-parameter model at dim 1024 would need 290 GB) the blocks are drawn again at each
    use, in memory O(block_rows · dim), with the same numbers.
    """

    def __init__(self, n_params: int, dim: int, seed: int = 0, device=None,
                 max_bytes: int = 1 << 30, block_rows: int = 1 << 16):
        if dim < 1:
            raise InputError(f"project_dim must be a positive integer, got {dim}")
        if n_params < 1:
            raise InputError(f"n_params must be a positive integer, got {n_params}")
        self.n_params, self.dim, self.seed, self.device = int(n_params), int(dim), seed, device
        self.block_rows = int(block_rows)
        n_blocks = -(-self.n_params // self.block_rows)
        self.matrix = torch.cat([self._block(b) for b in range(n_blocks)]) \
            if 4 * n_params * dim <= max_bytes else None

    def _block(self, b: int) -> torch.Tensor:
        state = np.random.SeedSequence([int(self.seed), b]).generate_state(1, dtype=np.uint64)[0]
        gen = torch.Generator(device="cpu").manual_seed(int(state) & (2**63 - 1))
        n = min(self.block_rows, self.n_params - b * self.block_rows)
        return (torch.randn(n, self.dim, generator=gen) / self.dim ** 0.5).to(self.device)

    def apply(self, g: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """g (m, width) times rows [offset, offset + width) of the matrix: (m, dim), in
        float32 (half-precision gradients are cast first)."""
        g = g.to(torch.float32)
        stop = offset + g.shape[1]
        if self.matrix is not None:
            return g @ self.matrix[offset:stop]
        r, out = self.block_rows, None
        for b in range(offset // r, (stop - 1) // r + 1):
            lo, hi = max(offset, b * r), min(stop, (b + 1) * r)
            term = g[:, lo - offset:hi - offset] @ self._block(b)[lo - b * r:hi - b * r]
            out = term if out is None else out + term
        return out

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        return self.apply(g, 0)


def per_sample_gradients(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *,
                         loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                         = cross_entropy_loss,
                         params: Sequence[str] | None = None, chunk_size: int = 256,
                         project_dim: int | None = None, seed: int = 0,
                         device: str | torch.device | None = None) -> torch.Tensor:
    """Loss gradients of every sample, flattened: float32 tensor (n_samples, n_params) or
    (n_samples, project_dim), on ``device`` (default: the model's device).

    ``loss_fn(output, target)`` gets one sample's output and target with a leading batch
    axis of 1 and returns a scalar. Parameters outside ``params`` (see
    :func:`select_parameters`) are held fixed. Raises ValueError for no samples,
    mismatched inputs/targets, or non-finite gradients (naming the first bad sample).
    """
    if inputs.shape[0] == 0:
        raise InputError("inputs: no samples")
    if targets.shape[0] != inputs.shape[0]:
        raise InputError(f"targets: {targets.shape[0]} targets for {inputs.shape[0]} inputs")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    names = select_parameters(model, params)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    state = {n: t.detach().to(device) for n, t in model.named_parameters()}
    state.update({n: t.detach().to(device) for n, t in model.named_buffers()})
    trained = {n: state.pop(n) for n in names}
    n_params = sum(t.numel() for t in trained.values())
    project = (GaussianProjection(n_params, project_dim, seed, device)
               if project_dim is not None else None)

    def sample_loss(p, x, y):
        out = functional_call(model, {**state, **p}, (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    grad_fn = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    n = inputs.shape[0]
    out = torch.empty(n, project_dim or n_params, dtype=torch.float32, device=device)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            g = grad_fn(trained, inputs[start:stop].to(device), targets[start:stop].to(device))
            offset = 0
            if project is not None:
                out[start:stop] = 0
            for k in names:                  # no concatenated copy: one block per parameter
                blk = g[k].reshape(stop - start, -1)
                width = blk.shape[1]
                if project is None:
                    out[start:stop, offset:offset + width] = blk
                else:
                    out[start:stop] += project.apply(blk, offset)
                offset += width
            del g
    finally:
        model.train(was_training)
    bad = ~torch.isfinite(out).all(dim=1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise InputError(f"gradients: {int(bad.sum())} sample(s) have NaN/inf gradients "
                         f"(first: sample {first})")
    return out


def per_sample_gradients_loop(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *,
                              loss_fn=cross_entropy_loss,
                              params: Sequence[str] | None = None) -> torch.Tensor:
    """The straightforward reference: one backward pass per sample (for tests and the
    benchmark only; :func:`per_sample_gradients` is the fast path)."""
    names = select_parameters(model, params)
    named = dict(model.named_parameters())
    plist = [named[n] for n in names]
    rows = []
    for i in range(inputs.shape[0]):
        loss = loss_fn(model(inputs[i:i + 1]), targets[i:i + 1])
        gs = torch.autograd.grad(loss, plist)
        rows.append(torch.cat([g.reshape(-1) for g in gs]))
    return torch.stack(rows)


class LinearGradientFactors:
    """Per-sample gradients of ``nn.Linear`` layers kept in factored form.

    For a linear layer y = W a + b, the gradient of sample i's loss is ∂L_i/∂W = δ_i a_iᵀ and
    ∂L_i/∂b = δ_i (δ_i = ∂L_i/∂y_i), so inner products of whole per-sample gradients are
    ⟨g_i, g_j⟩ = Σ_layers (δ_i·δ_j)(a_i·a_j + [bias]) — exact, without ever forming the
    n_params-long gradients (the "ghost" inner product). Stores, per layer, the inputs
    ``activations`` (n, in) and output gradients ``deltas`` (n, out).
    """

    def __init__(self, activations, deltas, has_bias):
        self.activations, self.deltas, self.has_bias = activations, deltas, has_bias
        self.n_samples = activations[0].shape[0]
        # one positive scale per sample, shared by its layers, so it leaves the direction
        # alone: a confident sample's deltas are ~e^-margin, and their float32 products
        # underflow to 0 (cosine 0) from margins of ~45 nats on
        amax = torch.stack([d.abs().amax(1) for d in deltas]).amax(0)
        scale = torch.where(amax > 0, amax, torch.ones_like(amax))[:, None]
        self._unit_deltas = [d / scale for d in deltas]

    def _gram(self, deltas, rows: slice, cols: slice) -> torch.Tensor:
        out = None
        for a, d, bias in zip(self.activations, deltas, self.has_bias):
            aa = a[rows] @ a[cols].T
            if bias:
                aa += 1.0
            term = (d[rows] @ d[cols].T) * aa
            out = term if out is None else out + term
        return out

    def gram(self, rows: slice, cols: slice) -> torch.Tensor:
        """⟨g_i, g_j⟩ for i in ``rows``, j in ``cols`` (float32 block)."""
        return self._gram(self.deltas, rows, cols)

    def _sq_norms(self, deltas) -> torch.Tensor:
        out = torch.zeros(self.n_samples, dtype=torch.float64)
        for a, d, bias in zip(self.activations, deltas, self.has_bias):
            aa = (a.double() ** 2).sum(1) + (1.0 if bias else 0.0)
            out += ((d.double() ** 2).sum(1) * aa).cpu()
        return out

    def sq_norms(self) -> torch.Tensor:
        """|g_i|² of every sample."""
        return self._sq_norms(self.deltas)

    def cosines(self, rows: slice, cols: slice) -> torch.Tensor:
        """cos(g_i, g_j) for i in ``rows``, j in ``cols`` (float32 block), from per-sample
        rescaled deltas (exact directions at any margin); ValueError for a zero gradient."""
        if not hasattr(self, "_inv_norms"):
            sq = self._sq_norms(self._unit_deltas)
            if bool((sq == 0).any()):
                raise InputError(f"gradients: sample {int((sq == 0).nonzero()[0, 0])} has a "
                                 "zero gradient (no direction)")
            self._inv_norms = (1.0 / sq.sqrt()).to(torch.float32).to(self.deltas[0].device)
        inv = self._inv_norms
        return self._gram(self._unit_deltas, rows, cols) * inv[rows, None] * inv[None, cols]


def linear_gradient_factors(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *,
                            loss_fn=cross_entropy_loss, params: Sequence[str] | None = None,
                            chunk_size: int = 4096) -> LinearGradientFactors:
    """Factored per-sample gradients (:class:`LinearGradientFactors`) of a model whose chosen
    parameters all belong to ``nn.Linear`` layers applied once to (batch, features) inputs,
    from one batched forward and backward per chunk. The model must treat samples
    independently (no batch statistics). ValueError otherwise, or for NaN gradients.
    """
    if inputs.shape[0] == 0:
        raise InputError("inputs: no samples")
    if targets.shape[0] != inputs.shape[0]:
        raise InputError(f"targets: {targets.shape[0]} targets for {inputs.shape[0]} inputs")
    names = set(select_parameters(model, params))
    layers = []
    for mod_name, mod in model.named_modules():
        own = {f"{mod_name}.{p}" if mod_name else p for p, _ in mod.named_parameters(recurse=False)}
        chosen = own & names
        if not chosen:
            continue
        if not isinstance(mod, nn.Linear) or (mod.bias is not None and len(chosen) != 2):
            raise InputError(f"params: {sorted(chosen)} is not a whole nn.Linear layer; use "
                             "per_sample_gradients for this model")
        layers.append(mod)
    device = next(model.parameters()).device
    acts = [[] for _ in layers]
    deltas = [[] for _ in layers]
    store: dict[int, torch.Tensor] = {}

    def fwd_hook(i):
        def hook(mod, inp, out):
            if inp[0].ndim != 2:
                raise InputError("linear_gradient_factors needs (batch, features) layer inputs")
            if i in store:
                raise InputError("linear_gradient_factors: a layer is applied more than once "
                                 "per forward (shared weights); use per_sample_gradients")
            store[i] = inp[0].detach()
            out.register_hook(lambda g: deltas[i].append(g.detach()))
        return hook

    handles = [m.register_forward_hook(fwd_hook(i)) for i, m in enumerate(layers)]
    per_sample = vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, inputs.shape[0], chunk_size):
            x = inputs[start:start + chunk_size].to(device)
            y = targets[start:start + chunk_size].to(device)
            with torch.enable_grad():
                out = model(x)
                for i in range(len(layers)):
                    acts[i].append(store.pop(i))
                torch.autograd.grad(per_sample(out, y).sum(),
                                    [p for m in layers for p in m.parameters()])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    factors = LinearGradientFactors([torch.cat(a) for a in acts], [torch.cat(d) for d in deltas],
                                    [m.bias is not None for m in layers])
    bad = ~torch.isfinite(factors.sq_norms())
    if bool(bad.any()):
        raise InputError(f"gradients: {int(bad.sum())} sample(s) have NaN/inf gradients "
                         f"(first: sample {int(bad.nonzero()[0, 0])})")
    return factors
