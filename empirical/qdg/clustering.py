"""Spectral clustering of samples for one or several cluster counts K, scikit-learn style.

:class:`QDGClustering` (one K) follows ``sklearn.cluster.SpectralClustering`` with
``affinity="precomputed"``, ``assign_labels="kmeans"``: the normalised-Laplacian embedding
``u = D^-1/2 x`` of the eigenvectors x of the smallest eigenvalues (first eigenvector kept,
``drop_first=False``, signs fixed as sklearn does), then ``k_means`` on it.
:class:`QDGClusteringSweep` (several K) computes the embedding **once** with ``max(K)``
components and runs k-means on its leading K columns for each K, instead of one
eigen-solve per K. The random stream is consumed as sklearn consumes
it (one RandomState(random_state): the ARPACK start vector, then k-means with the state that
follows), so for one K and ``eigen_solver="arpack"`` the labels are sklearn's
``SpectralClustering(n_clusters=K, affinity="precomputed", random_state=seed).fit(A).labels_``.
For several K they agree wherever the leading K eigenvectors are determined (no eigenvalue
degenerate across the K-th), since an eigen-solve with more components returns the same
leading eigenvectors to solver precision.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch
from scipy.sparse import csgraph
from scipy.sparse.linalg import LinearOperator, eigsh
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import k_means
from sklearn.manifold import spectral_embedding
from sklearn.utils.validation import validate_data

from common.errors import InputError
from .similarity import angular_affinity

EIGEN_SOLVERS = ("auto", "arpack", "dense", "lanczos")
#: "auto" uses the dense LAPACK solver up to this many samples, matrix-free Lanczos above
DENSE_MAX_SAMPLES = 6000


def _sign_flip(vectors: np.ndarray) -> np.ndarray:
    """sklearn's deterministic sign: the largest-magnitude entry of each row is positive."""
    idx = np.argmax(np.abs(vectors), axis=1)
    signs = np.sign(vectors[np.arange(vectors.shape[0]), idx])
    signs[signs == 0] = 1
    return vectors * signs[:, None]


