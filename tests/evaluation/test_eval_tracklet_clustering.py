"""Automatic eps, and clustering whole tracklets: must-link (a tracklet's crops share a
label) and cannot-link (two tracklets seen together never do)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn", reason="clustering needs the adapt extra (scikit-learn)")

from reidkit.evaluation.clustering import (  # noqa: E402
    auto_eps,
    cluster_features,
    core_distances,
    jaccard_graph,
)
from reidkit.evaluation.tracklet_clustering import cluster_tracklets  # noqa: E402


def _people(
    n_people: int, per: int, spread: float, seed: int = 0
) -> tuple[torch.Tensor, np.ndarray]:
    """Features of ``n_people`` people, ``per`` crops each, around random centres."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_people, 32, generator=g)
    pid = np.repeat(np.arange(n_people), per)
    return centres[pid] + spread * torch.randn(len(pid), 32, generator=g), pid


def test_auto_eps_is_a_quantile_of_core_distances() -> None:
    feats, pid = _people(6, 12, 0.3)
    graph = jaccard_graph(feats, k1=8, k2=3)
    core = core_distances(graph, 4)
    assert core.shape == (72,) and (core >= 0).all() and (core <= 1).all()
    eps = auto_eps(graph, 4, 0.5)
    assert eps == pytest.approx(float(np.clip(np.median(core), 0.05, 0.95)))
    assert auto_eps(graph, 4, 0.2) <= eps <= auto_eps(graph, 4, 0.8)
    clusters = cluster_features(feats, None, 4, 8, 3, eps_quantile=0.8)
    assert clusters.eps == auto_eps(graph, 4, 0.8) and clusters.num_clusters == 6
    for p in range(6):  # each person one cluster (some of its crops may be outliers)
        assert len(set(clusters.labels[pid == p].tolist()) - {-1}) == 1


def test_crops_of_a_tracklet_always_share_a_label() -> None:
    # 4 people; each person's crops cut into 2 tracklets; a tracklet's crops spread widely
    feats, pid = _people(4, 16, 1.2, seed=1)
    unit = np.arange(len(pid)) // 8  # tracklets of 8 crops: two per person
    clusters = cluster_tracklets(feats, unit, 8, np.zeros((0, 2), dtype=np.int64), eps=0.6)
    for t in range(8):
        members = clusters.labels[unit == t]
        assert len(set(members.tolist())) == 1 and members[0] >= 0  # one label, kept
    # without cannot-links, each tracklet of >= min_samples crops is a core: none dropped
    assert (clusters.labels >= 0).all()


def test_cannot_linked_tracklets_never_share_a_cluster() -> None:
    feats, _ = _people(1, 24, 0.05, seed=2)  # one look-alike crowd: everything would merge
    unit = np.arange(24) // 6  # four tracklets
    free = cluster_tracklets(feats, unit, 4, np.zeros((0, 2), dtype=np.int64), eps=0.5)
    assert free.num_clusters == 1
    cannot = np.array([[0, 1], [2, 3], [0, 3]])
    linked = cluster_tracklets(feats, unit, 4, cannot, eps=0.5)
    lab = [int(linked.labels[unit == t][0]) for t in range(4)]
    for a, b in cannot.tolist():
        assert lab[a] != lab[b]
    assert linked.num_clusters == 2 and lab[0] == lab[2] and lab[1] == lab[3]
    # the same with eps chosen from the data (too few cannot-linked pairs: the halves)
    auto = cluster_tracklets(feats, unit, 4, cannot, eps=None)
    lab = [int(auto.labels[unit == t][0]) for t in range(4)]
    assert all(lab[a] != lab[b] for a, b in cannot.tolist()) and 0 < auto.eps < 1


def test_eps_from_cannot_linked_pairs_joins_fragments_only() -> None:
    # 6 people seen together (all pairs cannot-linked), each also walking by again later
    feats, pid = _people(6, 10, 0.2, seed=3)
    unit = np.arange(60) // 5  # 12 tracklets: 2 per person (0,1 = person 0, ...)
    early = list(range(0, 12, 2))
    cannot = np.array([(a, b) for i, a in enumerate(early) for b in early[i + 1 :]])
    clusters = cluster_tracklets(feats, unit, 12, cannot)
    assert "from cannot-linked pairs" in clusters.note
    assert clusters.num_clusters == 6
    for p in range(6):
        assert len(set(clusters.labels[pid == p].tolist())) == 1
