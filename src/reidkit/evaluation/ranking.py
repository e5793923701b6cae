"""The kernels behind ``evaluate_reid``: distances per query chunk and exact match ranks.

Only the true matches of a query need a rank, and only gallery items no farther than the
query's farthest true match can precede one. So for each chunk of queries we

1. compute the (B, M) distance block (the only dense block; removed items are set to +inf),
2. list the true matches sparsely from a pid-sorted gallery index (no dense pid masks),
3. take the "candidates" (kept items with distance <= the farthest match of their query),
4. sort the candidates by the exact key (query, distance, gallery index) with one stable sort
   of int64 keys, and read off the rank of each true match.

This is identical to stably sorting every row and filtering, but the sort covers a small
fraction of the gallery for a trained model (the whole row only in the worst case).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

INF = float("inf")


@contextmanager
def single_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run torch's CPU ops of the block on one intra-op thread (restored afterwards).

    The ranking is a series of cheap passes over (chunk x gallery) blocks; on a 2-core
    machine with other work running, torch's OpenMP barriers made them 10-20x slower with two
    threads than with one (docs/benchmarks.md). The distance matmul runs in numpy's BLAS with
    its own threads and is unaffected. No effect on GPU tensors.
    """
    prev = torch.get_num_threads()
    if device.type != "cpu" or prev == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def matmul_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` in float32. On CPU numpy's BLAS does it: for this shape torch's MKL path
    was ~1.5-2x slower on the AMD EPYC machine we measured (docs/benchmarks.md).
    """
    if a.device.type == "cpu" and not (a.requires_grad or b.requires_grad):
        return torch.from_numpy(a.numpy() @ b.numpy().T)
    return a @ b.T


class GalleryDistance:
    """Distances from query chunks to a fixed gallery, with gallery terms computed once.

    ``euclidean`` gives squared Euclidean distances (same ranking as Euclidean), ``cosine``
    gives ``1 - cosine similarity``; both float32, clamped at 0 for Euclidean.
    """

    def __init__(self, gf: torch.Tensor, distance: str) -> None:
        self.distance = distance
        gf = gf.float().contiguous()
        if distance == "cosine":
            self.gf = F.normalize(gf, dim=1).contiguous()
            self.gg = None
        else:
            self.gf = gf
            self.gg = (gf * gf).sum(1)[None, :]

    def __call__(self, qf: torch.Tensor) -> torch.Tensor:
        qf = qf.float().contiguous()
        if self.distance == "cosine":
            return matmul_t(F.normalize(qf, dim=1), self.gf).neg_().add_(1.0)
        out = matmul_t(qf * -2.0, self.gf)
        out.add_((qf * qf).sum(1, keepdim=True)).add_(self.gg)
        return out.clamp_(min=0)


class GalleryIndex:
    """The gallery's pids grouped for sparse look-up of a query's same-identity items."""

    def __init__(self, g_pids: torch.Tensor, g_camids: torch.Tensor) -> None:
        self.g_pids, self.g_camids = g_pids, g_camids
        self.order = torch.sort(g_pids, stable=True).indices
        self.uniq, self.counts = torch.unique_consecutive(g_pids[self.order], return_counts=True)
        self.starts = self.counts.cumsum(0) - self.counts
        self.junk = (g_pids == -1).nonzero().flatten()

    def same_id(self, qp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, cols): every gallery item with the pid of query ``row`` (row-major)."""
        dev = qp.device
        pos = torch.searchsorted(self.uniq, qp).clamp(max=self.uniq.numel() - 1)
        cnt = torch.where(self.uniq[pos] == qp, self.counts[pos], 0)
        rows = torch.repeat_interleave(torch.arange(qp.numel(), device=dev), cnt)
        offs = torch.arange(rows.numel(), device=dev) - (cnt.cumsum(0) - cnt)[rows]
        return rows, self.order[self.starts[pos][rows] + offs]

    def filter_block(
        self, dist: torch.Tensor, qp: torch.Tensor, qc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set removed items (junk, same id + same camera) to +inf in ``dist`` (in place).

        Returns the true matches ``(rows, cols)`` of the chunk, row-major.
        """
        if self.junk.numel():
            dist.index_fill_(1, self.junk, INF)
        rows, cols = self.same_id(qp)
        removed = (self.g_camids[cols] == qc[rows]) | (self.g_pids[cols] == -1)
        dist[rows[removed], cols[removed]] = INF
        return rows[~removed], cols[~removed]


def stable_argsort(key: torch.Tensor) -> torch.Tensor:
    """Stable argsort of a 1-D tensor. On CPU numpy's (single-threaded) sort is used: torch's
    threaded sort of these mid-sized arrays was 10-50x slower on a busy 2-core machine."""
    if key.device.type == "cpu":
        return torch.from_numpy(np.argsort(key.numpy(), kind="stable"))
    return torch.sort(key, stable=True).indices


def sortable(values: torch.Tensor) -> torch.Tensor:
    """int64 keys in [0, 2^32) ordered like the float32 ``values`` (-0.0 equals 0.0)."""
    bits = (values.float() + 0.0).view(torch.int32)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return bits.to(torch.int64) + (1 << 31)


DENSE_FRACTION = 0.25  # above this share of candidates, sorting whole rows is cheaper


def match_ranks(
    dist: torch.Tensor,
    good_rows: torch.Tensor,
    good_cols: torch.Tensor,
    qp: torch.Tensor,
    g_pids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """1-based rank among kept items of every true match: ``(rows, ranks)``, row-major with
    ranks increasing within a row.

    ``dist`` must already have removed items at +inf (``GalleryIndex.filter_block``).
    Ties in distance are broken by gallery index (a stable sort of each row). Two exact
    strategies: sort only the candidates (few for a trained model), or, when most of the block
    is a candidate (an untrained model), sort each row's values and count by binary search.
    """
    b = dist.shape[0]
    far = torch.full((b,), -INF, device=dist.device)
    far.scatter_reduce_(0, good_rows, dist[good_rows, good_cols], reduce="amax")
    cand = dist <= far[:, None]
    if int(cand.sum()) > DENSE_FRACTION * cand.numel():
        return _dense_ranks(dist, good_rows, good_cols)
    rows, cols = cand.nonzero(as_tuple=True)
    key = (rows << 32) | sortable(dist[rows, cols])
    # stable: equal (row, distance) keep nonzero()'s ascending gallery-index order
    order = stable_argsort(key)
    rows, cols = rows[order], cols[order]
    counts = torch.bincount(rows, minlength=b)
    pos = torch.arange(rows.numel(), device=dist.device) - (counts.cumsum(0) - counts)[rows] + 1
    is_good = g_pids[cols] == qp[rows]  # removed same-id items are at +inf, never candidates
    return rows[is_good], pos[is_good]


def _row_sorted_values(dist: torch.Tensor) -> torch.Tensor:
    """Each row's values in increasing order (numpy's vectorised sort on CPU)."""
    if dist.device.type == "cpu":
        return torch.from_numpy(np.sort(dist.numpy(), axis=1))
    return torch.sort(dist, dim=1).values


def _dense_ranks(
    dist: torch.Tensor, good_rows: torch.Tensor, good_cols: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``match_ranks`` by sorting row values: rank = #smaller + #equal with lower index + 1."""
    b, m = dist.shape
    dev = dist.device
    counts = torch.bincount(good_rows, minlength=b)
    slot = torch.arange(good_rows.numel(), device=dev) - (counts.cumsum(0) - counts)[good_rows]
    width = int(counts.max()) if good_rows.numel() else 0
    vals = torch.full((b, max(1, width)), INF, device=dev)
    vals[good_rows, slot] = dist[good_rows, good_cols]
    sorted_vals = _row_sorted_values(dist)
    less = torch.searchsorted(sorted_vals, vals)[good_rows, slot]
    equal = torch.searchsorted(sorted_vals, vals, right=True)[good_rows, slot] - less
    rank = less + 1
    tied = (equal > 1).nonzero().flatten()  # exact ties: count equal items of lower index
    step = max(1, (1 << 22) // m)
    col = torch.arange(m, device=dev)
    for s in range(0, tied.numel(), step):
        t = tied[s : s + step]
        r, c = good_rows[t], good_cols[t]
        same = (dist[r] == dist[r, c][:, None]) & (col[None, :] < c[:, None])
        rank[t] += same.sum(1)
    order = stable_argsort((good_rows << 32) | rank)
    return good_rows[order], rank[order]


def market_stats(rows: torch.Tensor, ranks: torch.Tensor, b: int) -> dict[str, torch.Tensor]:
    """Per-query first-hit rank, AP and INP from the ranks of the true matches (row-major)."""
    dev = rows.device
    num_good = torch.bincount(rows, minlength=b)
    # ranks increase within a row, so the k-th entry of a row is its k-th hit
    hits = torch.arange(rows.numel(), device=dev) - (num_good.cumsum(0) - num_good)[rows] + 1
    valid = num_good > 0
    first = torch.full((b,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=dev)
    first.scatter_reduce_(0, rows, ranks, reduce="amin")
    last = torch.zeros(b, dtype=torch.int64, device=dev)
    last.scatter_reduce_(0, rows, ranks, reduce="amax")
    prec = torch.zeros(b, dtype=torch.float64, device=dev)
    prec.index_add_(0, rows, hits.double() / ranks.double())
    return {
        "valid": valid,
        "first": first[valid],
        "ap": (prec / num_good.clamp(min=1).double())[valid],
        "inp": (num_good.double() / last.clamp(min=1).double())[valid],
    }


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash computed in int64 without overflow (same on every device)."""
    mask = 0xFFFFFFFF
    x = x & mask
    x = (((x >> 16) ^ x) * 0x45D9F3B) & mask
    x = (((x >> 16) ^ x) * 0x45D9F3B) & mask
    return (x >> 16) ^ x


def shot_priority(seed: int, repeat: int, q_index: torch.Tensor, num_gallery: int) -> torch.Tensor:
    """Random but reproducible priority of every (query, gallery item) for one CUHK03 draw.

    The item with the highest priority of each gallery identity is the one kept for that
    query in draw ``repeat``. Priorities are unique per query (the gallery index breaks
    hash collisions) and depend only on ``(seed, repeat, query index, gallery index)``.
    """
    g_index = torch.arange(num_gallery, device=q_index.device, dtype=torch.int64)
    salt = int(_hash32(torch.tensor(seed * 1000003 + repeat * 7919 + 12345)))
    h = _hash32(q_index[:, None] * 2654435761 + salt)
    h = _hash32(h ^ _hash32(g_index + 0x9E3779B9)[None, :])
    return h * num_gallery + g_index[None, :]


def single_shot_first(
    dist: torch.Tensor,
    good_rows: torch.Tensor,
    good_cols: torch.Tensor,
    groups: torch.Tensor,
    num_ids: int,
    q_index: torch.Tensor,
    seed: int,
    num_repeats: int,
) -> torch.Tensor:
    """(num_repeats, B) CUHK03 single-shot rank of the sampled true match (int64 max: none).

    In each draw every gallery identity keeps its kept (finite-distance) item of highest
    ``shot_priority``; the rank counts sampled items before the sampled match by
    (distance, gallery index).
    """
    b, m = dist.shape
    col = torch.arange(m, device=dist.device)
    keep = torch.isfinite(dist)
    good = torch.zeros_like(keep)
    good[good_rows, good_cols] = True
    grp = groups[None, :].expand(b, m)
    out = []
    for rep in range(num_repeats):
        prio = torch.where(keep, shot_priority(seed, rep, q_index, m), -1)
        best = torch.full((b, num_ids), -1, dtype=prio.dtype, device=prio.device)
        best.scatter_reduce_(1, grp, prio, reduce="amax")
        chosen = keep & (prio == best.gather(1, grp))
        hit_col = torch.where(good & chosen, col, -1).amax(1)
        d_hit = dist.gather(1, hit_col.clamp(min=0)[:, None])
        before = (dist < d_hit) | ((dist == d_hit) & (col[None, :] < hit_col[:, None]))
        rank = (chosen & before).sum(1) + 1
        out.append(torch.where(hit_col >= 0, rank, torch.iinfo(torch.int64).max))
    return torch.stack(out)
