"""Shared by the parity trainer's tests."""
import importlib.metadata
import importlib.util

import pytest
import torch


def _triton_runs() -> bool:
    """Triton is there and can run the kernels here: compiled on CUDA, else in its
    interpreter, which needs 3.8 with NumPy 2 (3.6's indexes a 1-element array as a
    scalar)."""
    if importlib.util.find_spec("triton") is None:
        return False
    if torch.cuda.is_available():
        return True
    major, minor = (int(p) for p in importlib.metadata.version("triton").split(".")[:2])
    return (major, minor) >= (3, 8)


#: skip a test of the step option ``triton`` where its kernels cannot run
needs_triton = pytest.mark.skipif(not _triton_runs(),
                                  reason="needs triton (3.8 or later without CUDA)")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CI machine has 2 cores shared with other tests: one torch thread is faster and
    stable. (Autouse in every test module that imports it.)"""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
