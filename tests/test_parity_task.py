"""Multitask sparse parity data: labels, encoding, subsets and Zipf frequencies."""
import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from empirical.parity import SparseParityTask


def _parity_by_hand(task, x):
    """Decode each encoded row with NumPy and compute the parity of its subtask's subset."""
    x = x.numpy()
    control, bits = x[:, :task.n_tasks], x[:, task.n_tasks:]
    assert np.all(control.sum(1) == 1), "control part must be one-hot"
    subtask = control.argmax(1)
    out = []
    for s, b in zip(subtask, bits):
        out.append(int(sum(b[j] for j in task.subsets[s])) % 2)
    return subtask, np.array(out)


@pytest.mark.parametrize("n_tasks,n_bits,k,seed", [(5, 8, 3, 0), (30, 12, 2, 1), (50, 20, 4, 2)])
def test_labels_are_parities_of_the_subtask_subsets(n_tasks, n_bits, k, seed):
    task = SparseParityTask(n_tasks, n_bits, k, alpha=0.4, seed=seed)
    x, y, subtask = task.sample(3000, torch.Generator().manual_seed(seed))
    assert x.shape == (3000, n_tasks + n_bits) and x.dtype == torch.float32
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}
    sub_hand, y_hand = _parity_by_hand(task, x)
    np.testing.assert_array_equal(sub_hand, subtask.numpy())
    np.testing.assert_array_equal(y_hand, y.numpy())
    assert 0.4 < y.float().mean() < 0.6


def test_subsets_are_distinct_sorted_and_in_range():
    task = SparseParityTask(500, 100, 3, alpha=0.4, seed=3)
    s = task.subsets
    assert s.shape == (500, 3)
    assert np.all(np.diff(s, axis=1) > 0) and s.min() >= 0 and s.max() < 100
    assert len({tuple(r) for r in s}) == 500
    # the seed fixes the subsets, and a different seed changes them
    np.testing.assert_array_equal(s, SparseParityTask(500, 100, 3, seed=3).subsets)
    assert not np.array_equal(s, SparseParityTask(500, 100, 3, seed=4).subsets)


def test_all_subsets_when_n_tasks_is_the_number_of_subsets():
    task = SparseParityTask(10, 5, 3, seed=0)  # C(5,3) = 10
    assert {tuple(r) for r in task.subsets} == set(itertools.combinations(range(5), 3))


def test_paper_parameter_count():
    task = SparseParityTask(500, 100, 3)
    for width in (9, 100, 500):
        assert task.n_params(width) == 603 * width + 2
    # and at any depth, the count of the network actually built
    from empirical.parity import MLP
    small = SparseParityTask(6, 8, 3)
    for width, depth in ((4, 1), (7, 2), (5, 3)):
        mlp = MLP(small.input_dim, width, depth)
        assert small.n_params(width, depth) == sum(p.numel() for p in mlp.parameters())


