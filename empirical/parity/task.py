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


#: 2^32 - 1: the counter-based sampler works on 32-bit words held in int64 tensors
M32 = 0xFFFFFFFF
#: words hashed per sample: one for the subtask, then 32 data bits per word
_BITS_PER_WORD = 32
#: per finite training set, the table of strides (units modulo D) its epochs draw from
_N_STRIDES = 1024


def zipf_frequencies(n_tasks: int, alpha: float, offset: int = 1) -> np.ndarray:
    """Subtask probabilities ∝ (i + offset)^-(alpha+1), i = 0 … n_tasks−1 (float64, sum 1)."""
    weights = (np.arange(int(n_tasks)) + int(offset)) ** -(float(alpha) + 1.0)
    return weights / weights.sum()


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x · c) mod 2^32 for int64 tensors holding 0 ≤ x < 2^32, without int64 overflow (the
    constant is split in 16-bit halves, so every product stays below 2^48)."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & M32


def mix32(x: torch.Tensor) -> torch.Tensor:
    """The 32-bit integer hash "lowbias32" (C. Wellons, hash-prospector) on int64 tensors
    holding 32-bit words: a bijection of [0, 2^32) whose output bits each flip with
    probability ≈ 1/2 when any input bit flips. Exact integer arithmetic, so it gives the
    same words on every device and under ``torch.compile``."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _word(keys: int, *more: int) -> int:
    """A 32-bit key derived from integers (SeedSequence)."""
    seq = np.random.SeedSequence([int(k) & M32 for k in (keys, *more)])
    return int(seq.generate_state(1, np.uint32)[0])


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
        #: exact subtask probabilities (float64, sum 1)
        self.frequencies = zipf_frequencies(self.n_tasks, self.alpha, self.offset)
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
        """Parity (int64 0/1) of each row's bits on its subtask's subset (gather, no loop;
        any leading shape)."""
        _, subsets = self._tables(bits.device)
        chosen = bits.gather(-1, subsets[subtask])
        return (chosen.sum(-1) % 2).long()

    def encode(self, subtask: torch.Tensor, bits: torch.Tensor,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The network input: one-hot subtask code followed by the bits, as ``dtype``
        (any leading shape: ``subtask`` (…), ``bits`` (…, n_bits) → (…, input_dim))."""
        x = torch.zeros(*subtask.shape, self.input_dim, dtype=dtype, device=bits.device)
        x[..., self.n_tasks:self.input_dim] = bits
        x.scatter_(-1, subtask[..., None], 1.0)
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


class SweepSampler:
    """The batches of every group of networks of a sweep, drawn together as one batched
    operation per step (no loop over groups).

    A group is a data stream (α, seed, D): its networks see the same batches. Draws are
    counter-based: a sample's subtask and bits are hashes (:func:`mix32`) of the group's key
    and the sample's number, so a group's batch at step s is a pure function of (task, α,
    seed, D, batch, s). The same group trained alone or beside any others sees the same
    data, and resuming needs nothing but the step.

    - D = 0 (online): step s (1-based) takes the fresh samples numbered (s−1)·batch …
      s·batch − 1 of the group's endless stream.
    - D > 0: the training set is the group's samples 0 … D−1. The stream of positions
      p = (s−1)·batch + t runs through epochs e = p // D, each a permutation of the set:
      position o = p mod D of epoch e takes sample (a_e·o + c_e) mod D, with a stride a_e
      coprime to D (drawn from a table of 1 024 such strides) and an offset c_e both
      hashed from (group, e). Each epoch serves every sample exactly once; since a sample's
      content is a hash of its number, the samples a batch gathers are as random as those
      of a uniformly shuffled epoch.
    """

    def __init__(self, task: SparseParityTask, groups, batch: int, device="cpu"):
        groups = [dict(g) for g in groups]
        if not groups:
            raise InputError("a sweep needs at least one group")
        self.task, self.batch, self.groups = task, int(batch), groups
        self.device = torch.device(device)
        keys = [_word(g["seed"], g["D"], task.seed, round(float(g["alpha"]) * 1e6), 3)
                for g in groups]
        cdfs = np.stack([np.cumsum(zipf_frequencies(task.n_tasks, g["alpha"], task.offset))
                         for g in groups])
        cdfs[:, -1] = 1.0
        strides = np.stack([self._strides(int(g["D"]), k) for g, k in zip(groups, keys)])
        n_words = -(-task.n_bits // _BITS_PER_WORD)
        bit = np.arange(task.n_bits)
        as_t = lambda a, dt=torch.int64: torch.as_tensor(a, dtype=dt, device=self.device)
        self.keys = as_t(keys)[:, None]                               # G × 1
        self.D = as_t([int(g["D"]) for g in groups])[:, None]         # G × 1, 0 = online
        self.cdf = as_t(cdfs, torch.float64)                          # G × T
        self.strides = as_t(strides)                                  # G × 1024
        self.t = as_t(np.arange(self.batch))                          # B
        self.word_salt = as_t((np.arange(1, n_words + 1) * 0x9E3779B9) & M32)   # W
        self.bit_word, self.bit_shift = as_t(bit // _BITS_PER_WORD), as_t(bit % _BITS_PER_WORD)

    @staticmethod
    def _strides(D: int, key: int) -> np.ndarray:
        """``_N_STRIDES`` integers in [1, D) coprime to D (all ones for D ≤ 2 or online)."""
        if D <= 2:
            return np.ones(_N_STRIDES, dtype=np.int64)
        rng = np.random.default_rng([key, D, 5])
        out = np.empty(0, dtype=np.int64)
        while out.size < _N_STRIDES:
            a = rng.integers(1, D, size=2 * _N_STRIDES)
            out = np.concatenate([out, a[np.gcd(a, D) == 1]])
        return out[:_N_STRIDES]

    def sample_numbers(self, step) -> torch.Tensor:
        """G × B int64: which sample of its group's stream (online) or training set (D > 0)
        each batch position of ``step`` (an int, or a 0-d int64 tensor on the device)
        takes."""
        p = (step - 1) * self.batch + self.t                         # B
        D = self.D.clamp(min=1)
        epoch, o = p // D, p % D                                     # G × B
        he = mix32(self.keys ^ (epoch & M32))
        a = self.strides.gather(1, he % _N_STRIDES)
        c = mix32(he ^ 0x5BD1E995) % D
        return torch.where(self.D > 0, (a * o + c) % D, p.expand_as(o))

    def draw(self, step) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batches of ``step`` for all G groups: (subtask int64 G × B, bits uint8
        G × B × n_bits, label int64 G × B)."""
        n = self.sample_numbers(step)
        h = mix32(mix32(self.keys ^ (n >> 32)) ^ (n & M32))           # G × B: the sample
        u = (mix32(h).double() + 0.5) * 2.0 ** -32
        sub = torch.searchsorted(self.cdf, u, right=True).clamp_(max=self.task.n_tasks - 1)
        words = mix32(h[..., None] ^ self.word_salt)                  # G × B × W
        bits = ((words[..., self.bit_word] >> self.bit_shift) & 1).to(torch.uint8)
        return sub, bits, self.task.label(sub, bits)
