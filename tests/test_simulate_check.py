"""``simulate.core.check_run``: the argument checks of ``simulate.run`` as their own function.

Every refusal is a ``common.errors.InputError`` naming the argument, raised before anything is
allocated or drawn; whatever the arguments, nothing else escapes (a TypeError or a NumPy
error from a bad argument would be a bug: the command line would show its traceback).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulate
from common.errors import InputError, ResourceError
from simulate.core import MAX_CLOCKS, MAX_QUANTA, RunSpec, check_run


def test_arguments_are_normalised():
    spec = check_run("D", 0.4, [10.4, 1e3, 10.0], tau=2.0, K=100.0, reps=np.int64(5),
                     seed=None, a=lambda k: 0.1 / k)
    assert (spec.tau, spec.K, spec.reps) == (2, 100, 5)
    assert all(type(v) is int for v in (spec.tau, spec.K, spec.reps))
    assert spec.x.dtype == np.int64 and spec.x.tolist() == [10, 1000, 10]  # order kept
    assert type(spec.seed) is int and spec.seed >= 0   # a fresh seed, recorded for the config
    np.testing.assert_allclose(spec.a_k, 0.1 / np.arange(1, 101))
    np.testing.assert_array_equal(spec.b_k, np.ones(100))
    n = check_run("N", 0.4, [2.5, 7.0], K=10)
    assert n.x.dtype == float and n.x.tolist() == [2.5, 7.0]   # capacities stay real
    s = check_run("S", 0.4, [10], batch=16.0, rule="steps", K=10)
    assert s.batch == 16 and not s.uses_clocks and check_run("S", 0.4, [10], batch=2,
                                                             K=10).uses_clocks


@pytest.mark.parametrize("kwargs, word", [
    (dict(regime="D", batch=4), "batch"),                 # an option the regime does not read
    (dict(regime="N", rule="steps"), "rule"),
    (dict(regime="D", noisy=True), "noisy"),
    (dict(regime="D", C=2.0), "C"),                       # C without a capacity
    (dict(regime="N", tau=2), "tau"),                     # tau of the plain N learner
    (dict(regime="D", D=100), "D"),
    (dict(regime="N", N=10), "N"),
    (dict(regime="S"), "batch"),                          # an option the regime needs
    (dict(regime="N", noisy=True), "D"),
    (dict(regime="D", seed=-1), "seed"),
    (dict(regime="D", seed="s"), "seed"),
    (dict(regime="D", alpha="abc"), "alpha"),
    (dict(regime="D", N="many"), "N"),
    (dict(regime="D", x="abc"), "x"),
    (dict(regime="D", x=[[10, 100]]), "x"),
    (dict(regime="D", a=np.ones(3)), "a"),
    (dict(regime="D", b=lambda k: np.ones(3)), "b"),      # a callable of the wrong shape
    (dict(regime="S", batch=2**40, x=[2**30]), "x"),      # S·batch past the counters
])
def test_each_refusal_names_its_argument(kwargs, word):
    args = dict(regime="D", alpha=0.4, x=[10, 100], K=50) | kwargs
    with pytest.raises(InputError, match=rf"\b{word}\b"):
        check_run(**args)


def test_sizes_are_refused_before_anything_is_allocated():
    """K·τ past the data kernel's clock budget, or K past any kernel's, is a ResourceError
    (an InputError) raised before the per-quantum arrays exist (they would take GBs)."""
    with pytest.raises(ResourceError, match="clocks"):
        check_run("D", 0.4, [10], K=MAX_CLOCKS // 2 + 1, tau=2, a=np.zeros(3))
    with pytest.raises(ResourceError, match="K ="):
        check_run("S", 0.4, [10], batch=2, rule="steps", K=MAX_QUANTA + 1, a=np.zeros(3))
    with pytest.raises(ResourceError):
        simulate.run("N", 0.4, [10], K=10**300)


#: valid argument sets, one per kind of run …
BASES = [dict(regime="D", alpha=0.4, x=[10, 100], K=50),
         dict(regime="D", alpha=2, x=5, K=50.0, tau=2.0, N=20, C=2.0, a=np.zeros(50)),
         dict(regime="S", alpha=0.4, x=[3.5, 1.0], K=50, batch=16, rule="steps", seed=None),
         dict(regime="S", alpha=0.4, x=[10], K=50, batch=2, N=2.5, b=lambda k: 1 + 0 * k),
         dict(regime="N", alpha=0.4, x=[2.5, 7.0], K=50, C=2.0, reps=3),
         dict(regime="N", alpha=0.4, x=[10, 100], K=50, noisy=True, D=1000, tau=2)]
#: … and other values for each argument, which check_run accepts alone (their combination
#: with the rest may still be refused) …
GOOD = dict(regime=["D", "S", "N"], x=[[10, 100], 5], tau=[1, 2], K=[50], batch=[None, 16],
            rule=["samples", "steps"], C=[1.0, 2.0], seed=[0, 123],
            a=[0.0, lambda k: 0 * k], noisy=[False, True], N=[None, 20], D=[None, 1000])
#: … or refuses
BAD = dict(regime=["X", None], alpha=[0, -1, float("nan"), float("inf"), "a", None, [0.4]],
           x=[[], [0.5], [[1, 2]], "abc", [1e19], [float("nan")]],
           tau=[2.5, 0, "1", None], K=[0, 1e30, "x"], batch=[0, 2.5, "b"], rule=["epochs"],
           C=[0, "c", float("nan")], reps=[0, 1.5], seed=[-1, "s", 2.5],
           a=[np.zeros(3), "a", float("nan"), [1, 2], lambda k: np.ones(2)],
           N=[-1, "n", float("nan"), [1, 2]], D=[-1, 2**63, 1.5])
CHANGES = [(name, value) for pool in (GOOD, BAD) for name, values in pool.items()
           for value in values]


@settings(max_examples=300)
@given(base=st.sampled_from(BASES),
       changes=st.lists(st.sampled_from(CHANGES), max_size=2, unique_by=lambda c: c[0]))
def test_any_arguments_give_a_spec_or_an_input_error(base, changes):
    """A valid argument set with up to two arguments changed: check_run returns a RunSpec
    or raises a one-line InputError, and nothing else escapes."""
    kwargs = base | dict(changes)
    try:
        spec = check_run(**kwargs)
    except InputError as err:
        assert str(err) and "\n" not in str(err)
        assert changes, f"a valid argument set was refused: {err}"
        return
    assert isinstance(spec, RunSpec)
    assert spec.a_k.shape == spec.b_k.shape == (spec.K,)
    assert np.all(np.isfinite(spec.a_k)) and spec.x.ndim == 1 and np.all(spec.x >= 1)
