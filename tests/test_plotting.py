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



def _labels(axis) -> list[str]:
    axis.figure.draw_without_rendering()
    lo, hi = axis.get_view_interval()
    return [t.get_text() for t in axis.get_ticklabels() + axis.get_ticklabels(minor=True)
            if t.get_text() and lo <= t.get_position()[0] <= hi]


def _value(label: str) -> float:
    """'2000' → 2000; '$2\\times10^{6}$' → 2e6; '$10^{7}$' → 1e7."""
    t = label.strip("$").replace(r"\times", "").replace("10^{", "e").rstrip("}")
    return float("1" + t if t.startswith("e") else t)


@pytest.mark.parametrize("width", [3.2, 5.5])
@pytest.mark.parametrize("lo, hi", [(1.5e3, 1.3e4), (0.9, 8.0), (2e6, 9e7), (0.03, 0.9),
                                    (1e3, 1e6)])
def test_short_log_axes_get_labels_that_do_not_collide(lo, hi, width):
    """matplotlib labels 2, 3, 4 and 6 × 10^b on a log axis of one to two decades; on a
    panel of the report's width they collided (seen on the page: steps 1.5e3 … 1.3e4).
    readable_log_ticks labels powers of ten and 2, 3, 5 × them (fewer where those would
    collide), written out where short. An axis of three decades keeps matplotlib's."""
    from common.plotting import labels_collide, readable_log_ticks

    fig, ax = plt.subplots(figsize=(width, 2.4))
    try:
        ax.plot([lo, hi], [1, 2])
        ax.set_xscale("log")
        before, default_collides = _labels(ax.xaxis), labels_collide(ax.xaxis)
        readable_log_ticks(ax)
        after = _labels(ax.xaxis)
        if hi / lo > 100:
            assert after == before
            return
        assert not labels_collide(ax.xaxis), after
        shown = [_value(t) for t in after]
        assert all(f"{v:.0e}"[0] in "1235" for v in shown) and len(shown) >= 2, shown
        if (lo, hi) == (1.5e3, 1.3e4):
            assert default_collides               # what the page showed
    finally:
        plt.close(fig)
