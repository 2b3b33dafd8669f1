"""theory.plots: draw on the given Axes, return it, show prediction and asymptote."""
import matplotlib.pyplot as plt
import numpy as np

import theory
from theory import plots


def test_plot_functions_draw_on_the_given_axes():
    fig, ax = plt.subplots()
    try:
        n = np.logspace(0, 4, 20)
        out = plots.plot_loss(n, theory.loss_n(n, 0.5), theory.loss_n_asymptote(n, 0.5), ax=ax)
        assert out is ax and len(ax.get_lines()) == 2
        le = theory.local_exponent(lambda x: theory.loss_n(x, 0.5), n)
        plots.plot_local_exponent(n, le, 0.5, ax=ax)
        assert len(ax.get_lines()) == 4
        assert "nats" in ax.get_ylabel() or "exponent" in ax.get_ylabel()
    finally:
        plt.close(fig)


def test_plot_predictions_fills_four_panels():
    fig, axes = plt.subplots(2, 2)
    try:
        out = plots.plot_predictions(0.4, tau=2, K=1000, batch=100, axes=axes)
        assert len(out) == 4
        assert all(len(a.get_lines()) >= 2 for a in out)   # prediction and asymptote in each
    finally:
        plt.close(fig)
