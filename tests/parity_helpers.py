"""Shared by the parity trainer's tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CI machine has 2 cores shared with other tests: one torch thread is faster and
    stable. (Autouse in every test module that imports it.)"""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
