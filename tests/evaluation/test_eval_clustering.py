"""Pseudo-identities: the sparse Jaccard graph against a dense per-image transcription of the
k-reciprocal algorithm, and DBSCAN on it against DBSCAN on the dense matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn", reason="clustering needs the adapt extra (scikit-learn)")

from sklearn.cluster import DBSCAN  # noqa: E402

from reidkit.evaluation.clustering import (  # noqa: E402
    cluster_centroids,
    cluster_features,
    dbscan_labels,
    jaccard_graph,
)
from reidkit.utils.errors import ConfigError, DataError  # noqa: E402


def _dense_jaccard(feats: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """k-reciprocal Jaccard distance of one set to itself, dense, float64, image by image."""
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    dist = 1.0 - f @ f.T
    np.fill_diagonal(dist, 0.0)
    dist = np.maximum(dist, 0.0)
    od = dist / dist.max(axis=1, keepdims=True)
    rank = np.argsort(od, axis=1, kind="stable")
    n = len(f)
    v = np.zeros((n, n))
    kh = int(np.around(k1 / 2.0)) + 1
    for i in range(n):
        fwd = rank[i, : k1 + 1]
        rec = fwd[[i in rank[j, : k1 + 1] for j in fwd]]
        expansion = list(rec)
        for c in rec:
            cf = rank[c, :kh]
            crec = cf[[c in rank[j, :kh] for j in cf]]
            if len(np.intersect1d(crec, rec)) > 2.0 / 3 * len(crec):
                expansion += list(crec)
        expansion = np.unique(expansion)
        w = np.exp(-od[i, expansion])
        v[i, expansion] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.empty((n, n))
    for i in range(n):
        m = np.minimum(v[i][None, :], v).sum(1)
        jac[i] = 1 - m / (2 - m)
    return jac


def _blobs(n_per: int, centres: int, dim: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))
    labels = np.repeat(np.arange(centres), n_per)
    return c[labels] + spread * rng.standard_normal((len(labels), dim))


@pytest.mark.parametrize(("k1", "k2"), [(6, 3), (10, 1), (20, 6)])
def test_sparse_jaccard_equals_dense_reference(k1: int, k2: int) -> None:
    feats = _blobs(12, 6, 16, 0.5, seed=k1)
    dense = _dense_jaccard(feats, k1, k2)
    graph = jaccard_graph(torch.tensor(feats), k1, k2)
    ours = np.ones_like(dense)
    coo = graph.tocoo()
    ours[coo.row, coo.col] = coo.data
    assert np.abs(ours - dense).max() < 1e-5
    assert graph.nnz == int((dense < 1 - 1e-9).sum())  # exactly the overlapping pairs
    assert np.abs(graph.diagonal()).max() < 1e-6


def test_graph_entries_grow_with_k_not_with_n() -> None:
    small = jaccard_graph(torch.tensor(_blobs(20, 10, 16, 0.5, seed=1)), 6, 3)
    large = jaccard_graph(torch.tensor(_blobs(20, 100, 16, 0.5, seed=1)), 6, 3)
    per_row_small, per_row_large = small.nnz / small.shape[0], large.nnz / large.shape[0]
    assert per_row_large < 1.5 * per_row_small  # 10x the crops, about the same entries per row
    assert large.nnz < 0.05 * large.shape[0] ** 2


def test_dbscan_on_sparse_graph_equals_dense() -> None:
    feats = _blobs(10, 8, 16, 0.6, seed=3)
    dense = _dense_jaccard(feats, 20, 6)
    graph = jaccard_graph(torch.tensor(feats), 20, 6)
    for eps in (0.4, 0.6, 0.8):
        ref = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(dense)
        assert np.array_equal(dbscan_labels(graph, eps, 4), ref)


def test_clusters_recover_separated_identities() -> None:
    feats = _blobs(10, 8, 32, 0.3, seed=5)
    truth = np.repeat(np.arange(8), 10)
    feats = np.concatenate([feats, 5.0 * np.random.default_rng(0).standard_normal((3, 32))])
    clusters = cluster_features(torch.tensor(feats), eps=0.4, min_samples=4, k1=8, k2=3)
    assert clusters.num_clusters == 8
    labels = clusters.labels
    # each true identity is one cluster; the 3 lone points are outliers
    for t in range(8):
        assert len(set(labels[:80][truth == t].tolist())) == 1
    assert clusters.num_outliers == 3 and (labels[80:] == -1).all()
    assert labels[0] == 0  # numbered in order of first member
    assert clusters.sizes.tolist() == [10] * 8


def test_centroids_are_normalised_cluster_means() -> None:
    f = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    c = cluster_centroids(f, torch.tensor([0, 0, 1, -1]), 2)
    assert torch.allclose(c, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(DataError, match="N >= 1"):
        jaccard_graph(torch.zeros(0, 4))
    graph = jaccard_graph(torch.randn(10, 4), 4, 2)
    with pytest.raises(ConfigError, match="adapt.eps"):
        dbscan_labels(graph, 1.5, 4)
