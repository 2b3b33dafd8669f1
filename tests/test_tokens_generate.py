"""simulate.tokens: the generated matrices follow the quantization model they claim."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import theory
from common.errors import InputError
from simulate.tokens import (PYTHIA_SIZES, TokenConfig, expected_mean_loss, first_rank,
                             generate_tokens, iter_tokens, quanta_known)
from tests.strategies import seeds

SMALL = TokenConfig(n_tokens=20_000, n_quanta=100_000)


def test_same_seed_same_matrix_and_blocks_concatenate():
    a, b = generate_tokens(SMALL, seed=3), generate_tokens(SMALL, seed=3)
    assert np.array_equal(a.losses, b.losses)
    blocks = list(iter_tokens(dataclasses.replace(SMALL, seed=3)))
    assert np.array_equal(np.concatenate([blk.losses for blk in blocks]), a.losses)
    assert not np.array_equal(generate_tokens(SMALL, seed=4).losses, a.losses)


def test_mean_loss_matches_its_expectation():
    """Monte Carlo mean per column against the exact expectation, within 4 standard errors
    of the document means (documents share a noise factor, so they are the unit)."""
    m = generate_tokens(TokenConfig(n_tokens=400_000, n_quanta=100_000, seed=5))
    doc = m.metadata["document"]
    per_doc = np.stack([np.bincount(doc, weights=c) / np.bincount(doc) for c in m.losses.T], 1)
    se = per_doc.std(0, ddof=1) / np.sqrt(per_doc.shape[0])
    err = m.losses.mean(0) - expected_mean_loss(m.config)
    assert np.all(np.abs(err) < 4 * se), f"mean − expectation {err} vs SE {se}"


def test_monogenic_drops_follow_the_zipf_mass():
    """The column at which a monogenic token drops is multinomial with the restricted Zipf
    masses between the columns' capacities (theory.tail_mass); chi-square at p > 1e-4."""
    from scipy import stats

    cfg = TokenConfig(n_tokens=200_000, n_quanta=100_000, seed=6)
    m = generate_tokens(cfg)
    mono = m.truth["kind"] == 1
    n = quanta_known(cfg)
    tails = np.append(theory.tail_mass(n, cfg.alpha, K=cfg.n_quanta), 0.0)
    p = -np.diff(tails) / tails[0]
    counts = np.bincount(m.truth["emergence"][mono], minlength=len(n) + 1)[1:]
    assert counts.sum() == mono.sum() and np.all(counts[p == 0] == 0)
    live = p > 0
    assert stats.chisquare(counts[live], p[live] * counts.sum()).pvalue > 1e-4


def test_kinds_have_their_shares():
    m = generate_tokens(SMALL, seed=7)
    kind, n = m.truth["kind"], SMALL.n_tokens
    for code, share in ((0, SMALL.flat), (1, (1 - SMALL.flat) * SMALL.monogenic)):
        assert abs(np.mean(kind == code) - share) < 5 * np.sqrt(share * (1 - share) / n)


@settings(max_examples=15)
@given(seed=seeds, alpha=st.floats(0.1, 1.5), noise=st.floats(0.0, 0.5))
def test_clean_curves_never_rise_and_losses_are_valid(seed, alpha, noise):
    m = generate_tokens(TokenConfig(n_tokens=2_000, n_quanta=20_000, alpha=alpha,
                                    noise=noise, seed=seed))
    assert np.all(np.isfinite(m.losses)) and np.all(m.losses > 0)
    assert np.all(np.diff(m.truth["clean"], axis=1) <= 1e-6)


def test_steps_learn_in_order_of_frequency():
    """A checkpoint knows the quanta seen τ times: k with S·batch·p_k ≥ τ; a monogenic
    token drops at the first checkpoint past τ/(batch·p_k)."""
    steps = tuple(np.geomspace(1e3, 1e5, 8))
    cfg = TokenConfig(n_tokens=5_000, sizes=None, steps=steps, n_quanta=100_000, seed=8)
    n = quanta_known(cfg)
    p = theory.frequencies(cfg.alpha, cfg.n_quanta)
    for S, known in zip(steps, n):
        assert np.all(S * cfg.batch * p[:known] >= cfg.tau)
        assert known == cfg.n_quanta or S * cfg.batch * p[known] < cfg.tau
    m = generate_tokens(cfg)
    mono = (m.truth["kind"] == 1) & (m.truth["emergence"] < len(steps))
    k = m.truth["quantum"][mono]
    at = cfg.tau / (cfg.batch * p[k - 1])
    col = m.truth["emergence"][mono]
    assert np.all(at <= np.asarray(steps)[col] * (1 + 1e-9))
    assert np.all((col == 0) | (at > np.asarray(steps)[col - 1]))
    assert first_rank(cfg) == n[0]


@pytest.mark.parametrize("change, match", [
    (dict(sizes=None), "exactly one"), (dict(sizes=(3.0, 2.0, 5.0)), "increasing"),
    (dict(monogenic=1.5), "monogenic"), (dict(genes=(1, 3)), "genes"),
    (dict(loss_learned=5.0), "below"), (dict(alpha=0.0), "alpha")])
def test_bad_configs_are_refused(change, match):
    with pytest.raises(InputError, match=match):
        generate_tokens(SMALL, **change)


def test_pythia_sizes_are_the_papers_non_embedding_counts():
    # experiments/pythia-0/get_num_params.py output in the paper's repository
    assert PYTHIA_SIZES[0] == 18_915_328 and PYTHIA_SIZES[6] == 6_444_163_072
    assert np.all(np.diff(PYTHIA_SIZES) > 0)
