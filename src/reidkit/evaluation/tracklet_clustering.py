"""Pseudo-identities from tracklets: cluster whole tracklets, never two that co-occur.

A tracker already says which crops are one person (must-link: one tracklet, one label) and
which are surely two (cannot-link: two tracklets seen at the same time in one camera). Here
the units of clustering are tracklets (a crop without one is a unit of its own): each unit's
feature is the L2-normalised mean of its crops' normalised features, units are compared by
cosine distance, and scikit-learn's DBSCAN runs on a sparse graph of each unit's nearest
units with the cannot-linked pairs removed, every unit weighted by its crops (a tracklet of
at least ``min_samples`` crops is a core by itself, so it trains as an identity even when it
joins no other). DBSCAN can still chain two cannot-linked units through a third: such a
cluster is split greedily, biggest units first, each unit joining the nearest part it has no
conflict with (or starting a new one).

``eps`` None calibrates the radius on what the tracklets say: two units join when they are
closer than ``NEGATIVE_QUANTILE`` of the cannot-linked pairs are (the people who look most
alike among those seen together). Without enough cannot-linked pairs, on the known
positives instead: the distance between the earlier and the later half of one tracklet (one
person a few seconds apart), its ``POSITIVE_QUANTILE``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reidkit.evaluation.clustering import (
    EPS_RANGE,
    Clusters,
    _sparse,
    auto_eps,
    dbscan_labels,
    renumber,
)
from reidkit.evaluation.ranking import single_cpu_thread

NEGATIVE_QUANTILE = 0.05  # eps = this quantile of the cannot-linked pairs' distances
MIN_NEGATIVES = 5  # fewer cannot-linked pairs: eps from the tracklets' halves instead
POSITIVE_QUANTILE = 0.5  # ... this quantile of the halves' distances
NEIGHBOURS = 50  # nearest units kept per unit in the sparse graph


def unit_features(feats: torch.Tensor, unit: np.ndarray, num_units: int) -> torch.Tensor:
    """(U, D): the L2-normalised mean of each unit's L2-normalised crop features."""
    f = F.normalize(feats.float(), dim=1)
    sums = torch.zeros(num_units, f.shape[1], device=f.device)
    sums.index_add_(0, torch.as_tensor(unit, device=f.device), f)
    return F.normalize(sums, dim=1)


def unit_graph(uf: torch.Tensor, cannot: np.ndarray, k: int = NEIGHBOURS):  # noqa: ANN201
    """Sparse cosine distances of each unit to its ``k`` nearest units (symmetrised), the
    cannot-linked pairs left out (a scipy csr matrix; absent = not neighbours)."""
    sparse = _sparse()
    n = uf.shape[0]
    k = min(k, n - 1)
    rows, cols, vals = [], [], []
    with single_cpu_thread(uf.device):
        for s in range(0, n, 1024):
            d = (1.0 - uf[s : s + 1024] @ uf.t()).clamp_(min=0.0)
            if k > 0:
                dist, idx = d.topk(k + 1, dim=1, largest=False)
                r = torch.arange(s, s + d.shape[0], device=d.device)[:, None].expand_as(idx)
                rows.append(r.reshape(-1).cpu())
                cols.append(idx.reshape(-1).cpu())
                vals.append(dist.reshape(-1).cpu())
    if not rows:
        return sparse.csr_matrix((n, n))
    r, c = torch.cat(rows).numpy(), torch.cat(cols).numpy()
    v = torch.cat(vals).double().numpy() + 1e-9  # explicit zeros would be dropped
    keep = r != c
    g = sparse.coo_matrix((v[keep], (r[keep], c[keep])), shape=(n, n)).tocsr()
    g = g.maximum(g.T).tolil()
    for a, b in cannot.tolist():
        g[a, b] = 0.0
        g[b, a] = 0.0
    g = g.tocsr()
    g.eliminate_zeros()
    return g


def negative_eps(uf: torch.Tensor, cannot: np.ndarray) -> float | None:
    """``NEGATIVE_QUANTILE`` of the cosine distances of cannot-linked units (clipped to
    ``EPS_RANGE``), None with fewer than ``MIN_NEGATIVES`` pairs."""
    if len(cannot) < MIN_NEGATIVES:
        return None
    a, b = torch.as_tensor(cannot[:, 0]), torch.as_tensor(cannot[:, 1])
    d = (1.0 - (uf[a.to(uf.device)] * uf[b.to(uf.device)]).sum(1)).cpu().double().numpy()
    return float(np.clip(np.quantile(d, NEGATIVE_QUANTILE), *EPS_RANGE))


