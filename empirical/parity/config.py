"""Typed configuration of a parity run: task, model and training, composed into one
:class:`RunConfig` that is saved as ``config.json`` in the run directory and inside every
checkpoint (minGPT style: one dataclass per component)."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from common.errors import InputError

PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass
class TaskConfig:
    """Multitask sparse parity: ``n_tasks`` subtasks on ``n_bits`` data bits, each the parity
    of its own ``k``-subset; subtask i is drawn with probability ∝ (i+offset)^-(alpha+1)
    (alpha is the paper's α). ``seed`` fixes the subsets."""
    n_tasks: int = 500
    n_bits: int = 100
    k: int = 3
    alpha: float = 0.4
    offset: int = 1
    seed: int = 0

    def validate(self) -> None:
        for name in ("n_tasks", "n_bits", "k"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.k > self.n_bits:
            raise InputError(f"k must be at most n_bits ({self.n_bits}), got {self.k}")
        if math.comb(self.n_bits, self.k) < self.n_tasks:
            raise InputError(f"n_tasks={self.n_tasks} exceeds the {math.comb(self.n_bits, self.k)}"
                             f" distinct {self.k}-subsets of {self.n_bits} bits")
        if not self.alpha > -1:
            raise InputError(f"alpha must be > -1 (frequencies ∝ i^-(alpha+1)), got {self.alpha}")
        if self.offset < 1:
            raise InputError(f"offset must be >= 1, got {self.offset}")


@dataclass
class ModelConfig:
    """MLPs of one ``depth`` (hidden layers) and the given ``widths`` (ReLU, PyTorch's default
    initialisation, 2 output logits)."""
    widths: list[int] = field(default_factory=lambda: [10, 100])
    depth: int = 1

    def validate(self) -> None:
        if not self.widths:
            raise InputError("widths must not be empty")
        if any(int(w) < 1 for w in self.widths):
            raise InputError(f"widths must be positive integers, got {self.widths}")
        if len(set(map(int, self.widths))) != len(self.widths):
            raise InputError(f"widths must not repeat a value (repeats would train identical "
                             f"networks), got {self.widths}")
        self.widths = [int(w) for w in self.widths]
        if self.depth < 1:
            raise InputError(f"depth must be >= 1, got {self.depth}")


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. ``D`` lists training-set sizes (None: the online regime,
    fresh samples every step); the networks trained are widths × seeds × D.

    ``seeds`` seed each network's initialisation and its data stream; networks that share a
    seed and a D share their batches (and, for finite D, their training set).
    ``eval_points`` and ``checkpoints`` are counts of log-spaced steps (step 0 and the last
    step always included). ``precision`` is "fp32" (TF32 off), "tf32" or "bf16" (autocast).
    """
    steps: int = 200_000
    batch: int = 20_000
    lr: float = 1e-3
    seeds: list[int] = field(default_factory=lambda: [0])
    D: list[int] | None = None
    eval_points: int = 100
    checkpoints: int = 20
    test_per_task: int = 1000
    test_seed: int = 12345
    eval_chunk: int = 50_000
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False

    def validate(self) -> None:
        for name in ("steps", "batch", "eval_points", "checkpoints", "test_per_task", "eval_chunk"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr}")
        if not self.seeds:
            raise InputError("seeds must not be empty")
        if self.D is not None and (not self.D or any(int(d) < 1 for d in self.D)):
            raise InputError(f"D must be a non-empty list of positive sizes, got {self.D}")
        for name in ("seeds", "D"):
            values = getattr(self, name) or []
            if len({int(v) for v in values}) != len(values):
                raise InputError(f"{name} must not repeat a value, got {values}")
        self.seeds = [int(v) for v in self.seeds]
        self.D = None if self.D is None else [int(v) for v in self.D]
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass
class RunConfig:
    """The whole run: what ``config.json`` holds and every checkpoint carries."""
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "RunConfig":
        self.task.validate()
        self.model.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        def build(klass, sub):
            names = {f.name for f in dataclasses.fields(klass)}
            unknown = set(sub) - names
            if unknown:
                raise InputError(f"unknown {klass.__name__} keys: {sorted(unknown)}")
            return klass(**sub)
        return cls(task=build(TaskConfig, d.get("task", {})),
                   model=build(ModelConfig, d.get("model", {})),
                   train=build(TrainConfig, d.get("train", {})))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))
