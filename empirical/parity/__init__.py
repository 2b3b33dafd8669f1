"""Multitask sparse parity: the task, fused training of whole sweeps, run directories and
their analysis (Michaud et al. 2023, section 3)."""
import os

import torch

if not torch.cuda.is_available():
    # the step option ``triton`` runs its kernels in Triton's interpreter without CUDA, a
    # choice Triton makes once, at its first import (which torch.compile makes too)
    os.environ.setdefault("TRITON_INTERPRET", "1")

from .config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from .model import MLP, FusedMLP
from .run import Run, export_run, load_run
from .task import SparseParityTask
from .train import evaluate, is_complete, log_steps, network_table, train

__all__ = ["SparseParityTask", "TaskConfig", "ModelConfig", "TrainConfig", "RunConfig",
           "MLP", "FusedMLP", "train", "is_complete", "evaluate", "log_steps", "network_table",
           "Run", "load_run", "export_run"]