def positive_eps(feats: torch.Tensor, unit: np.ndarray) -> float | None:
    """``POSITIVE_QUANTILE`` of the cosine distances between the mean features of the earlier
    and the later half of every unit of >= 2 crops (crops in their given order, which is
    frame order for ``reidkit crops`` names), clipped to ``EPS_RANGE``; None without any."""
    f = F.normalize(feats.float(), dim=1)
    order = np.argsort(unit, kind="stable")
    bounds = np.flatnonzero(np.diff(unit[order])) + 1
    dists = []
    for rows in np.split(order, bounds):
        if len(rows) < 2:
            continue
        half = len(rows) // 2
        a = F.normalize(f[rows[:half]].mean(0), dim=0)
        b = F.normalize(f[rows[half:]].mean(0), dim=0)
        dists.append(1.0 - float(a @ b))
    if not dists:
        return None
    return float(np.clip(np.quantile(dists, POSITIVE_QUANTILE), *EPS_RANGE))


def split_conflicts(labels: np.ndarray, uf: torch.Tensor, cannot: np.ndarray, weights):  # noqa: ANN001, ANN201
    """Split every cluster holding a cannot-linked pair (see the module docstring); returns
    (labels, number of clusters that were split)."""
    if not len(cannot):
        return labels, 0
    labels = labels.copy()
    bad = {int(labels[a]) for a, b in cannot.tolist() if labels[a] >= 0 and labels[a] == labels[b]}
    conflicts: dict[int, set[int]] = {}
    for a, b in cannot.tolist():
        conflicts.setdefault(a, set()).add(b)
        conflicts.setdefault(b, set()).add(a)
    fresh = int(labels.max()) + 1
    for lab in sorted(bad):
        members = np.flatnonzero(labels == lab)
        members = members[np.argsort(-np.asarray(weights)[members], kind="stable")]
        sim = (uf[members] @ uf[members].t()).cpu().numpy()
        parts: list[list[int]] = []  # positions in ``members``
        for pos, u in enumerate(members.tolist()):
            best, best_sim = None, -2.0
            for p_i, part in enumerate(parts):
                if any(int(members[q]) in conflicts.get(u, ()) for q in part):
                    continue
                s = float(sim[pos, part].max())
                if s > best_sim:
                    best, best_sim = p_i, s
            if best is None:
                parts.append([pos])
            else:
                parts[best].append(pos)
        for p_i, part in enumerate(parts[1:]):
            labels[members[part]] = fresh + p_i
        fresh += len(parts) - 1
    return labels, len(bad)


def cluster_tracklets(
    feats: torch.Tensor,
    unit: np.ndarray,
    num_units: int,
    cannot: np.ndarray,
    *,
    eps: float | None = None,
    min_samples: int = 4,
    eps_quantile: float = 0.9,
    num_tracklets: int | None = None,
) -> Clusters:
    """Pseudo-identities of crops grouped into units (``unit[i]`` of crop i, see the module
    docstring): every crop gets its unit's cluster, -1 for units left out."""
    unit = np.asarray(unit, dtype=np.int64)
    weights = np.bincount(unit, minlength=num_units).astype(np.float64)
    uf = unit_features(feats, unit, num_units)
    graph = unit_graph(uf, cannot)
    how = "given"
    if eps is None:
        eps, how = negative_eps(uf, cannot), "from cannot-linked pairs"
        if eps is None:
            eps, how = positive_eps(feats, unit), "from the tracklets' halves"
        if eps is None:
            eps, how = auto_eps(graph, min_samples, eps_quantile), "from the unit graph"
    raw = dbscan_labels(graph, eps, min_samples, weights)
    raw, splits = split_conflicts(raw, uf, cannot, weights)
    unit_labels, count = renumber(raw)
    labels = unit_labels[unit]
    labels, count = renumber(labels)
    tracked = num_tracklets if num_tracklets is not None else num_units
    note = (
        f"{tracked} tracklets joined ({num_units - tracked} lone crops), {len(cannot)} "
        f"cannot-linked pairs, eps {how}" + (f", {splits} clusters split" if splits else "")
    )
    return Clusters(labels, count, float(eps), note)