@pytest.mark.parametrize("alpha,offset", [(0.4, 1), (0.1, 1), (1.5, 3)])
def test_frequencies_are_exact_zipf(alpha, offset):
    task = SparseParityTask(40, 10, 3, alpha=alpha, offset=offset)
    i = np.arange(40)
    w = 1.0 / (i + offset) ** (1 + alpha)
    np.testing.assert_allclose(task.frequencies, w / w.sum(), rtol=1e-12)
    # consecutive ratios follow the power law exactly
    np.testing.assert_allclose(task.frequencies[1:] / task.frequencies[:-1],
                               ((i[:-1] + offset) / (i[1:] + offset)) ** (1 + alpha), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_subtask_counts_pass_chi_square(seed):
    """Chi-square goodness of fit at a fixed false-alarm rate of 1e-4 per seed."""
    task = SparseParityTask(50, 10, 3, alpha=0.4)
    n = 200_000
    sub, _ = task.sample_raw(n, torch.Generator().manual_seed(seed))
    counts = np.bincount(sub.numpy(), minlength=50)
    expected = n * task.frequencies
    assert expected.min() > 5
    p = stats.chisquare(counts, expected).pvalue
    assert p > 1e-4, f"subtask counts do not follow the Zipf law (p = {p:.2e})"


def test_chi_square_detects_the_wrong_exponent():
    """The same test has power: counts drawn at alpha = 0.4 reject alpha = 0.5."""
    task = SparseParityTask(50, 10, 3, alpha=0.4)
    sub, _ = task.sample_raw(200_000, torch.Generator().manual_seed(0))
    counts = np.bincount(sub.numpy(), minlength=50)
    wrong = SparseParityTask(50, 10, 3, alpha=0.5).frequencies * 200_000
    assert stats.chisquare(counts, wrong).pvalue < 1e-4


def test_test_set_has_every_subtask_equally():
    task = SparseParityTask(7, 9, 3)
    sub, bits = task.test_set(11, seed=5)
    np.testing.assert_array_equal(np.bincount(sub.numpy()), np.full(7, 11))
    sub2, bits2 = task.test_set(11, seed=5)
    assert torch.equal(bits, bits2)
    assert not torch.equal(bits, task.test_set(11, seed=6)[1])


def test_same_generator_seed_same_batch():
    task = SparseParityTask(20, 12, 3)
    a = task.sample(100, torch.Generator().manual_seed(9))
    b = task.sample(100, torch.Generator().manual_seed(9))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("kwargs,name", [
    (dict(n_tasks=0), "n_tasks"), (dict(k=11), "k"), (dict(alpha=-1.0), "alpha"),
    (dict(offset=0), "offset"), (dict(n_tasks=200, n_bits=6, k=3), "n_tasks")])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(n_tasks=10, n_bits=10, k=3) | kwargs
    with pytest.raises(ValueError, match=name):
        SparseParityTask(**args)


@pytest.mark.gpu
def test_sampling_on_cuda_matches_labels():
    task = SparseParityTask(100, 30, 3)
    x, y, sub = task.sample(5000, torch.Generator(device="cuda").manual_seed(0))
    assert x.is_cuda
    _, y_hand = _parity_by_hand(task, x.cpu())
    np.testing.assert_array_equal(y_hand, y.cpu().numpy())


def test_docstring_example_encoding():
    """The module docstring's example: subtask 2 of 4 with subset (0, 3, 5)."""
    task = SparseParityTask(4, 6, 3, seed=0)
    task.subsets = task.subsets.copy()
    task.subsets[2] = [0, 3, 5]
    task._cache.clear()
    sub = torch.tensor([2])
    bits = torch.tensor([[1, 0, 1, 1, 0, 1]], dtype=torch.uint8)
    x = task.encode(sub, bits)
    assert x.tolist() == [[0, 0, 1, 0, 1, 0, 1, 1, 0, 1]]
    assert task.label(sub, bits).tolist() == [1]


# ---- the counter-based sweep sampler -------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from empirical.parity.task import SweepSampler, mix32  # noqa: E402
from strategies import seeds  # noqa: E402


def _lowbias32(x: int) -> int:
    """C. Wellons' lowbias32 written with NumPy's wrapping uint32 arithmetic (the reference
    for mix32, which emulates it in int64 without overflow)."""
    x = np.uint32(x)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
    return int(x)


@given(seeds)
def test_mix32_is_lowbias32(seed):
    x = np.random.default_rng(seed).integers(0, 2 ** 32, 64)
    got = mix32(torch.as_tensor(x)).numpy()
    np.testing.assert_array_equal(got, [_lowbias32(v) for v in x])


def _groups(rng, n):
    return [dict(alpha=float(rng.choice([0.1, 0.4, 1.2])), seed=int(rng.integers(0, 5)),
                 D=int(rng.choice([0, 0, 7, 64, 1000]))) for _ in range(n)]


@settings(max_examples=15)
@given(seeds, st.integers(1, 4), st.integers(1, 300))
def test_a_batched_draw_equals_each_group_drawn_alone(seed, n_groups, step):
    """The point of the counter sampler: group g's batch does not depend on the groups
    drawn beside it (bit for bit), and it is a pure function of the step."""
    rng = np.random.default_rng(seed)
    task = SparseParityTask(12, 10, 3, seed=int(rng.integers(0, 3)))
    groups = _groups(rng, n_groups)
    batch = int(rng.integers(1, 50))
    together = SweepSampler(task, groups, batch).draw(step)
    for g, group in enumerate(groups):
        alone = SweepSampler(task, [group], batch).draw(torch.tensor(step))
        for a, b in zip(together, alone):
            assert torch.equal(a[g], b[0])
    again = SweepSampler(task, groups, batch).draw(step)
    assert all(torch.equal(a, b) for a, b in zip(together, again))


@pytest.mark.parametrize("D,batch", [(7, 3), (10, 10), (64, 20), (50, 120), (1000, 333)])
def test_finite_D_epochs_serve_every_sample_once_in_fresh_orders(D, batch):
    """D > 0: the positions of each epoch (p = e·D … (e+1)·D − 1 of the stream of batch
    positions) take every sample number 0 … D−1 exactly once, in another order each epoch
    (D > 2), also when a batch spans several epochs; the content of a sample number is the
    same whenever it is served. (An epoch's order is one of φ(D)·D affine maps: few for a
    tiny D, so the fresh-order check starts at D = 50.)"""
    task = SparseParityTask(12, 10, 3)
    s = SweepSampler(task, [dict(alpha=0.4, seed=3, D=D)], batch)
    steps = -(-4 * D // batch) + 1
    numbers = torch.cat([s.sample_numbers(k)[0] for k in range(1, steps + 1)])
    epochs = numbers[:4 * D].view(4, D)
    for e in epochs:
        assert torch.equal(e.sort().values, torch.arange(D))
    if D >= 50:
        assert len({tuple(e.tolist()) for e in epochs}) == 4
    content = {}
    for k in range(1, steps + 1):
        sub, bits, _ = s.draw(k)
        for n, row in zip(s.sample_numbers(k)[0].tolist(), zip(sub[0].tolist(), bits[0].tolist())):
            assert content.setdefault(n, row) == row


def test_online_groups_draw_fresh_samples_and_correct_labels():
    """D = 0: consecutive steps take consecutive sample numbers (never repeated); labels are
    the parities of each row's subset (checked by hand through the one-hot encoding)."""
    task = SparseParityTask(30, 12, 3, seed=1)
    s = SweepSampler(task, [dict(alpha=0.4, seed=0, D=0)], 500)
    np.testing.assert_array_equal(s.sample_numbers(3)[0].numpy(), np.arange(1000, 1500))
    sub, bits, y = s.draw(3)
    sub_hand, y_hand = _parity_by_hand(task, task.encode(sub[0], bits[0]))
    np.testing.assert_array_equal(sub_hand, sub[0].numpy())
    np.testing.assert_array_equal(y_hand, y[0].numpy())


@pytest.mark.parametrize("alpha,D", [(0.4, 0), (0.1, 0), (1.2, 0), (0.4, 300_000)])
def test_counter_sampler_subtasks_follow_zipf_and_bits_are_fair(alpha, D):
    """Subtask counts pass a chi-square test against each group's own Zipf law (false alarm
    1e-4); every data bit is 1 half the time (each within 5 standard errors) and two bits of
    a row, or the same bit of neighbouring samples, are uncorrelated (|r| < 5/sqrt(n))."""
    task = SparseParityTask(50, 40, 3)
    s = SweepSampler(task, [dict(alpha=alpha, seed=0, D=D), dict(alpha=0.9, seed=0, D=D)],
                     50_000)
    sub, bits, _ = s.draw(2)
    n = sub.shape[1]
    for g, a in enumerate((alpha, 0.9)):
        freq = SparseParityTask(50, 40, 3, alpha=a).frequencies
        p = stats.chisquare(np.bincount(sub[g].numpy(), minlength=50), n * freq).pvalue
        assert p > 1e-4, f"group {g} (alpha {a}): subtasks do not follow Zipf (p = {p:.1e})"
    b = bits[0].double()
    assert ((b.mean(0) - 0.5).abs() < 5 * 0.5 / np.sqrt(n)).all()
    r = np.corrcoef(b.T.numpy())[np.triu_indices(40, 1)]
    assert np.abs(r).max() < 5 / np.sqrt(n) * 1.5      # 780 pairs: allow the maximum's spread
    r_next = np.corrcoef(b[:-1, 0].numpy(), b[1:, 0].numpy())[0, 1]
    assert abs(r_next) < 5 / np.sqrt(n)
