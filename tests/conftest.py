"""Test hygiene shared by the whole suite.

- matplotlib draws off-screen, and a test that leaves a figure open fails;
- a test that touches NumPy's global random state fails (use ``default_rng(seed)``);
- tests marked ``gpu`` skip cleanly without CUDA;
- hypothesis: no deadline (Numba compiles on first call), a bounded example count,
  derandomized on CI.
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

# without CUDA, empirical.parity asks for Triton's interpreter, which must come before
# anything (torch.compile too) imports triton
import empirical.parity  # noqa: E402,F401

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# On CI (CI=true) the examples are derandomized, so a submission's result does not depend
# on the draw; locally hypothesis keeps exploring new examples.
settings.register_profile(
    "quanta", deadline=None, max_examples=40, print_blob=True,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quanta"))


@pytest.fixture(autouse=True)
def _no_open_figures():
    yield
    open_figs = plt.get_fignums()
    plt.close("all")
    assert not open_figs, f"test left {len(open_figs)} matplotlib figure(s) open"


@pytest.fixture(autouse=True)
def _global_rng_untouched():
    state = np.random.get_state()[1].copy()
    yield
    assert np.array_equal(state, np.random.get_state()[1]), \
        "test used NumPy's global random state; pass a seed or Generator instead"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
