"""Every public result type follows the result protocol of ``common.results``.

To add a type: write a function below that builds a small *real* instance (from the public
function that returns it, on a few points of data; well under a second) and decorate it with
``@factory``. ``test_every_result_type_has_a_factory`` fails for a ``Result`` subclass that
has none, naming it.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import warnings
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from common.errors import InputError
from common.results import Result

ROOT = Path(__file__).resolve().parents[1]

#: name → function building one instance; filled by ``@factory``
FACTORIES: dict = {}


def factory(fn):
    """Register ``fn`` (no arguments → a Result) under its name, without ``make_``."""
    FACTORIES[fn.__name__.removeprefix("make_")] = fn
    return fn


def _power_law_data(seed=0, n=16, alpha=0.5, E=0.0):
    x = np.geomspace(10, 1e4, n)
    noise = np.exp(0.03 * np.random.default_rng(seed).standard_normal(n))
    return x, (E + 5.0 * x ** -alpha) * noise


@factory
def make_fit_bootstrap():
    import fit
    return fit.power_law(*_power_law_data(), bootstrap=200, seed=0, variable="N")


@factory
def make_fit_wald():
    import fit
    return fit.fit("offset", *_power_law_data(E=1.0))


@factory
def make_fit_bca_joint():
    import fit
    N = np.repeat(np.geomspace(1e6, 1e9, 4), 4)
    D = np.tile(np.geomspace(1e7, 1e11, 4), 4)
    y = (1.7 + 400 * N ** -0.34 + 410 * D ** -0.28) * np.exp(
        0.01 * np.random.default_rng(1).standard_normal(16))
    return fit.fit("chinchilla", N, y, x2=D, bootstrap=60, seed=0, ci_method="bca")


@factory
def make_rank_frequency():
    import fit
    sizes = np.round(1e4 * np.arange(1, 60.0) ** -1.5)
    return fit.rank_frequency_exponent(sizes, method="ols", bootstrap=100, seed=0)


@factory
def make_rank_frequency_mle():
    import fit
    sizes = np.random.default_rng(2).zipf(2.2, 500)
    return fit.rank_frequency_exponent(sizes, method="mle")


@factory
def make_discrete_power_law():
    import fit
    return fit.discrete_power_law_mle(np.random.default_rng(3).zipf(2.5, 400), xmin=1)


@factory
def make_continuous_power_law_gof():
    from fit.gof import power_law_gof
    samples = (1 - np.random.default_rng(3).random(300)) ** (-1 / 1.5)
    return power_law_gof(samples, discrete=False, sims=20, seed=0)


@factory
def make_consistency():
    import fit
    x, yN = _power_law_data(seed=4, alpha=0.5)
    _, yD = _power_law_data(seed=5, alpha=0.5 / 1.5)
    return fit.consistency(fit.power_law(x, yN, bootstrap=200, seed=0, variable="N"),
                           fit.power_law(x, yD, bootstrap=200, seed=1, variable="D"))


@factory
def make_extrapolation():
    import fit
    return fit.extrapolation_check("power", *_power_law_data(seed=6), holdout=4,
                                   bootstrap=100, seed=0)


@factory
def make_simulation():
    import simulate
    return simulate.run("D", 0.5, np.geomspace(1e2, 1e6, 12), K=10_000, reps=20, seed=0,
                        p_learned=False)


@factory
def make_alpha_estimate():
    pytest.importorskip("torch")
    import theory
    from empirical.qdg import estimate_alpha
    p = theory.frequencies(0.5, K=30)
    sizes = np.random.default_rng(7).multinomial(5000, p / p.sum())
    return estimate_alpha({30: sizes}, "zipf", bootstrap=100, seed=0)


@factory
def make_compute_optimal():
    import theory
    return theory.compute_optimal(0.4, tau=2)


@factory
def make_parity_run_analysis():
    from empirical.parity import analysis
    return analysis.analyze([ROOT / "results/parity/N_alpha0.4"])["runs"][0]


@factory
def make_parity_analysis():
    from empirical.parity import analysis
    return analysis.analyze([ROOT / "results/parity/N_alpha0.4"], method="paper",
                            bootstrap=50)


@factory
def make_parity_method_comparison():
    from empirical.parity import analysis
    return analysis.analyze([ROOT / "results/parity/N_alpha0.4"], method="both",
                            bootstrap=50)


@factory
def make_token_analysis():
    from fit.tokens import analyze
    from simulate.tokens import PYTHIA_SIZES, generate_tokens
    toy = generate_tokens(n_tokens=2000, seed=1)
    return analyze(toy.losses, sizes=PYTHIA_SIZES[:7],
                   metadata={"document": toy.metadata["document"]}, bootstrap=50)


@pytest.fixture(params=sorted(FACTORIES), scope="module")
def result(request):
    return FACTORIES[request.param]()


def test_params_are_a_mapping_of_floats(result):
    params = result.params
    assert isinstance(params, (Mapping, pd.Series)) and len(params) > 0
    for name, value in dict(params).items():
        assert isinstance(name, str) and isinstance(value, float), (name, value)


def test_conf_int_is_a_nested_table_of_the_params(result):
    ci95, ci90 = result.conf_int(alpha=0.05), result.conf_int(alpha=0.1)
    for ci in (ci95, ci90):
        assert isinstance(ci, pd.DataFrame) and list(ci.columns) == ["lower", "upper"]
        assert set(ci.index) <= set(dict(result.params)), ci.index
        assert (ci.dtypes == float).all() and not ci.isna().any().any()
        assert (ci["lower"] <= ci["upper"]).all(), ci
    common = ci95.index.intersection(ci90.index)
    assert (ci95.loc[common, "lower"] <= ci90.loc[common, "lower"]).all()
    assert (ci90.loc[common, "upper"] <= ci95.loc[common, "upper"]).all()


def test_conf_int_default_is_the_results_own_level(result):
    level = getattr(result, "level", None) or 0.95
    pd.testing.assert_frame_equal(result.conf_int(), result.conf_int(alpha=1 - level))


def test_conf_int_old_spellings(result):
    """``level=`` still works, with a DeprecationWarning; a positional 0.95 (the old
    spelling of a 95 % interval) is refused rather than read as a 5 % interval."""
    with pytest.warns(DeprecationWarning, match="conf_int"):
        old = result.conf_int(level=0.9)
    pd.testing.assert_frame_equal(old, result.conf_int(alpha=0.1))
    with pytest.raises(InputError, match="alpha=0.95 asks for a 5% interval"):
        result.conf_int(0.95)


def test_summary_is_text(result):
    text = result.summary()
    assert isinstance(text, str) and text.strip() and str(result) == text


def test_to_dict_is_strict_json_as_it_stands(result):
    d = result.to_dict()
    assert isinstance(d, dict) and d
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_plot_returns_its_axes(result):
    if not callable(getattr(result, "plot", None)):
        pytest.skip(f"{type(result).__name__} has no picture")
    ax = result.plot()
    try:
        assert isinstance(ax, plt.Axes) and ax.has_data()
        fig, given = plt.subplots()
        assert result.plot(ax=given) is given
    finally:
        plt.close("all")


def _result_types() -> set[type]:
    """Every Result subclass defined in the project's packages (those whose optional
    dependencies are installed)."""
    for package in ("theory", "simulate", "fit", "empirical"):
        try:
            pkg = importlib.import_module(package)
        except ImportError:
            continue
        for info in pkgutil.walk_packages(pkg.__path__, package + "."):
            try:
                importlib.import_module(info.name)
            except ImportError:
                continue
    found, todo = set(), [Result]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.split(".")[0] != "tests" and sub not in found:
                todo.append(sub)
                if not sub.__name__.startswith("_"):
                    found.add(sub)
    return found


def test_every_result_type_has_a_factory():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = {type(make()) for name, make in FACTORIES.items()
                 if name != "alpha_estimate" or importlib.util.find_spec("torch")}
    missing = {f"{t.__module__}.{t.__qualname__}" for t in _result_types() - built}
    assert not missing, f"add a factory to tests/test_result_protocol.py for {sorted(missing)}"
