"""Hypothesis strategies shared by the test suite: the paper's α, τ, seeds and sizes
spread over decades. Randomness in a test comes from a drawn ``seed`` turned into
``np.random.default_rng(seed)`` so that failures shrink to a reproducible case."""
from hypothesis import strategies as st

#: The paper's α (frequency exponent α+1), over the range the project supports.
alphas = st.floats(min_value=0.05, max_value=3.0, allow_nan=False, allow_infinity=False)
#: Occurrences needed to learn a quantum.
taus = st.integers(min_value=1, max_value=100)
#: Small τ, for tests whose cost grows with τ.
small_taus = st.integers(min_value=1, max_value=10)
#: Seeds for np.random.default_rng.
seeds = st.integers(min_value=0, max_value=2**32 - 1)
#: Finite numbers of quanta.
Ks = st.integers(min_value=1, max_value=3000)
#: Batch sizes.
batches = st.integers(min_value=1, max_value=100_000)


def log_sizes(min_decade: float = 0.0, max_decade: float = 12.0):
    """Sizes 10^e with e uniform in [min_decade, max_decade] (many decades, no bias)."""
    return st.floats(min_value=min_decade, max_value=max_decade,
                     allow_nan=False, allow_infinity=False).map(lambda e: 10.0 ** e)


def sorted_log_sizes(min_decade: float = 0.0, max_decade: float = 12.0, size: int = 5):
    """An increasing list of ``size`` sizes over decades."""
    return st.lists(log_sizes(min_decade, max_decade), min_size=size, max_size=size,
                    unique=True).map(sorted)
#: Positive scale factors over six decades (10^-3 … 10^3), for equivariance properties.
scales = st.floats(min_value=-3.0, max_value=3.0,
                   allow_nan=False, allow_infinity=False).map(lambda e: 10.0 ** e)
#: Exponents γ of a discrete power law P(s) ∝ s^-γ with a finite mean (γ > 2 keeps the
#: samples small enough to draw and fit quickly).
gammas = st.floats(min_value=2.2, max_value=3.5, allow_nan=False, allow_infinity=False)
#: Rank-frequency exponents a (sizes s_r ∝ r^-a), α + 1 for the paper's α.
rank_exponents = st.floats(min_value=1.05, max_value=4.0, allow_nan=False,
                           allow_infinity=False)
