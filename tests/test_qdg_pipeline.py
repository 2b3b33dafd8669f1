"""QDG pipeline: per-sample gradients, similarity, clustering, bad input."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import SpectralClustering
from sklearn.metrics import adjusted_rand_score
from torch import nn

import theory
from empirical.qdg import (ESTIMATORS, QDGClustering, QDGClusteringSweep, angular_affinity,
                           cluster_sizes, cosine_similarity, estimate_alpha,
                           per_sample_gradients, per_sample_gradients_loop, select_parameters,
                           toy_embeddings)
from tests import strategies


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Embedding(10, 6), nn.Flatten(), nn.Linear(12, 16), nn.LayerNorm(16),
                         nn.ReLU(), nn.Linear(16, 3))


def _mlp_data(seed=0, n=37, d=12):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 20), nn.Tanh(), nn.Linear(20, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return model, x, y


def test_default_parameters_skip_embeddings_and_norms():
    names = select_parameters(_model())
    assert names == ["2.weight", "2.bias", "5.weight", "5.bias"]


@pytest.mark.parametrize("chunk_size", [1, 8, 64])
def test_vectorised_gradients_equal_backward_loop(chunk_size):
    model, x, y = _mlp_data()
    fast = per_sample_gradients(model, x, y, chunk_size=chunk_size)
    slow = per_sample_gradients_loop(model, x, y)
    assert fast.shape == (37, 12 * 20 + 20 + 20 * 3 + 3)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_gradients_of_a_model_with_embedding_and_norm_match_loop():
    model = _model()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 10, (9, 2), generator=g)
    y = torch.randint(0, 3, (9,), generator=g)
    fast = per_sample_gradients(model, x, y, chunk_size=4)
    slow = per_sample_gradients_loop(model, x, y)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_projection_preserves_cosines_roughly():
    model, x, y = _mlp_data(n=20)
    full = cosine_similarity(per_sample_gradients(model, x, y))
    proj = cosine_similarity(per_sample_gradients(model, x, y, project_dim=2048, seed=3))
    # Johnson–Lindenstrauss: error of order 1/sqrt(2048) ≈ 0.022
    assert np.abs(full - proj).max() < 0.15
    assert np.abs(full - proj).mean() < 0.04


def test_similarity_matches_dense_reference_and_is_symmetric():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((103, 17)).astype(np.float32)
    cos = cosine_similarity(torch.from_numpy(g), block_size=10)
    gn = g.astype(np.float64) / np.linalg.norm(g, axis=1, keepdims=True)
    ref = gn @ gn.T
    np.testing.assert_allclose(cos, ref, atol=2e-6)
    aff = angular_affinity(torch.from_numpy(g), block_size=7)
    np.fill_diagonal(ref, 1.0)
    # arccos amplifies float32 rounding near ±1: error ≤ sqrt(2·1e-7)/π ≈ 1.5e-4
    np.testing.assert_allclose(aff, 1 - np.arccos(np.clip(ref, -1, 1)) / np.pi, atol=3e-4)
    for m in (cos, aff):
        assert np.array_equal(m, m.T)
        assert np.all(np.diag(m) == 1.0)
    assert aff.min() >= 0 and aff.max() <= 1


def test_planted_clusters_recovered_exactly():
    x, truth = toy_embeddings(0.3, 8, 600, 64, 0.05, seed=2)
    model = QDGClustering(8, n_init=10, random_state=0).fit(torch.from_numpy(x))
    assert model.labels_.shape == (600,)
    assert adjusted_rand_score(truth, model.labels_) == 1.0
    np.testing.assert_array_equal(model.cluster_sizes_, np.sort(np.bincount(truth))[::-1])


@pytest.mark.parametrize("solver", ["arpack", "dense", "lanczos"])
def test_single_k_matches_sklearn_spectral_clustering(solver):
    x, _ = toy_embeddings(0.5, 20, 400, 16, 0.6, seed=4)
    A = angular_affinity(torch.from_numpy(x))
    ref = SpectralClustering(12, affinity="precomputed", random_state=3).fit(A).labels_
    ours = QDGClustering(12, affinity="precomputed", eigen_solver=solver, random_state=3).fit(A)
    if solver == "arpack":           # the same computation: identical labels
        np.testing.assert_array_equal(ours.labels_, ref)
    else:                            # LAPACK / matrix-free Lanczos: the same eigenvectors
        assert adjusted_rand_score(ref, ours.labels_) > 0.9


def test_several_k_share_one_embedding():
    x, _ = toy_embeddings(0.5, 20, 400, 16, 0.3, seed=5)
    A = angular_affinity(torch.from_numpy(x))
    multi = QDGClusteringSweep([6, 12], affinity="precomputed", eigen_solver="arpack",
                               random_state=1).fit(A)
    assert set(multi.labels_by_k_) == {6, 12} and multi.embedding_.shape == (400, 12)
    assert all(v.shape == (400,) for v in multi.labels_by_k_.values())
    single = QDGClustering(6, affinity="precomputed", eigen_solver="arpack",
                           random_state=1).fit(A)
    assert adjusted_rand_score(single.labels_, multi.labels_by_k_[6]) > 0.95
    assert multi.eigenvalues_[0] == pytest.approx(0, abs=1e-4)
    assert np.all(np.diff(multi.eigenvalues_) > -1e-4)
    for solver in ("dense", "lanczos"):
        other = QDGClusteringSweep([6, 12], affinity="precomputed", eigen_solver=solver,
                                   random_state=1).fit(A)
        np.testing.assert_allclose(other.eigenvalues_[:6], multi.eigenvalues_[:6], atol=1e-4)


def test_cluster_sizes_sorted():
    np.testing.assert_array_equal(cluster_sizes([3, 1, 1, 2, 3, 3]), [3, 2, 1])


def test_bad_input_messages():
    model, x, y = _mlp_data()
    with pytest.raises(ValueError, match="no samples"):
        per_sample_gradients(model, x[:0], y[:0])
    with pytest.raises(ValueError, match="X: Found array with 0 sample"):
        QDGClustering(2).fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="n_clusters=50 is not smaller than the number of samples"):
        QDGClustering(50).fit(torch.randn(20, 4, generator=torch.Generator().manual_seed(0)))
    bad = torch.ones(5, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        QDGClustering(2).fit(bad)
    with pytest.raises(ValueError, match="zero gradient"):
        angular_affinity(torch.zeros(3, 4))
    nan_model = nn.Linear(12, 3)
    with torch.no_grad():
        nan_model.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN/inf gradients"):
        per_sample_gradients(nan_model, x, y)
    with pytest.raises(ValueError, match="params: unknown"):
        per_sample_gradients(model, x, y, params=["nope"])
    with pytest.raises(ValueError, match="symmetric"):
        QDGClustering(2, affinity="precomputed").fit(np.triu(np.ones((4, 4))))


def test_factored_linear_gradients_give_the_exact_cosines():
    model, x, y = _mlp_data(n=41)
    from empirical.qdg import linear_gradient_factors
    dense = cosine_similarity(per_sample_gradients(model, x, y))
    factors = linear_gradient_factors(model, x, y, chunk_size=16)
    np.testing.assert_allclose(cosine_similarity(factors, block_size=9), dense, atol=2e-6)
    np.testing.assert_allclose(factors.sq_norms().numpy(),
                               (per_sample_gradients(model, x, y).double() ** 2).sum(1).numpy(),
                               rtol=1e-5)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="not a whole nn.Linear layer"):
        linear_gradient_factors(_model(), torch.zeros(3, 2, dtype=torch.long),
                                torch.zeros(3, dtype=torch.long), params=["3.weight", "3.bias"])


def test_default_loss_is_cross_entropy_and_keeps_the_label_symmetry():
    from empirical.qdg.gradients import cross_entropy_loss
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(50, 4, generator=g, dtype=torch.float64) * 3, torch.randint(0, 4, (50,), generator=g)
    assert cross_entropy_loss(z, y).item() == pytest.approx(
        nn.functional.cross_entropy(z, y).item(), rel=1e-12)
    for margin in (5.0, 30.0, 60.0):   # float32 cross_entropy gives ∂L/∂z_y = 0 from ~17 on
        z = torch.tensor([[margin, 0.0]], requires_grad=True)
        cross_entropy_loss(z, torch.tensor([0])).backward()
        gy, go = z.grad[0]
        assert gy < 0 < go and gy.item() == pytest.approx(-go.item(), rel=1e-6)
        assert go.item() == pytest.approx(np.exp(-margin) / (1 + np.exp(-margin)), rel=1e-6)


@pytest.mark.gpu
def test_factored_gradients_on_cuda_match_the_cpu():
    from empirical.qdg import linear_gradient_factors
    model, x, y = _mlp_data(n=41)
    cpu = linear_gradient_factors(model, x, y, chunk_size=16)
    gpu = linear_gradient_factors(model.cuda(), x.cuda(), y.cuda(), chunk_size=16)
    np.testing.assert_allclose(gpu.sq_norms().cpu().numpy(), cpu.sq_norms().numpy(), rtol=1e-5)
    np.testing.assert_allclose(cosine_similarity(gpu, block_size=9),
                               cosine_similarity(cpu, block_size=9), atol=2e-5)


def test_unit_gradients_at_extreme_scales():
    """Rows of tiny or huge entries: their float32 norm would underflow or overflow."""
    base = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    for scale in (1e20, 1e-22, 1e-25):
        a = angular_affinity(base * scale)
        assert a[0, 1] == pytest.approx(0.75, abs=1e-6), scale


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")
def test_isolated_sample_does_not_break_the_lanczos_route():
    g = torch.Generator().manual_seed(0)
    a = angular_affinity(torch.randn(40, 6, generator=g))
    a[0, 1:] = a[1:, 0] = 0.0               # sample 0 shares nothing with the others
    for solver in ("dense", "lanczos", "arpack"):
        labels = QDGClustering(3, affinity="precomputed", eigen_solver=solver,
                               random_state=0).fit(a).labels_
        assert labels.shape == (40,) and len(set(labels)) <= 3


def test_factored_cosines_hold_for_very_confident_samples():
    """A sample with margin m has deltas ~e^-m: their float32 products underflowed from
    m ≈ 45 on and the factored cosines of confident pairs came out 0 (now each sample's
    deltas are rescaled); beyond m ≈ 100 the deltas themselves are 0 in float32, and only
    the log loss (same directions, O(1) gradients) keeps them. The reference is the dense
    path on the log loss."""
    from empirical.qdg import linear_gradient_factors, per_sample_gradients
    from empirical.qdg.gradients import log_cross_entropy_loss
    for factor, loss_fn in ((30.0, None), (60.0, log_cross_entropy_loss)):
        model, x, y = _mlp_data(n=30)
        with torch.no_grad():
            model[2].weight.mul_(factor)
            model[2].bias.mul_(factor)
            z = model(x)
        other = z.masked_fill(torch.nn.functional.one_hot(y, 3).bool(), -np.inf).amax(1)
        margins = z.gather(1, y[:, None])[:, 0] - other
        assert margins.max() > (45 if loss_fn is None else 150)
        kw = {} if loss_fn is None else dict(loss_fn=loss_fn)
        reference = cosine_similarity(per_sample_gradients(model, x, y,
                                                           loss_fn=log_cross_entropy_loss))
        factored = cosine_similarity(linear_gradient_factors(model, x, y, chunk_size=7, **kw),
                                     block_size=11)
        np.testing.assert_allclose(factored, reference, atol=1e-4)


def test_log_loss_has_the_direction_of_the_loss():
    from empirical.qdg.gradients import cross_entropy_loss, log_cross_entropy_loss
    for margin in (-3.0, 0.5, 8.0, 29.0, 31.0):
        z = torch.tensor([[margin, 0.0, -1.0]], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(cross_entropy_loss(z, torch.tensor([0])), z)
        (h,) = torch.autograd.grad(log_cross_entropy_loss(z, torch.tensor([0])), z)
        loss = cross_entropy_loss(z, torch.tensor([0])).item()
        np.testing.assert_allclose(h.numpy(), g.numpy() / loss, rtol=1e-9)


def test_float64_gradients_of_extreme_size_are_normalised_before_the_cast():
    base = np.array([[1.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    for scale in (1e-50, 1e40):
        a = angular_affinity(base * scale)
        assert a[1, 2] == pytest.approx(0.5, abs=1e-6) and np.isfinite(a).all()


def test_a_layer_applied_twice_is_refused_clearly():
    from empirical.qdg import linear_gradient_factors
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.Tanh(), shared, nn.Linear(4, 2))
    with pytest.raises(ValueError, match="more than once"):
        linear_gradient_factors(model, torch.randn(5, 4), torch.zeros(5, dtype=torch.long))


def test_projection_drawn_block_by_block_equals_the_kept_matrix():
    """Above its memory budget the projection is drawn again block by block at each use:
    the same numbers as the matrix kept whole, for gradients that straddle blocks."""
    from empirical.qdg.gradients import GaussianProjection
    g = torch.randn(5, 23, generator=torch.Generator().manual_seed(0))
    kept = GaussianProjection(23, 8, seed=4, block_rows=7)
    drawn = GaussianProjection(23, 8, seed=4, block_rows=7, max_bytes=0)
    assert kept.matrix is not None and drawn.matrix is None
    torch.testing.assert_close(drawn(g), kept(g))
    torch.testing.assert_close(drawn.apply(g[:, 5:17], 5), g[:, 5:17] @ kept.matrix[5:17])
    assert drawn(g.to(torch.bfloat16)).dtype == torch.float32


# ---------------------------------------------------------------- estimator contract and
# relabelling invariance: the clustering depends on the samples, not on their order

@pytest.mark.parametrize("estimator", [QDGClustering(n_clusters=3),
                                       QDGClusteringSweep(ks=[2, 3])], ids=type)
def test_scikit_learn_estimator_checks(estimator):
    from sklearn.utils.estimator_checks import check_estimator
    zero_rows = ("random data cast to integers has all-zero rows: a zero gradient has no "
                 "direction, refused with a one-line error")
    state = np.random.get_state()            # some of sklearn's checks draw from it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's SkipTestWarning, k-means' notes
            check_estimator(estimator,
                            expected_failed_checks={"check_estimators_dtypes": zero_rows})
    finally:
        np.random.set_state(state)


def test_one_k_per_clustering():
    x, _ = toy_embeddings(0.3, 4, 60, 8, 0.05, seed=0)
    with pytest.raises(ValueError, match="one K per QDGClustering.*QDGClusteringSweep"):
        QDGClustering([2, 4]).fit(x)
    assert QDGClustering(4).fit_predict(x).shape == (60,)


@settings(max_examples=6)
@given(seed=strategies.seeds, n_clusters=st.integers(3, 8))
def test_permuting_samples_permutes_the_clustering(seed, n_clusters):
    """Planted, well-separated clusters (σ = 0.05): QDG recovers them exactly (ARI 1), and
    clustering the samples in another order gives the same partition, eigenvalues and
    sizes, for the single K and for each K of a sweep."""
    rng = np.random.default_rng(seed)
    x, truth = toy_embeddings(0.4, n_clusters, 40 * n_clusters, 16, 0.05, seed=seed)
    if np.bincount(truth, minlength=n_clusters).min() < 2:
        return                               # a planted cluster drawn empty: nothing to find
    perm = rng.permutation(len(x))
    one = QDGClustering(n_clusters, n_init=3, random_state=seed % 2**31).fit(x)
    moved = QDGClustering(n_clusters, n_init=3, random_state=seed % 2**31).fit(x[perm])
    assert adjusted_rand_score(truth, one.labels_) == 1.0
    assert adjusted_rand_score(one.labels_[perm], moved.labels_) == 1.0
    np.testing.assert_allclose(moved.eigenvalues_, one.eigenvalues_, atol=1e-5)
    np.testing.assert_array_equal(moved.cluster_sizes_, one.cluster_sizes_)
    sweep = QDGClusteringSweep([2, n_clusters], n_init=3, random_state=seed % 2**31).fit(x[perm])
    assert adjusted_rand_score(truth[perm], sweep.labels_by_k_[n_clusters]) == 1.0
    np.testing.assert_array_equal(sweep.cluster_sizes_[n_clusters], one.cluster_sizes_)


@given(seed=strategies.seeds, alpha=strategies.alphas)
def test_alpha_estimates_do_not_depend_on_cluster_names(seed, alpha):
    """Renaming the clusters and reordering the sizes leaves every estimate unchanged."""
    rng = np.random.default_rng(seed)
    p = theory.frequencies(alpha, K=25)
    labels = rng.choice(25, size=3000, p=p / p.sum())
    renamed = rng.permutation(25)[labels]
    sizes = cluster_sizes(labels)
    assert np.array_equal(cluster_sizes(renamed), sizes)
    for name in ESTIMATORS:
        if name == "mle":
            continue                         # needs hundreds of clusters (its own tests)
        a = estimate_alpha({25: sizes}, name, bootstrap=0).alpha_hat
        b = estimate_alpha({25: rng.permutation(sizes)}, name, bootstrap=0).alpha_hat
        assert a == b, name
