#!/usr/bin/env bash
# Line coverage of simulate/ with the Numba kernels run as Python (NUMBA_DISABLE_JIT=1).
#
#     bash benchmarks/coverage_simulate.sh
#
# The statistical tests need thousands of realizations, far too slow as Python, so this
# runs the fast subset that still takes every kernel path (each sampler, the radix sort,
# every regime and mode through the seeding test, the sparse-tail and dense data paths,
# argument checks) with small sizes. Needs
# `coverage` (the `test` extra).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export NUMBA_DISABLE_JIT=1
"$PY" -m coverage erase
"$PY" -m coverage run --source=simulate -m pytest -q -p no:cacheprovider \
    tests/test_simulate_kernels.py tests/test_simulate_theory.py \
    -k "binomial_follows or radix or same_seed or plain_N or monotone or bad_arguments or carries_config or finite_K_bends or alias or skipping_p_learned or flushes"
"$PY" -m coverage report -m
