"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) in bounded memory, and average query
expansion.

The published implementation builds several dense (N x N) matrices over all query + gallery
images (N = Nq + Ng): distances, the full argsort, V, V after query expansion and the Jaccard
distance. On MSMT17 that exceeds 64 GB. Here nothing of size N x N is ever stored:

* nearest neighbours come from row blocks of distances (top ``k1 + 1`` of each row kept);
* the k-reciprocal sets, their expansion and the weights ``V`` are sparse row lists
  (a few dozen entries per image), computed vectorised over all images at once;
* the Jaccard distance of a block of queries to the gallery is accumulated from the sparse
  ``V`` through an inverted (column) index, so only (block x Ng) floats exist at a time.

The maths follows the paper's reference code: distances normalised by each row's maximum,
``R(i, k1)``, expansion by ``R(j, k1/2)`` when 2/3 of it lies in ``R(i, k1)``, Gaussian-kernel
weights, local query expansion over ``k2`` neighbours, and
``final = (1 - lambda) * jaccard + lambda * normalised original distance``. ``V`` is kept in
float32 (the reference code uses float16). Everything runs on the features' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reidkit.evaluation.ranking import GalleryDistance, single_cpu_thread
from reidkit.utils.errors import ConfigError

_BLOCK = 1 << 22  # elements per temporary block (rows x width)


