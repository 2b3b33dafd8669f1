"""Shared by the parity trainer's tests."""
import pytest
import torch

from empirical.parity.kernels import why_not

_triton_blocked = why_not(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
#: skip a test of the step option ``triton`` where its kernels cannot run (and say why)
needs_triton = pytest.mark.skipif(_triton_blocked is not None,
                                  reason=f"step option 'triton' {_triton_blocked}")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CI machine has 2 cores shared with other tests: one torch thread is faster and
    stable. (Autouse in every test module that imports it.)"""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
