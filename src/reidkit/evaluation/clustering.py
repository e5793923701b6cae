"""Pseudo-identities for unlabeled crops: DBSCAN over a sparse k-reciprocal Jaccard distance.

The Jaccard distance of two crops compares their k-reciprocal neighbour sets (the weights
``V`` of Zhong et al.'s re-ranking, ``reidkit.evaluation.rerank``): crops whose neighbourhoods
do not overlap are at distance 1. DBSCAN with a radius ``eps < 1`` only ever looks at pairs
that overlap, so only those are kept: a sparse N x N graph with a few hundred entries per
crop, built one block of rows at a time. Nothing of size N x N is stored, so 100k crops fit
in memory (the neighbour search is exact, in row blocks, on the features' device).

scikit-learn's DBSCAN (``metric="precomputed"`` on the sparse graph) does the clustering;
scikit-learn is the ``adapt`` extra (``pip install 'reidkit[adapt]'``).

The DBSCAN radius may come from the data (``auto_eps``): each crop's *core distance* (how far
its ``min_samples - 1``-th nearest neighbour lies, the radius at which it becomes a core) is
measured on the graph, and ``eps`` is a quantile of those, so that about that share of the
crops are cores whatever the model, the folder size or k1 make of the distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reidkit.evaluation.ranking import single_cpu_thread
from reidkit.evaluation.rerank import KReciprocalDistance
from reidkit.utils.errors import ConfigError, DataError


def _sparse() -> Any:
    """scipy.sparse, or a one-line error naming the extra that installs it."""
    try:
        import scipy.sparse as sparse
    except ImportError:
        raise ConfigError(
            "clustering needs scikit-learn (and scipy): pip install 'reidkit[adapt]'"
        ) from None
    return sparse


def _dbscan() -> Any:
    """sklearn.cluster.DBSCAN, or a one-line error naming the extra that installs it."""
    try:
        from sklearn.cluster import DBSCAN
    except ImportError:
        raise ConfigError("clustering needs scikit-learn: pip install 'reidkit[adapt]'") from None
    return DBSCAN


def jaccard_graph(feats: torch.Tensor, k1: int = 30, k2: int = 6) -> Any:
    """The k-reciprocal Jaccard distances of ``feats`` (N, D) to each other, sparse.

    Returns a ``scipy.sparse.csr_matrix`` (N x N, float64) holding every pair whose
    neighbourhoods overlap (distance < 1, the diagonal's 0 included); absent pairs are at
    distance 1. Features are compared by cosine distance (they are L2-normalised first).
    """
    sparse = _sparse()
    if feats.ndim != 2 or feats.shape[0] == 0:
        shape = tuple(feats.shape)
        raise DataError(f"jaccard_graph: expected features (N, D) with N >= 1, got {shape}")
    feats = F.normalize(feats.float(), dim=1)
    n = feats.shape[0]
    kr = KReciprocalDistance(feats, None, k1=k1, k2=k2, lambda_value=0.0, distance="cosine")
    rows, cols, vals = [], [], []
    step = kr.block_rows
    with single_cpu_thread(feats.device):
        for s in range(0, n, step):
            e = min(n, s + step)
            d = kr.jaccard(s, e)
            r, c = torch.nonzero(d < 1.0, as_tuple=True)
            rows.append((r + s).cpu())
            cols.append(c.cpu())
            vals.append(d[r, c].clamp_(min=0.0).cpu())
    data = torch.cat(vals).double().numpy()
    ij = (torch.cat(rows).numpy(), torch.cat(cols).numpy())
    return sparse.csr_matrix((data, ij), shape=(n, n))


EPS_RANGE = (0.05, 0.95)  # where an automatic eps is clipped to


def core_distances(graph: Any, min_samples: int) -> np.ndarray:
    """Per row of a sparse distance graph (absent pairs at distance 1): the distance of its
    ``min_samples - 1``-th nearest other row, 1 when it has fewer neighbours (0 for
    ``min_samples`` 1)."""
    k = min_samples - 1
    out = np.ones(graph.shape[0], dtype=np.float64)
    if k <= 0:
        return np.zeros(graph.shape[0], dtype=np.float64)
    csr = graph.tocsr()
    for i in range(csr.shape[0]):
        lo, hi = csr.indptr[i], csr.indptr[i + 1]
        d = csr.data[lo:hi][csr.indices[lo:hi] != i]
        if d.size >= k:
            out[i] = np.partition(d, k - 1)[k - 1]
    return out


def auto_eps(graph: Any, min_samples: int, quantile: float) -> float:
    """DBSCAN's radius from the data: the ``quantile`` of the rows' core distances (about
    that share of the rows become cores), clipped to ``EPS_RANGE``."""
    if not 0 < quantile < 1:
        raise ConfigError(f"adapt.eps_quantile = {quantile}: expected 0 < quantile < 1")
    value = float(np.quantile(core_distances(graph, min_samples), quantile))
    return float(np.clip(value, *EPS_RANGE))


def dbscan_labels(
    graph: Any, eps: float, min_samples: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """DBSCAN over a precomputed (sparse) distance graph: a label per row, -1 = outlier.
    ``weights`` counts a row as that many samples (a row of weight >= min_samples is a core
    by itself)."""
    if not 0 < eps < 1:
        raise ConfigError(f"adapt.eps = {eps}: expected 0 < eps < 1 (a Jaccard distance)")
    if min_samples < 1:
        raise ConfigError(f"adapt.min_samples = {min_samples}: expected an integer >= 1")
    db = _dbscan()(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=1)
    return np.asarray(db.fit_predict(graph, sample_weight=weights), dtype=np.int64)


def renumber(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """Cluster numbers in order of each cluster's first row (-1 kept): a pure function of
    the partition, not of the clustering's internal numbering."""
    labels = np.full_like(raw, -1)
    order: dict[int, int] = {}
    for i, lab in enumerate(raw.tolist()):
        if lab >= 0:
            labels[i] = order.setdefault(lab, len(order))
    return labels, len(order)


@dataclass(frozen=True)
class Clusters:
    """Pseudo-identities of N crops: ``labels`` 0..num_clusters-1, -1 for outliers; ``eps``
    the DBSCAN radius used (given or chosen from the data), ``note`` what else to log."""

    labels: np.ndarray
    num_clusters: int
    eps: float = 0.0
    note: str = ""

    @property
    def num_outliers(self) -> int:
        """Crops left out of every cluster."""
        return int((self.labels < 0).sum())

    @property
    def sizes(self) -> np.ndarray:
        """Crops per cluster."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.num_clusters)


def cluster_features(
    feats: torch.Tensor,
    eps: float | None = 0.6,
    min_samples: int = 4,
    k1: int = 30,
    k2: int = 6,
    eps_quantile: float = 0.9,
) -> Clusters:
    """Pseudo-identities of the crops embedded as ``feats``: DBSCAN on the Jaccard graph
    (``eps`` None: ``auto_eps`` at ``eps_quantile``).

    Cluster numbers are renumbered in order of each cluster's first crop, so the labels are
    a pure function of the features.
    """
    graph = jaccard_graph(feats, k1, k2)
    if eps is None:
        eps = auto_eps(graph, min_samples, eps_quantile)
    labels, count = renumber(dbscan_labels(graph, eps, min_samples))
    return Clusters(labels, count, eps)


def cluster_centroids(feats: torch.Tensor, labels: torch.Tensor, num_clusters: int) -> torch.Tensor:
    """The L2-normalised mean of the L2-normalised features of each cluster, (C, D) float32.

    ``labels`` < 0 (outliers) are ignored; every cluster 0..C-1 must have a member.
    """
    f = F.normalize(feats.float(), dim=1)
    keep = labels >= 0
    sums = torch.zeros(num_clusters, f.shape[1], device=f.device)
    sums.index_add_(0, labels[keep].to(f.device), f[keep])
    return F.normalize(sums, dim=1)
