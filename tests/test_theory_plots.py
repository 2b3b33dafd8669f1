"""theory.plots: what each figure draws is theory's numbers, on labelled axes."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

import theory
from theory import plots


def _line(ax, label):
    """The one line of ``ax`` whose legend label is ``label``."""
    found = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(found) == 1, (label, [ln.get_label() for ln in ax.get_lines()])
    return found[0]


def test_plot_loss_draws_the_given_curves_on_log_axes():
    fig, ax = plt.subplots()
    try:
        n = np.logspace(0, 4, 20)
        exact, asym = theory.loss_n(n, 0.5), theory.loss_n_asymptote(n, 0.5)
        out = plots.plot_loss(n, exact, asym, xlabel="quanta learned n", label="L(n)", ax=ax)
        assert out is ax and ax.get_xscale() == ax.get_yscale() == "log"
        np.testing.assert_array_equal(_line(ax, "L(n)").get_xydata(),
                                      np.column_stack([n, exact]))
        np.testing.assert_array_equal(_line(ax, "L(n): asymptote").get_ydata(), asym)
        assert ax.get_xlabel() == "quanta learned n" and "(nats)" in ax.get_ylabel()
    finally:
        plt.close(fig)


def test_plot_local_exponent_draws_it_with_its_limit():
    fig, ax = plt.subplots()
    try:
        n = np.logspace(0, 4, 20)
        le = theory.local_exponent(lambda x: theory.loss_n(x, 0.5), n)
        plots.plot_local_exponent(n, le, 0.5, label="L(n)", ax=ax)
        np.testing.assert_array_equal(_line(ax, "L(n)").get_ydata(), le)
        np.testing.assert_array_equal(_line(ax, "L(n): asymptotic 0.5").get_ydata(), [0.5, 0.5])
        assert "local exponent" in ax.get_ylabel()
    finally:
        plt.close(fig)


@pytest.mark.parametrize("K", [1000])
def test_plot_predictions_shows_theorys_values(K):
    """Each panel's curves are theory's functions on the panel's own grid, the asymptotes
    the K = ∞ forms, the reference lines α and α/(α+1); losses labelled in nats."""
    alpha, tau, batch = 0.4, 2, 100
    fig, axes = plt.subplots(2, 2)
    try:
        out = plots.plot_predictions(alpha, tau=tau, K=K, batch=batch, axes=axes)
        assert len(out) == 4
        n_line = _line(out[0], "L(n)")
        n = n_line.get_xdata()
        np.testing.assert_allclose(n_line.get_ydata(), theory.loss_n(n, alpha, K), rtol=1e-12)
        asym = "asymptote" if K is None else "asymptote (K = ∞)"
        np.testing.assert_allclose(_line(out[0], f"L(n): {asym}").get_ydata(),
                                   theory.loss_n_asymptote(n, alpha), rtol=1e-12)
        d_line = _line(out[1], f"E[L(D)], τ={tau}")
        D = d_line.get_xdata()
        np.testing.assert_allclose(d_line.get_ydata(), theory.expected_loss_D(D, alpha, tau, K),
                                   rtol=1e-12)
        for rule in ("samples", "steps"):
            s_line = _line(out[2], f"E[L(S)], {rule} rule")
            S = s_line.get_xdata()
            np.testing.assert_allclose(s_line.get_ydata(),
                                       theory.expected_loss_S(S, alpha, batch, tau, rule, K),
                                       rtol=1e-12)
        assert _line(out[3], f"L(n): asymptotic {alpha:.3g}").get_ydata()[0] == alpha
        assert _line(out[3], f"E[L(D)]: asymptotic {theory.alpha_D(alpha):.3g}").get_ydata()[0] \
            == pytest.approx(theory.alpha_D(alpha))
        for ax in out[:3]:
            assert ax.get_ylabel() == "L − L∞ (nats)" and ax.get_xlabel()
        assert "steps S (batch 100)" == out[2].get_xlabel()
    finally:
        plt.close(fig)


def test_plot_compute_optimal_draws_the_allocation():
    opt = theory.compute_optimal(0.4, tau=2)
    c = np.logspace(8, 20, 7)
    ax = plots.plot_compute_optimal(opt, compute=c)
    try:
        left = {ln.get_label().split(" ∝")[0]: ln for ln in ax.get_lines()}
        np.testing.assert_allclose(left["N*"].get_ydata(), opt.N_coef * c ** opt.N_exponent)
        np.testing.assert_allclose(left["D*"].get_ydata(), opt.D_coef * c ** opt.D_exponent)
        # compute = 6 N D along the whole curve
        np.testing.assert_allclose(6 * left["N*"].get_ydata() * left["D*"].get_ydata(), c)
        right = [a for a in ax.figure.axes if a is not ax][0]
        np.testing.assert_allclose(right.get_lines()[0].get_ydata(),
                                   opt.L_coef * c ** -opt.L_exponent)
        assert "(nats)" in right.get_ylabel() and "6 N D" in ax.get_xlabel()
    finally:
        plt.close(ax.figure)
