"""common.plotting.axes, the one ``ax=None`` helper: a given Axes is drawn on, none makes
a figure of the caller's size (each layer keeps its own)."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from common.plotting import FIGSIZE, axes


def test_axes_returns_the_given_axes_or_a_new_figure_of_the_size_asked():
    fig, ax = plt.subplots()
    try:
        assert axes(ax) is ax and axes(ax, figsize=(1, 1)) is ax
        assert len(plt.get_fignums()) == 1
    finally:
        plt.close(fig)
    for size in (FIGSIZE, (5.2, 3.8)):
        new = axes(None) if size == FIGSIZE else axes(figsize=size)
        try:
            assert tuple(new.figure.get_size_inches()) == pytest.approx(size)
        finally:
            plt.close(new.figure)


@pytest.mark.parametrize("draw, size", [
    (lambda: __import__("theory.plots").plots.plot_loss([1, 10], [1, 0.5]), (5, 4)),
    (lambda: __import__("fit.plots").plots.plot_local_exponent(
        np.geomspace(1, 1e3, 8), np.geomspace(1, 1e3, 8) ** -0.5), (5, 3.8)),
])
def test_each_layer_keeps_its_figure_size(draw, size):
    ax = draw()
    try:
        assert tuple(ax.figure.get_size_inches()) == pytest.approx(size)
    finally:
        plt.close(ax.figure)