def _normalized_adjacency(affinity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D^-½ A D^-½ (float32, new array) and D^½, without self-loops, as
    ``scipy.sparse.csgraph.laplacian`` (hence sklearn) builds the normalised Laplacian."""
    deg = affinity.sum(axis=1, dtype=np.float64) - np.diag(affinity)
    dd = np.sqrt(np.where(deg > 0, deg, 1.0)).astype(np.float32)  # isolated: 1, as scipy
    m = affinity / dd[:, None]
    m /= dd[None, :]
    np.fill_diagonal(m, 0.0)
    return m, dd


def laplacian_embedding(affinity: np.ndarray, n_components: int, *, eigen_solver: str = "auto",
                        random_state: np.random.RandomState | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The spectral embedding (n × n_components) and the normalised-Laplacian eigenvalues.

    ``"arpack"`` calls ``sklearn.manifold.spectral_embedding`` (shift-invert ARPACK, the
    route of SpectralClustering); ``"dense"`` takes the same eigenvectors from LAPACK
    (``scipy.linalg.eigh`` with a subset, in float64: in float32 the embedding moved by
    ~1e-6 with the BLAS thread count and k-means amplified that into different clusters),
    faster for a few thousand samples. ARPACK works on a float64 copy, as SpectralClustering does.
    ``"lanczos"`` finds the largest eigenvalues of D^-½AD^-½ (= 1 − the smallest of the
    Laplacian) by ARPACK without shift-invert, from float32 matrix products only: no float64
    copy, no LU factorisation (20 000 samples, 200 components: 247 s and 3.6 GB against
    522 s and 14.6 GB for "arpack"; BENCHMARKS.md). Eigenvectors inside the near-degenerate bulk of the
    spectrum (beyond the real clusters) are not determined by any solver; there the routes
    differ, as they would between machines.
    ``random_state`` (a RandomState) is advanced exactly as ARPACK's start vector does.
    """
    if eigen_solver not in EIGEN_SOLVERS:
        raise InputError(f"eigen_solver must be one of {EIGEN_SOLVERS}, got {eigen_solver!r}")
    n = affinity.shape[0]
    rs = random_state if random_state is not None else np.random.RandomState(0)
    if eigen_solver == "auto":
        eigen_solver = "dense" if n <= DENSE_MAX_SAMPLES else "lanczos"
    if eigen_solver == "arpack":
        emb = spectral_embedding(affinity.astype(np.float64), n_components=n_components,
                                 eigen_solver="arpack",
                                 random_state=rs, drop_first=False)
        m = _normalized_adjacency(affinity)[0]
        x = emb * np.sqrt(affinity.sum(axis=1, dtype=np.float64) - np.diag(affinity))[:, None]
        x = x.astype(np.float32)                 # eigenvectors of L = I − D^-½AD^-½
        evals = 1.0 - np.einsum("ij,ij->j", x, m @ x) / np.einsum("ij,ij->j", x, x)
        return emb, evals
    v0 = rs.uniform(-1, 1, n)  # the draw ARPACK's v0 makes: keeps k-means seeds identical
    if eigen_solver == "lanczos":
        m, dd = _normalized_adjacency(affinity)
        op = LinearOperator(m.shape, matvec=lambda v: m @ v.astype(np.float32),
                            matmat=lambda v: m @ v.astype(np.float32), dtype=np.float32)
        w, vecs = eigsh(op, k=n_components, which="LA", v0=v0, tol=1e-6)
        order = np.argsort(-w)
        emb = _sign_flip((vecs[:, order] / dd[:, None]).T).T
        return emb, 1.0 - w[order]
    lap, dd = csgraph.laplacian(affinity.astype(np.float64), normed=True, return_diag=True)
    evals, vecs = scipy.linalg.eigh(lap, subset_by_index=[0, n_components - 1],
                                    driver="evr", overwrite_a=True, check_finite=False)
    emb = _sign_flip((vecs / dd[:, None]).T).T
    return emb, evals


def _affinity(estimator, X) -> np.ndarray:
    """The (n, n) float32 affinity of ``fit``'s input: QDG's angular affinity of gradient
    rows (``affinity="gradients"``: a tensor, :class:`LinearGradientFactors`, or an
    array-like checked as scikit-learn checks it) or a checked precomputed matrix."""
    from .gradients import LinearGradientFactors

    if estimator.affinity not in ("gradients", "precomputed"):
        raise InputError("affinity must be 'gradients' or 'precomputed', got "
                         f"{estimator.affinity!r}")
    if not isinstance(X, (torch.Tensor, LinearGradientFactors)):
        try:
            X = validate_data(estimator, X, accept_sparse=False, ensure_min_samples=2,
                              dtype=(np.float64, np.float32))
        except ValueError as err:         # scikit-learn's own message, as a project error
            raise InputError(f"X: {str(err).splitlines()[0]}") from None
        X = X if X.flags.writeable else X.copy()      # torch cannot wrap read-only memory
    elif isinstance(X, torch.Tensor) and X.ndim == 2:
        estimator.n_features_in_ = int(X.shape[1])
    if estimator.affinity == "gradients":
        return angular_affinity(X, block_size=estimator.block_size)
    A = np.asarray(X, dtype=np.float32)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"precomputed affinity must be square, got shape {A.shape}")
    if not np.isfinite(A).all():
        raise InputError("affinity contains NaN/inf")
    if not np.allclose(A, A.T, atol=1e-6):
        raise InputError(f"precomputed affinity must be symmetric (largest |A - A.T| = "
                         f"{float(np.abs(A - A.T).max()):.3g})")
    if (A < 0).any():
        raise InputError("precomputed affinity must be non-negative")
    return A


def _check_k(k, n_samples: int, name: str = "n_clusters") -> int:
    """A cluster count: a positive integer below the number of samples."""
    if isinstance(k, (bool, np.bool_)) or np.ndim(k) != 0 or int(k) != k or k < 1:
        raise InputError(f"{name} must be positive integers, got {k!r}")
    if k >= n_samples:
        raise InputError(f"{name}={k} is not smaller than the number of samples "
                         f"({n_samples})")
    return int(k)


class _SpectralQDG(BaseEstimator):
    """What both estimators share: their hyperparameters but K, and the fit: the affinity,
    one embedding with max K components, then k-means on its leading K columns for each K
    (``_fit_ks``)."""

    def __init__(self, *, affinity: str = "gradients", eigen_solver: str = "auto",
                 n_init: int = 10, random_state: int = 0, block_size: int = 4096):
        self.affinity = affinity
        self.eigen_solver = eigen_solver
        self.n_init = n_init
        self.random_state = random_state
        self.block_size = block_size

    def _fit_ks(self, X, ks) -> dict:
        if not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise InputError(f"n_init must be a positive integer, got {self.n_init!r}")
        A = _affinity(self, X)
        ks = [_check_k(k, A.shape[0]) for k in ks]
        rs = np.random.RandomState(self.random_state)
        emb, evals = laplacian_embedding(A, max(ks), eigen_solver=self.eigen_solver,
                                         random_state=rs)
        state = rs.get_state()
        labels = {}
        for k in ks:
            rs_k = np.random.RandomState()
            rs_k.set_state(state)
            _, labels[k], _ = k_means(emb[:, :k], k, random_state=rs_k, n_init=self.n_init)
        self.affinity_ = A
        self.embedding_ = emb
        self.eigenvalues_ = evals
        return labels


