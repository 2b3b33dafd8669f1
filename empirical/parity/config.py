"""Typed configuration of a parity run: task, model and training, composed into one
:class:`RunConfig` that is saved as ``config.json`` in the run directory and inside every
checkpoint (minGPT style: one dataclass per component)."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from pathlib import Path

from common.errors import CorruptFileError, InputError

PRECISIONS = ("fp32", "tf32", "bf16")
#: how one optimizer step is executed (empirical.parity.steps): the autograd step of the
#: fused module, or the hand-written forward + backward + Adam, as eager kernels, compiled
#: as a whole, captured in a CUDA graph, or both
STEPS = ("eager", "manual", "compiled", "graphs", "compiled_graphs")
#: options of the written-out steps (empirical.parity.steps.loss_and_grads): ways to do the
#: same arithmetic in fewer memory passes or products, each checked against the fp32 eager
#: step like the steps themselves. ``gather_in``: the one-hot control part of the input is
#: a row lookup in the forward (the products run over the bits alone); ``gather_out``: the
#: output layer's backward is a per-unit lookup fused with the ReLU mask (no product with
#: the block-diagonal matrix); ``adam``: Adam inside the step's function (compiled with
#: it, so the gradients' copies and casts fuse into the update); ``autotune``: the
#: compiled steps with inductor's max-autotune (Triton GEMM templates with the ReLU and
#: the lookups fused into their epilogues; minutes of compilation); ``triton``: the hidden
#: layer forward and backward as two Triton kernels that never write the B × H activations
#: (empirical.parity.kernels; autotuned on CUDA, Triton's interpreter elsewhere)
STEP_OPTIONS = ("gather_in", "gather_out", "adam", "autotune", "triton")
#: where batches come from: "counter" (one batched draw for all groups, a pure function of
#: the step: empirical.parity.task.SweepSampler) or "streams" (one torch.Generator per group,
#: drawn group by group: the sampler of runs written before the counter sampler existed)
SAMPLERS = ("counter", "streams")
#: values that a saved config without the field had: runs written before these fields
#: existed load and resume exactly as they were trained
LEGACY_DEFAULTS = {"train": {"step": "eager", "sampler": "streams"}}


@dataclass
class TaskConfig:
    """Multitask sparse parity: ``n_tasks`` subtasks on ``n_bits`` data bits, each the parity
    of its own ``k``-subset; subtask i is drawn with probability ∝ (i+offset)^-(alpha+1)
    (alpha is the paper's α). ``seed`` fixes the subsets.

    ``alphas`` (optional) trains one sweep over several α at once: every α is a group of
    networks with its own subtask frequencies, on the same subsets and test set; ``alpha``
    must then be the first of them."""
    n_tasks: int = 500
    n_bits: int = 100
    k: int = 3
    alpha: float = 0.4
    offset: int = 1
    seed: int = 0
    alphas: list[float] | None = None

    @property
    def alpha_list(self) -> list[float]:
        """The α of every group: ``alphas``, or ``[alpha]``."""
        return [float(a) for a in self.alphas] if self.alphas is not None else [float(self.alpha)]

    def validate(self) -> None:
        for name in ("n_tasks", "n_bits", "k"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.k > self.n_bits:
            raise InputError(f"k must be at most n_bits ({self.n_bits}), got {self.k}")
        if math.comb(self.n_bits, self.k) < self.n_tasks:
            raise InputError(f"n_tasks={self.n_tasks} exceeds the {math.comb(self.n_bits, self.k)}"
                             f" distinct {self.k}-subsets of {self.n_bits} bits")
        if self.alphas is not None:
            self.alphas = [float(a) for a in self.alphas]
            if not self.alphas or len(set(self.alphas)) != len(self.alphas):
                raise InputError(f"alphas must be a non-empty list without repeats, got "
                                 f"{self.alphas}")
            if float(self.alpha) != self.alphas[0]:
                raise InputError(f"alpha ({self.alpha}) must equal alphas[0] "
                                 f"({self.alphas[0]}) when alphas is given")
        for a in self.alpha_list:
            if not a > -1:
                raise InputError(f"alpha must be > -1 (frequencies ∝ i^-(alpha+1)), got {a}")
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
    step always included). ``precision`` is "fp32" (TF32 off), "tf32" or "bf16" (autocast
    for ``step="eager"``; bf16 products and activations, fp32 weights and Adam otherwise).
    ``step`` is one of :data:`STEPS`, ``sampler`` one of :data:`SAMPLERS`; ``compile``
    compiles the fused module's forward of the eager step (the whole step: "compiled");
    ``step_options`` (of the written-out steps) are some of :data:`STEP_OPTIONS`.
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
    step: str = "eager"
    sampler: str = "counter"
    step_options: list[str] = field(default_factory=list)

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
        if self.step not in STEPS:
            raise InputError(f"step must be one of {STEPS}, got {self.step!r}")
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        self._validate_step_options()
        if self.step != "eager" and self.sampler != "counter":
            raise InputError(f"step {self.step!r} needs sampler 'counter' (the per-stream "
                             "sampler of older runs works with step 'eager' only)")

    def _validate_step_options(self) -> None:
        opts = list(self.step_options or [])
        bad = [o for o in opts if o not in STEP_OPTIONS]
        if bad or len(set(opts)) != len(opts):
            raise InputError(f"step_options must be distinct values of {STEP_OPTIONS}, "
                             f"got {opts}")
        if opts and self.step == "eager":
            raise InputError(f"step options {opts} are for the written-out steps (--step "
                             "manual, compiled, graphs, compiled_graphs), not 'eager'")
        if "autotune" in opts and not self.step.startswith("compiled"):
            raise InputError("step option 'autotune' needs a compiled step (compiled, "
                             "compiled_graphs)")
        if "triton" in opts and {"gather_in", "gather_out"} & set(opts):
            raise InputError("step option 'triton' computes the hidden layer its own way; "
                             "drop gather_in and gather_out")
        self.step_options = [o for o in STEP_OPTIONS if o in opts]     # canonical order


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
        if self.train.step != "eager" and self.model.depth != 1:
            raise InputError(f"step {self.train.step!r} is written for one hidden layer; "
                             f"depth {self.model.depth} needs step 'eager'")
        if self.train.sampler == "streams" and self.task.alphas is not None:
            raise InputError("several alphas need sampler 'counter'")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """The config of a saved dict; a field the dict lacks takes its
        :data:`LEGACY_DEFAULTS` value (what runs written before it existed did), else the
        dataclass default."""
        def build(klass, part):
            sub = dict(LEGACY_DEFAULTS.get(part, {}), **d.get(part, {}))
            names = {f.name for f in dataclasses.fields(klass)}
            unknown = set(sub) - names
            if unknown:
                raise InputError(f"unknown {klass.__name__} keys: {sorted(unknown)}")
            return klass(**sub)
        return cls(task=build(TaskConfig, "task"), model=build(ModelConfig, "model"),
                   train=build(TrainConfig, "train"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))


def read_config(path) -> RunConfig:
    """A run's ``config.json``; a file that is not one is a CorruptFileError naming it."""
    path = Path(path)
    try:
        return RunConfig.from_json(path.read_text())
    except InputError as err:
        raise CorruptFileError(f"{path}: {err}") from None
    except (ValueError, TypeError, AttributeError) as err:  # bad JSON, or not a config's
        raise CorruptFileError(f"{path}: not a parity run's config "
                               f"({str(err).splitlines()[0]})") from None
