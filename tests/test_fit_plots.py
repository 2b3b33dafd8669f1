"""The fit's pictures: a joint law drawn where the data are (the data's own D values, or the
iso-compute lines of an IsoFLOP grid) with a colour bar, the legend clear of the data, the
curve and its band carried over an extrapolation, tick labels that do not collide."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

import fit
from common.plotting import labels_collide
from fit.plots import joint_lines, plot_fit

TRUTH = dict(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28)


def _chinchilla(N, D):
    t = TRUTH
    return t["E"] + t["A"] * N ** -t["alpha"] + t["B"] * D ** -t["beta"]


def _joint_fit(N, D, seed=0, bootstrap=30):
    y = _chinchilla(N, D) * np.exp(0.005 * np.random.default_rng(seed).standard_normal(N.size))
    return fit.fit("chinchilla", N, y, x2=D, bootstrap=bootstrap, seed=0)


@pytest.fixture
def figure():
    fig, ax = plt.subplots(figsize=(5, 3.8))
    yield fig, ax
    plt.close(fig)


def _curves(ax):
    """The drawn lines with data (the legend's empty proxies left out)."""
    return [ln for ln in ax.get_lines() if len(ln.get_xdata())]


def test_a_joint_fit_is_drawn_at_the_datas_own_D_with_a_colour_bar(figure):
    fig, ax = figure
    D_levels = np.array([2e9, 3e10, 5e11])
    N = np.tile(np.geomspace(1e7, 1e10, 8), 3)
    D = np.repeat(D_levels, 8)
    res = _joint_fit(N, D, bootstrap=0)
    kind, vals = joint_lines(res)
    assert kind == "x2" and np.array_equal(vals, D_levels)
    plot_fit(res, ax=ax, x2_label="D (tokens)")
    curves = _curves(ax)
    assert len(curves) == 3
    for line, d in zip(curves, D_levels):      # each curve is the fitted law at that D
        g = line.get_xdata()
        np.testing.assert_allclose(line.get_ydata(), res.predict(g, np.full_like(g, d)))
    bars = [a for a in fig.axes if a is not ax]
    assert len(bars) == 1 and bars[0].get_ylabel() == "D (tokens)"


def test_an_isoflop_grid_is_drawn_along_its_compute_lines():
    """Three budgets C, each spent on several N with D = C/(6N): the lines drawn are those
    budgets' (x·x2 = C/6), not D values that no point has."""
    budgets = np.array([1e18, 1e19, 1e20])
    N = np.concatenate([np.geomspace(c ** 0.5 / 300, c ** 0.5 / 3, 7) for c in budgets])
    D = np.repeat(budgets, 7) / (6 * N)
    kind, vals = joint_lines(_joint_fit(N, D, bootstrap=0))
    assert kind == "compute"
    np.testing.assert_allclose(vals, budgets / 6, rtol=0.03)


def test_the_legend_is_outside_the_data(figure):
    fig, ax = figure
    x = np.geomspace(1e3, 1e8, 20)
    res = fit.offset_power_law(x, 1.5 + 40 * x ** -0.3, bootstrap=20, seed=0)
    plot_fit(res, ax=ax)
    fig.draw_without_rendering()
    legend = ax.get_legend().get_window_extent()
    assert legend.y0 >= ax.get_window_extent().y1 - 1   # above the axes, not over points


def test_an_extrapolation_carries_the_curve_and_its_band(figure):
    """``x_range`` (the command's --predict) and a holdout block extend the curve and the
    band over the sizes predicted."""
    fig, ax = figure
    x = np.geomspace(1e3, 1e6, 15)
    y = 1.5 + 40 * x ** -0.3
    res = fit.offset_power_law(x, y, bootstrap=20, seed=0)
    plot_fit(res, ax=ax, x_range=(1e3, 1e9))
    (curve,) = _curves(ax)
    assert curve.get_xdata().max() == pytest.approx(1e9)
    band = ax.collections[-1].get_paths()[0].vertices[:, 0]
    assert band.max() == pytest.approx(1e9)
    ax.clear()
    check = fit.extrapolation_check("offset", np.append(x, [1e7, 1e8]),
                                    np.append(y, 1.5 + 40 * np.array([1e7, 1e8]) ** -0.3),
                                    holdout=2, bootstrap=20)
    plot_fit(check.fit, ax=ax)
    assert _curves(ax)[0].get_xdata().max() == pytest.approx(1e8)


@pytest.mark.parametrize("lo, hi", [(2e6, 9e7), (1e3, 1e15)])
def test_size_ticks_do_not_collide_at_any_range(figure, lo, hi):
    """Under two decades matplotlib labels 2, 3, 4, 6 × 10^b and they collided; over twelve
    decades its labels thin themselves."""
    fig, ax = figure
    x = np.geomspace(lo, hi, 12)
    plot_fit(fit.power_law(x, 3 * x ** -0.2), ax=ax)
    assert not labels_collide(ax.xaxis) and not labels_collide(ax.yaxis)
