"""Multitask sparse parity (Michaud et al. 2023, section 3), generated on the device.

Example, with ``n_tasks=4, n_bits=6, k=3`` and subtask 2 whose subset is (0, 3, 5)::

    control (one-hot subtask)   data bits
    0 0 1 0                     1 0 1 1 0 1      →  label = parity(b0, b3, b5) = 1+1+1 mod 2 = 1

The network sees the 10 numbers ``[0,0,1,0, 1,0,1,1,0,1]`` as floats and predicts 2 logits.
With ``n_tasks=500, n_bits=100`` and one hidden layer of ``width`` units the parameter count is
``603·width + 2`` (600 inputs), the paper's N.
"""
from __future__ import annotations

import numpy as np
import torch

from common.errors import InputError


def _torch_seed(*keys: int) -> int:
    """A 63-bit torch seed derived from integer keys (SeedSequence: independent streams)."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


class SparseParityTask:
    """Multitask sparse parity with Zipfian subtask frequencies.

    Subtask i (0-based) is drawn with probability ∝ (i + offset)^-(alpha+1) (``alpha`` is the
    paper's α); its label is the parity of its own ``k``-subset of the ``n_bits`` data bits.
    The ``n_tasks`` subsets are distinct and fixed by ``seed``. Sampling runs on the device of
    the ``torch.Generator`` passed in, without a Python loop over subtasks.
    """

    def __init__(self, n_tasks: int = 500, n_bits: int = 100, k: int = 3, alpha: float = 0.4,
                 offset: int = 1, seed: int = 0):
        from math import comb
        if n_tasks < 1 or n_bits < 1 or k < 1:
            raise InputError("n_tasks, n_bits and k must be positive integers")
        if k > n_bits:
            raise InputError(f"k must be at most n_bits={n_bits}, got {k}")
        if comb(n_bits, k) < n_tasks:
            raise InputError(f"n_tasks={n_tasks} exceeds the {comb(n_bits, k)} distinct "
                             f"{k}-subsets of {n_bits} bits")
        if not alpha > -1:
            raise InputError(f"alpha must be > -1, got {alpha}")
        if offset < 1:
            raise InputError(f"offset must be >= 1, got {offset}")
        self.n_tasks, self.n_bits, self.k = int(n_tasks), int(n_bits), int(k)
        self.alpha, self.offset, self.seed = float(alpha), int(offset), int(seed)
        weights = (np.arange(self.n_tasks) + self.offset) ** -(self.alpha + 1.0)
        #: exact subtask probabilities (float64, sum 1)
        self.frequencies = weights / weights.sum()
        self._cdf = np.cumsum(self.frequencies)
        self._cdf[-1] = 1.0
        #: (n_tasks, k) int64 array of sorted, distinct bit subsets
        self.subsets = self._draw_subsets(np.random.default_rng(self.seed))
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def input_dim(self) -> int:
        """Length of one encoded input: n_tasks control bits + n_bits data bits."""
        return self.n_tasks + self.n_bits

    def n_params(self, width: int, depth: int = 1) -> int:
        """Parameters of an MLP of this input size with ``depth`` hidden layers of ``width``."""
        return (self.input_dim + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * 2

    def _draw_subsets(self, rng: np.random.Generator) -> np.ndarray:
        seen: set[tuple[int, ...]] = set()
        out = []
        while len(out) < self.n_tasks:
            s = tuple(sorted(rng.choice(self.n_bits, size=self.k, replace=False).tolist()))
            if s not in seen:
                seen.add(s)
                out.append(s)
        return np.asarray(out, dtype=np.int64)

    def _tables(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(torch.device(device))
        if key not in self._cache:
            self._cache[key] = (torch.as_tensor(self._cdf, dtype=torch.float64, device=device),
                                torch.as_tensor(self.subsets, device=device))
        return self._cache[key]

    def sample_raw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws as (subtask int64 (n,), bits uint8 (n, n_bits)) on the generator's device:
        subtasks by searchsorted of uniform draws in the CDF, bits uniform."""
        device = generator.device
        cdf, _ = self._tables(device)
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
        subtask = torch.searchsorted(cdf, u, right=True).clamp_(max=self.n_tasks - 1)
        bits = torch.randint(0, 2, (n, self.n_bits), generator=generator, device=device,
                             dtype=torch.uint8)
        return subtask, bits

    def label(self, subtask: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """Parity (int64 0/1) of each row's bits on its subtask's subset (gather, no loop)."""
        _, subsets = self._tables(bits.device)
        chosen = bits.gather(1, subsets[subtask])
        return (chosen.sum(1) % 2).long()

    def encode(self, subtask: torch.Tensor, bits: torch.Tensor,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The network input: one-hot subtask code followed by the bits, as ``dtype``."""
        x = torch.zeros(subtask.shape[0], self.input_dim, dtype=dtype, device=bits.device)
        x[:, self.n_tasks:] = bits
        x.scatter_(1, subtask[:, None], 1.0)
        return x

    def sample(self, n: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` encoded samples: (x float32 (n, input_dim), y int64 (n,), subtask int64 (n,))."""
        subtask, bits = self.sample_raw(n, generator)
        return self.encode(subtask, bits), self.label(subtask, bits), subtask

    def test_set(self, per_task: int, seed: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed test set, ``per_task`` samples of every subtask (subtask-major order), drawn
        from its own ``seed``: (subtask int64, bits uint8)."""
        if per_task < 1:
            raise InputError(f"per_task must be positive, got {per_task}")
        g = torch.Generator(device=device).manual_seed(_torch_seed(seed, self.seed, 7))
        subtask = torch.arange(self.n_tasks, device=device).repeat_interleave(per_task)
        bits = torch.randint(0, 2, (subtask.shape[0], self.n_bits), generator=g, device=device,
                             dtype=torch.uint8)
        return subtask, bits

    def describe(self) -> dict:
        """The constructor arguments (the task's config)."""
        return dict(n_tasks=self.n_tasks, n_bits=self.n_bits, k=self.k, alpha=self.alpha,
                    offset=self.offset, seed=self.seed)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.describe().items())
        return f"SparseParityTask({args})"
