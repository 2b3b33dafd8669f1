"""The linearised start of one fit (fit.single) against the grid it replaces: the same
optimum, to 1e-8 in the objective, on varied synthetic curves and on shipped data (the
Chinchilla runs of fit/data, the parity runs of results/parity)."""
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import fit
from fit.core import _bounds, _fit_nonlinear
from fit.forms import form_spec, objective
from fit.single import _offset_residuals, _polish

ROOT = Path(__file__).resolve().parents[1]


def _grid_objective(x, y, sigma=None):
    """The objective today's 24-start grid reaches on the same problem, and the same
    optimum polished by MINPACK from the grid's answer (where the grid's own stopping rule
    ended it early)."""
    spec = form_spec("offset")
    X, logy = (np.log(x),), np.log(y)
    scale = np.ones(len(x)) if sigma is None else y / sigma
    lower, upper = _bounds("offset", X, logy, None, spec)
    opts = dict(loss="l2", delta=1e-3, lower=lower, upper=upper, maxiter=500)
    theta, *_ = _fit_nonlinear(spec, X, logy, scale, None, opts, fast=False)
    polished, _ = _polish(_offset_residuals(X[0], logy, scale), theta, 500)
    on_bound = bool(np.any(np.isclose(theta, lower, rtol=0, atol=1e-6)
                           | np.isclose(theta, upper, rtol=0, atol=1e-6)))
    return (*(float(objective(spec, t, X, logy, scale)[0]) for t in (theta, polished)),
            on_bound)


def _assert_same_optimum(res, grid, what):
    """The fast path's objective equals the grid's to 1e-8. It may only be lower where the
    grid did not find the optimum: it stopped short (polished from its answer, it gets
    there) or ended on a bound (E → 0) while a lower interior optimum exists."""
    grid, polished, grid_on_bound = grid
    tol = 1e-8 * max(grid, 1e-300) + 1e-14
    if res.objective < grid - tol:
        assert grid_on_bound or abs(res.objective - polished) <= tol, \
            f"{what}: fast path {res.objective:.12g}, grid {grid:.12g}, polished {polished:.12g}"
        return
    assert abs(res.objective - grid) <= tol, \
        f"{what}: fast path objective {res.objective:.12g} vs grid {grid:.12g}"


@example(seed=398, e_share=0.0, alpha=0.05078125, noise=1e-4, n=5, decades=1.0,
         weighted=False)             # the grid ends on E's bound; the fast path finds lower
@given(seed=st.integers(0, 2 ** 32 - 1), e_share=st.floats(0.0, 0.95),
       alpha=st.floats(0.05, 2.0), noise=st.floats(1e-4, 0.1), n=st.integers(5, 80),
       decades=st.floats(1.0, 6.0), weighted=st.booleans())
def test_fast_path_reaches_the_grid_optimum(seed, e_share, alpha, noise, n, decades,
                                            weighted):
    """E + A x^-alpha with E a share e_share of the smallest clean loss, log-normal noise."""
    rng = np.random.default_rng(seed)
    x = np.geomspace(10.0, 10.0 ** (1 + decades), n) * np.exp(0.1 * rng.standard_normal(n))
    power = x ** -alpha / (x.max() ** -alpha)          # 1 at the largest x
    clean = e_share + (1 - e_share) * power
    y = clean * np.exp(noise * rng.standard_normal(n))
    sigma = y * noise * rng.uniform(0.5, 2.0, n) if weighted else None
    res = fit.fit("offset", x, y, sigma=sigma)
    _assert_same_optimum(res, _grid_objective(x, y, sigma), "synthetic")


def _chinchilla():
    import pandas as pd

    with resources.files("fit").joinpath("data/chinchilla-svg-extracted.csv").open() as f:
        t = pd.read_csv(f)
    N, C, L = (t[c].to_numpy(float) for c in ("Model Size", "Training FLOP", "loss"))
    D = C / (6 * N)
    frontier = t.groupby("color").apply(lambda g: g.loc[g["loss"].idxmin()],
                                        include_groups=False)
    return {"chinchilla L(N), 245 runs": (N, L), "chinchilla L(D), 245 runs": (D, L),
            "chinchilla L(C), 245 runs": (C, L),
            "chinchilla compute frontier L(C)": (frontier["Training FLOP"].to_numpy(float),
                                                 frontier["loss"].to_numpy(float))}


def _parity():
    out = {}
    for run in sorted((ROOT / "results" / "parity").glob("*/metrics.npz")):
        m = np.load(run)
        loss = m["mean_test_loss"]
        last = np.flatnonzero(np.isfinite(loss).all(axis=0))[-1]     # a partial run's last
        if "N_" in run.parent.name or "NS" in run.parent.name:
            out[f"parity {run.parent.name} L(N)"] = (m["n_params"].astype(float), loss[:, last])
        out[f"parity {run.parent.name} L(S), widest"] = (m["steps"][1:].astype(float),
                                                         loss[-1, 1:])
    return out


SHIPPED = {**_chinchilla(), **_parity()}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_fast_path_reaches_the_grid_optimum_on_shipped_data(name):
    x, y = SHIPPED[name]
    keep = np.isfinite(y) & (y > 0)
    x, y = x[keep], y[keep]
    _assert_same_optimum(fit.fit("offset", x, y), _grid_objective(x, y), name)


def test_typical_curves_take_the_fast_path():
    """A clean offset law with an irreducible loss is solved from the linearised start
    (one local solve), not the grid; a pure power law (E on its bound) falls back."""
    rng = np.random.default_rng(0)
    x = np.geomspace(1e6, 1e9, 20)
    y = (1.7 + 400 * x ** -0.34) * np.exp(0.01 * rng.standard_normal(20))
    assert fit.fit("offset", x, y).info["start"] == "linearised"
    pure = fit.fit("offset", x, 3 * x ** -0.3)
    assert pure.info["start"] == "grid"
    assert fit.fit("offset", x, y, loss="huber").info["start"] == "grid"
