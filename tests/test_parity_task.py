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
