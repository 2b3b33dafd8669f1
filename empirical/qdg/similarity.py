"""Cosine similarity of gradients and the angular affinity QDG clusters on.

Rows are L2-normalised once (or, for factored linear-layer gradients, the exact inner
products are formed block by block from the factors, never the gradients themselves); the similarity is built block by block on the gradients'
device (only the upper block triangle is computed, then mirrored, so the result is exactly
symmetric with unit diagonal), and copied to a float32 NumPy array on the CPU. The affinity
is ``1 − arccos(clip(cos, −1, 1)) / π`` (Michaud et al. 2023, section 5): 1 for parallel
gradients, 1/2 for orthogonal ones, 0 for opposite ones.
"""
from __future__ import annotations

import numpy as np
import torch

from common import resources
from common.errors import InputError


def normalize_rows(gradients) -> torch.Tensor:
    """Float32 rows scaled to unit L2 norm; ValueError if a row is zero or non-finite."""
    g = torch.as_tensor(gradients)
    if g.ndim != 2:
        raise InputError(f"gradients must be 2-d (n_samples, n_features), got shape {tuple(g.shape)}")
    if g.shape[0] == 0:
        raise InputError("gradients: no samples")
    if not g.is_floating_point():
        g = g.to(torch.float32)
    if not bool(torch.isfinite(g).all()):
        bad = int((~torch.isfinite(g).all(dim=1)).nonzero()[0, 0])
        raise InputError(f"gradients contain NaN/inf (first: sample {bad})")
    # scale each row by its largest entry first, in the input's precision: the float32
    # norm of a row of tiny or huge entries would underflow or overflow
    scale = g.abs().amax(dim=1, keepdim=True)
    if bool((scale == 0).any()):
        bad = int((scale[:, 0] == 0).nonzero()[0, 0])
        raise InputError(f"gradients: sample {bad} has a zero gradient (no direction)")
    g = (g / scale).to(torch.float32)
    return g / torch.linalg.vector_norm(g, dim=1, keepdim=True)


def _blocks(n: int, block_size: int):
    return [(s, min(s + block_size, n)) for s in range(0, n, block_size)]


def _factored_products(factors):
    """Block products of unit gradients from :class:`LinearGradientFactors`."""
    return factors.n_samples, lambda a, b, c, d: factors.cosines(slice(a, b), slice(c, d))


def _similarity(gradients, transform, block_size: int) -> np.ndarray:
    from .gradients import LinearGradientFactors
    if block_size < 1:
        raise InputError(f"block_size must be a positive integer, got {block_size}")
    if isinstance(gradients, LinearGradientFactors):
        n, product = _factored_products(gradients)
    else:
        g = normalize_rows(gradients)
        n = g.shape[0]
        product = lambda a, b, c, d: g[a:b] @ g[c:d].T      # noqa: E731
    check_affinity_memory(n)
    out = np.empty((n, n), dtype=np.float32)
    blocks = _blocks(n, block_size)
    for i, (a, b) in enumerate(blocks):
        for c, d in blocks[i:]:
            blk = transform(product(a, b, c, d).clamp_(-1.0, 1.0)).cpu().numpy()
            if c == a:
                # exact symmetry inside diagonal blocks, after the transform: a vectorised
                # arccos and its scalar tail can differ by an ulp for one input, ~3e-4
                # after arccos near cos = 1 (a precomputed-affinity check then refused it)
                blk = 0.5 * (blk + blk.T)
            out[a:b, c:d] = blk
            if c != a:
                out[c:d, a:b] = blk.T
    np.fill_diagonal(out, 1.0)
    return out


#: bytes per entry of the n × n affinity, with the spectral clustering's copies of it
AFFINITY_BYTES = 24


def check_affinity_memory(n: int) -> None:
    """Refuse an n × n affinity (and its spectral clustering) that would not fit in memory,
    before allocating it."""
    resources.check_memory(AFFINITY_BYTES * float(n) ** 2,
                           f"the {n:,} × {n:,} affinity of {n:,} samples and its clustering",
                           "lower the number of samples")


def cosine_similarity(gradients, block_size: int = 4096) -> np.ndarray:
    """Cosine similarity (n × n float32, symmetric, unit diagonal) of gradient rows (a
    tensor) or of factored linear-layer gradients (:class:`LinearGradientFactors`)."""
    return _similarity(gradients, lambda c: c, block_size)


def angular_affinity(gradients, block_size: int = 4096) -> np.ndarray:
    """QDG's affinity ``1 − arccos(cos)/π`` of gradient rows (n × n float32 in [0, 1],
    symmetric, unit diagonal), computed in blocks of ``block_size`` rows on the device."""
    return _similarity(gradients, lambda c: 1.0 - torch.arccos(c) / torch.pi, block_size)
