"""Per-query results behind the run report: every query's AP and first-hit rank, rank-1 and
mAP per query camera, and the ranked lists of the worst queries.

The distances go through the same steps as ``evaluate_features`` (average query expansion,
then k-reciprocal re-ranking when asked) and the same kernels as ``evaluate_reid`` (junk and
same-identity-same-camera gallery items removed, ties broken by gallery index), so the
per-query numbers average exactly to the overall rank-1 and mAP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from reidkit.evaluation.ranking import (
    GalleryDistance,
    GalleryIndex,
    market_stats,
    match_ranks,
    single_cpu_thread,
)
from reidkit.evaluation.rerank import KReciprocalDistance
from reidkit.evaluation.rerank import query_expansion as expand_queries

DistanceBlocks = Callable[[int, int], torch.Tensor]  # (start, end) -> (end - start, Ng)


@dataclass
class QueryStats:
    """One entry per query: ``valid`` (it has a true match), ``first`` (1-based rank of the
    first true match, 0 when invalid) and ``ap`` (NaN when invalid)."""

    valid: np.ndarray
    first: np.ndarray
    ap: np.ndarray


@dataclass
class RankedList:
    """A query's top-k gallery items, whether each is right, and its first true match."""

    query: int
    gallery: list[int]
    correct: list[bool]
    distances: list[float]
    first_hit: int | None  # 1-based rank of the first true match
    first_match: int | None  # gallery index of that match
    ap: float | None


def _ids(*xs: Any, device: torch.device) -> list[torch.Tensor]:
    return [torch.as_tensor(x).to(device=device, dtype=torch.int64) for x in xs]


def distance_blocks(
    qf: Any, gf: Any, distance: str = "euclidean", rerank: bool = False, query_expansion: int = 0
) -> DistanceBlocks:
    """``blocks(s, e)``: a private float32 copy of the distances of queries ``s:e`` to the
    gallery, after query expansion and re-ranking as ``evaluate_features`` does them."""
    qf, gf = torch.as_tensor(qf).float(), torch.as_tensor(gf).float()
    gf = gf.to(qf.device)
    if query_expansion:
        qf = expand_queries(qf, gf, query_expansion, distance)
    if rerank:
        rr = KReciprocalDistance(qf, gf, distance=distance)
        return lambda s, e: rr(s, e).to(torch.float32, copy=True)
    plain = GalleryDistance(gf, distance)
    return lambda s, e: plain(qf[s:e])


def per_query_stats(
    blocks: DistanceBlocks,
    num_queries: int,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    chunk: int = 256,
) -> QueryStats:
    """AP and first-hit rank of every query under the Market protocol."""
    qp, gp, qc, gc = _ids(q_pids, g_pids, q_camids, g_camids, device=torch.device("cpu"))
    valid = np.zeros(num_queries, dtype=bool)
    first = np.zeros(num_queries, dtype=np.int64)
    ap = np.full(num_queries, np.nan)
    index = None
    with single_cpu_thread(torch.device("cpu")):
        for s in range(0, num_queries, chunk):
            e = min(num_queries, s + chunk)
            dist = blocks(s, e).cpu()
            if index is None:
                index = GalleryIndex(gp, gc)
            rows, cols = index.filter_block(dist, qp[s:e], qc[s:e])
            st = market_stats(*match_ranks(dist, rows, cols, qp[s:e], gp), e - s)
            ok = st["valid"].numpy()
            valid[s:e] = ok
            first[s:e][ok] = st["first"].numpy()
            ap[s:e][ok] = st["ap"].numpy()
    return QueryStats(valid, first, ap)


def per_camera(stats: QueryStats, q_camids: Any) -> list[dict[str, Any]]:
    """Rank-1 and mAP over the valid queries of each query camera (sorted by camid)."""
    cams = np.asarray(torch.as_tensor(q_camids).cpu())
    rows = []
    for cam in sorted(set(cams.tolist())):
        sel = (cams == cam) & stats.valid
        n = int(sel.sum())
        rows.append(
            {
                "camid": int(cam),
                "queries": int((cams == cam).sum()),
                "valid_queries": n,
                "rank1": float((stats.first[sel] == 1).mean()) if n else 0.0,
                "mAP": float(stats.ap[sel].mean()) if n else 0.0,
            }
        )
    return rows


def worst_queries(stats: QueryStats, n: int) -> list[int]:
    """The ``n`` valid queries with the lowest AP (then the latest first hit, then index)."""
    idx = np.flatnonzero(stats.valid)
    order = sorted(idx.tolist(), key=lambda i: (stats.ap[i], -stats.first[i], i))
    return order[: max(0, n)]


def ranked_lists(
    blocks: DistanceBlocks,
    queries: Sequence[int],
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    stats: QueryStats,
    topk: int = 10,
) -> list[RankedList]:
    """Top-k gallery items of each chosen query after the protocol's filtering."""
    qp, gp, qc, gc = _ids(q_pids, g_pids, q_camids, g_camids, device=torch.device("cpu"))
    index = GalleryIndex(gp, gc)
    out = []
    for q in queries:
        dist = blocks(q, q + 1).cpu()
        index.filter_block(dist, qp[q : q + 1], qc[q : q + 1])
        order = torch.sort(dist[0], stable=True).indices
        kept = order[torch.isfinite(dist[0, order])]
        top = kept[:topk].tolist()
        valid = bool(stats.valid[q])
        first = int(stats.first[q]) if valid else None
        out.append(
            RankedList(
                query=int(q),
                gallery=top,
                correct=[bool(gp[g] == qp[q]) for g in top],
                distances=[float(dist[0, g]) for g in top],
                first_hit=first,
                first_match=int(kept[first - 1]) if first else None,
                ap=float(stats.ap[q]) if valid else None,
            )
        )
    return out