class QDGClustering(ClusterMixin, _SpectralQDG):
    """Spectral clustering of QDG's angular affinity into ``n_clusters`` clusters
    (scikit-learn's contract: one K; ``labels_`` one label per sample). For several K
    sharing one embedding use :class:`QDGClusteringSweep`.

    Parameters
    ----------
    n_clusters : int
        K.
    affinity : {"gradients", "precomputed"}
        ``fit(X)`` takes gradient rows or :class:`LinearGradientFactors` (the affinity
        ``1 − arccos(cos)/π`` is built in blocks) or a precomputed symmetric affinity matrix.
    eigen_solver : {"auto", "arpack", "dense", "lanczos"}
    n_init : int
        k-means restarts (sklearn's default 10).
    random_state : int
        Seed of the single RandomState used as sklearn uses it.
    block_size : int
        Rows per block of the similarity computation.

    Attributes
    ----------
    labels_ : ndarray (n_samples,)
    affinity_ : ndarray (n_samples, n_samples) float32
    embedding_ : ndarray (n_samples, K)
    eigenvalues_ : ndarray (K,) of the normalised Laplacian
    cluster_sizes_ : ndarray, the cluster sizes in decreasing order
    """

    def __init__(self, n_clusters: int = 8, *, affinity: str = "gradients",
                 eigen_solver: str = "auto", n_init: int = 10, random_state: int = 0,
                 block_size: int = 4096):
        self.n_clusters = n_clusters
        super().__init__(affinity=affinity, eigen_solver=eigen_solver, n_init=n_init,
                         random_state=random_state, block_size=block_size)

    def fit(self, X, y=None):
        """Cluster the samples (rows of gradients, or a precomputed affinity); returns self."""
        if np.ndim(self.n_clusters) != 0:
            raise InputError("n_clusters: one K per QDGClustering (scikit-learn's contract); "
                             "for several K use QDGClusteringSweep(ks=[...])")
        k = self.n_clusters
        self.labels_ = self._fit_ks(X, [k])[int(k)]
        self.cluster_sizes_ = cluster_sizes(self.labels_)
        return self


class QDGClusteringSweep(_SpectralQDG):
    """QDG's clustering for several cluster counts K at once (what the paper's envelope
    needs): the normalised-Laplacian embedding is computed **once** with max(K) components
    and k-means runs on its leading K columns for each K. Each K's labels are those of
    ``QDGClustering(K)`` wherever the leading K eigenvectors are determined (see the module
    docstring). Parameters as :class:`QDGClustering`, with ``ks`` (the K) for
    ``n_clusters``.

    Attributes
    ----------
    labels_by_k_ : dict K → labels (n_samples,)
    cluster_sizes_ : dict K → cluster sizes in decreasing order
    affinity_, embedding_ (n_samples, max K), eigenvalues_ (max K,)
    """

    def __init__(self, ks: Sequence[int] = (8,), *, affinity: str = "gradients",
                 eigen_solver: str = "auto", n_init: int = 10, random_state: int = 0,
                 block_size: int = 4096):
        self.ks = ks
        super().__init__(affinity=affinity, eigen_solver=eigen_solver, n_init=n_init,
                         random_state=random_state, block_size=block_size)

    def fit(self, X, y=None):
        """Cluster the samples for every K; returns self."""
        ks = [self.ks] if np.ndim(self.ks) == 0 else list(self.ks)
        if not ks:
            raise InputError("ks: empty list of cluster counts")
        self.labels_by_k_ = self._fit_ks(X, ks)
        self.cluster_sizes_ = {k: cluster_sizes(v) for k, v in self.labels_by_k_.items()}
        return self


def cluster_sizes(labels) -> np.ndarray:
    """Sizes of the non-empty clusters in ``labels``, in decreasing order (rank-frequency)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise InputError("labels: no samples")
    _, counts = np.unique(labels, return_counts=True)
    return np.sort(counts)[::-1]