def _step(width: int) -> int:
    """Rows per block so that a (rows x width) temporary holds about ``_BLOCK`` elements."""
    return max(1, _BLOCK // max(1, width))


def _neighbours(feats: torch.Tensor, k: int, distance: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(row max distance (N,), the k nearest neighbours (N, k) by increasing distance)."""
    n = feats.shape[0]
    dist_to = GalleryDistance(feats, distance)
    rowmax = torch.empty(n, device=feats.device)
    knn = torch.empty(n, k, dtype=torch.int64, device=feats.device)
    step = _step(n)
    for s in range(0, n, step):
        d = dist_to(feats[s : s + step])
        rowmax[s : s + step] = d.amax(1)
        knn[s : s + step] = d.topk(k, dim=1, largest=False, sorted=True).indices
    return rowmax.clamp_(min=1e-12), knn


def _reciprocal(knn: torch.Tensor, k: int) -> torch.Tensor:
    """Mask (N, k): ``knn[i, j]`` is a k-reciprocal neighbour of i (i is in its top k)."""
    n = knn.shape[0]
    fwd = knn[:, :k]
    out = torch.empty(n, k, dtype=torch.bool, device=knn.device)
    rows = torch.arange(n, device=knn.device)
    step = _step(k * k)
    for s in range(0, n, step):
        out[s : s + step] = (fwd[fwd[s : s + step]] == rows[s : s + step, None, None]).any(-1)
    return out


def _expanded_sets(knn: torch.Tensor, k1: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's expanded k-reciprocal set: sorted padded indices (N, L) and a valid mask.

    ``R(i, k1)`` plus every ``R(j, k1/2)`` (j in ``R(i, k1)``) of which more than 2/3 lies
    in ``R(i, k1)``; duplicates removed.
    """
    n = knn.shape[0]
    kh = int(round(k1 / 2.0)) + 1
    fwd, fwd_h = knn[:, : k1 + 1], knn[:, :kh]
    rec, rec_h = _reciprocal(knn, k1 + 1), _reciprocal(knn, kh)
    exp_idx = torch.empty(n, (k1 + 1) * kh, dtype=torch.int64, device=knn.device)
    exp_ok = torch.empty(n, (k1 + 1) * kh, dtype=torch.bool, device=knn.device)
    step = _step((k1 + 1) * kh * (k1 + 1))
    for s in range(0, n, step):
        e = min(n, s + step)
        members = fwd_h[fwd[s:e]]  # (b, k1+1, kh): R(j, k1/2) candidates of each j
        valid = rec_h[fwd[s:e]]
        in_r = ((members[..., None] == fwd[s:e, None, None, :]) & rec[s:e, None, None, :]).any(-1)
        inter = (in_r & valid).sum(-1)
        take = rec[s:e] & (inter > (2.0 / 3.0) * valid.sum(-1))
        exp_idx[s:e] = members.reshape(e - s, -1)
        exp_ok[s:e] = (valid & take[..., None]).reshape(e - s, -1)
    idx = torch.where(torch.cat([rec, exp_ok], 1), torch.cat([fwd, exp_idx], 1), n)
    idx = torch.sort(idx, dim=1).values  # absent entries (n) sort last
    ok = idx < n
    ok[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    return idx, ok


def _pair_distance(
    feats: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, distance: str
) -> torch.Tensor:
    """Distance of each (row, col) pair, computed in blocks (squared Euclidean or 1 - cos)."""
    f = feats.float()
    if distance == "cosine":
        f = F.normalize(f, dim=1)
    out = torch.empty(rows.numel(), device=feats.device)
    step = _step(f.shape[1])
    for s in range(0, rows.numel(), step):
        a, b = f[rows[s : s + step]], f[cols[s : s + step]]
        if distance == "cosine":
            out[s : s + step] = 1.0 - (a * b).sum(1)
        else:
            out[s : s + step] = ((a - b) ** 2).sum(1)
    return out


class _SparseRows:
    """A sparse (N x N) matrix as row-major (rows, cols, vals) with row pointers."""

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n: int):
        self.rows, self.cols, self.vals, self.n = rows, cols, vals, n
        counts = torch.bincount(rows, minlength=n)
        self.ptr = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
        self.ptr[1:] = counts.cumsum(0)

    def expand(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each entry of ``src`` (row ids): (which src position, entry index) pairs."""
        counts = self.ptr[src + 1] - self.ptr[src]
        owner = torch.repeat_interleave(torch.arange(src.numel(), device=src.device), counts)
        offs = torch.arange(owner.numel(), device=src.device) - (counts.cumsum(0) - counts)[owner]
        return owner, self.ptr[src][owner] + offs


def _weights(
    feats: torch.Tensor, idx: torch.Tensor, ok: torch.Tensor, rowmax: torch.Tensor, distance: str
) -> _SparseRows:
    """V: Gaussian-kernel weights over each expanded set, normalised to sum 1 per row."""
    n = feats.shape[0]
    rows, slot = ok.nonzero(as_tuple=True)
    cols = idx[rows, slot]
    w = torch.exp(-_pair_distance(feats, rows, cols, distance) / rowmax[rows])
    total = torch.zeros(n, device=feats.device).index_add_(0, rows, w)
    return _SparseRows(rows, cols, w / total[rows], n)


def _local_expansion(v: _SparseRows, knn: torch.Tensor, k2: int) -> _SparseRows:
    """V_qe[i] = mean of V over the k2 nearest neighbours of i (sparse, coalesced)."""
    n = v.n
    dest = torch.arange(n, device=knn.device).repeat_interleave(k2)
    owner, entry = v.expand(knn[:, :k2].reshape(-1))
    key = dest[owner] * n + v.cols[entry]
    uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
    vals = torch.zeros(uniq.numel(), device=knn.device).index_add_(0, inverse, v.vals[entry])
    return _SparseRows(uniq // n, uniq % n, vals / k2, n)


class KReciprocalDistance:
    """Re-ranked query-to-gallery distances, produced one block of queries at a time.

    Build it once from the features (the neighbour lists and sparse weights of all
    Nq + Ng images), then call ``dist(s, e)`` for the (e - s, Ng) re-ranked block of queries
    ``s:e``; ``evaluate_reid(..., dist_fn=dist)`` consumes it chunk by chunk. With ``gf``
    None the queries are the gallery (one set against itself, as clustering needs).
    """

    @property
    def block_rows(self) -> int:
        """Query rows per block that keep a (rows x Ng) temporary at about ``_BLOCK`` floats."""
        return _step(self.ng)

    def __init__(
        self,
        qf: torch.Tensor,
        gf: torch.Tensor | None,
        k1: int = 20,
        k2: int = 6,
        lambda_value: float = 0.3,
        distance: str = "euclidean",
    ) -> None:
        if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
            raise ConfigError(
                f"re-ranking: k1 = {k1}, k2 = {k2}, lambda = {lambda_value}: expected k1 >= 1, "
                "k2 >= 1 and 0 <= lambda <= 1 (the paper uses 20, 6, 0.3)"
            )
        if gf is None:  # one set, compared with itself (clustering): queries = gallery
            feats, self.nq = qf.float(), 0
            gf = qf
        else:
            feats, self.nq = torch.cat([qf.float(), gf.to(qf.device).float()]), qf.shape[0]
        self.ng, n = gf.shape[0], feats.shape[0]
        k = min(n, max(k1 + 1, k2))
        k1, k2 = min(k1, k - 1), min(k2, k)
        self.lambda_value = lambda_value
        with single_cpu_thread(feats.device):
            self.rowmax, knn = _neighbours(feats, k, distance)
            idx, ok = _expanded_sets(knn, k1)
            v = _weights(feats, idx, ok, self.rowmax, distance)
            self.v = _local_expansion(v, knn, k2) if k2 > 1 else v
            self._inverted_gallery()
        self.original = GalleryDistance(gf.to(qf.device), distance)
        self.qf = qf

    def _inverted_gallery(self) -> None:
        """Column lists of V restricted to gallery rows: for each column, (gallery row, value)."""
        v = self.v
        sel = v.rows >= self.nq
        cols = v.cols[sel]
        order = torch.sort(cols, stable=True).indices
        self.g_rows = (v.rows[sel] - self.nq)[order]
        self.g_vals = v.vals[sel][order]
        counts = torch.bincount(cols, minlength=v.n)
        self.col_ptr = torch.zeros(v.n + 1, dtype=torch.int64, device=cols.device)
        self.col_ptr[1:] = counts.cumsum(0)

    def jaccard(self, s: int, e: int) -> torch.Tensor:
        """Jaccard distance (e - s, Ng) of queries s:e to the gallery from the sparse V
        (1 where two sets do not overlap; at most ``block_rows`` rows at a time)."""
        v = self.v
        lo, hi = int(v.ptr[s]), int(v.ptr[e])
        rows, cols, vals = v.rows[lo:hi] - s, v.cols[lo:hi], v.vals[lo:hi]
        counts = self.col_ptr[cols + 1] - self.col_ptr[cols]
        acc = torch.zeros((e - s) * self.ng, device=vals.device)
        bounds = torch.cumsum(counts, 0)
        start = 0
        while start < rows.numel():  # entry blocks of about _BLOCK (query, gallery) pairs
            base = int(bounds[start - 1]) if start else 0
            stop = max(start + 1, int(torch.searchsorted(bounds, base + _BLOCK, right=True)))
            cnt = counts[start:stop]
            owner = torch.repeat_interleave(torch.arange(stop - start, device=cnt.device), cnt)
            offs = torch.arange(owner.numel(), device=cnt.device) - (cnt.cumsum(0) - cnt)[owner]
            pos = self.col_ptr[cols[start:stop]][owner] + offs
            both = torch.minimum(vals[start:stop][owner], self.g_vals[pos])
            acc.index_add_(0, rows[start:stop][owner] * self.ng + self.g_rows[pos], both)
            start = stop
        acc = acc.view(e - s, self.ng)
        return 1.0 - acc / (2.0 - acc)

    def __call__(self, s: int, e: int) -> torch.Tensor:
        """Re-ranked distances of queries ``s:e`` to every gallery image (float32)."""
        original = self.original(self.qf[s:e]) / self.rowmax[s:e, None]
        return (
            self.jaccard(s, e).mul_(1.0 - self.lambda_value).add_(original, alpha=self.lambda_value)
        )


def query_expansion(
    qf: torch.Tensor, gf: torch.Tensor, k: int, distance: str = "euclidean"
) -> torch.Tensor:
    """Average query expansion: each query becomes the mean of itself and its top-k gallery
    neighbours (by ``distance``); with ``k = 0`` the queries are returned unchanged."""
    if k < 0:
        raise ConfigError(f"evaluation_params.query_expansion = {k}: expected an integer >= 0")
    if k == 0:
        return qf
    k = min(k, gf.shape[0])
    gf = gf.to(qf.device).float()
    if distance == "cosine":
        qf, gf = (
            torch.nn.functional.normalize(qf.float(), dim=1),
            torch.nn.functional.normalize(gf, dim=1),
        )
    dist_to = GalleryDistance(gf, distance)
    out = torch.empty_like(qf, dtype=torch.float32)
    step = _step(gf.shape[0])
    with single_cpu_thread(qf.device):
        for s in range(0, qf.shape[0], step):
            q = qf[s : s + step].float()
            nn_idx = dist_to(q).topk(k, dim=1, largest=False).indices
            out[s : s + step] = (q + gf[nn_idx].sum(1)) / (k + 1)
    return out
