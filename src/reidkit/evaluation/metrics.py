"""Exact re-identification metrics (CMC, mAP, mINP), vectorised in torch and chunked over queries.

Protocols
---------
``market`` (Market-1501 / DukeMTMC / MSMT17): for each query the gallery images with the same
identity *and* the same camera are removed, as are junk images (pid ``-1``); distractors (pid
``0``) stay as negatives. A query with no remaining true match is counted in
``num_queries`` but left out of every average (``num_valid_queries`` says how many were kept).

``cuhk03`` (single-gallery-shot): same filtering; the CMC is averaged over ``num_repeats``
draws in which one gallery image per identity is kept at random (seeded, and independent of the
chunk size and the device); mAP and mINP use the full filtered ranking, as in the common
open-source evaluations of this protocol.

Ties
----
Gallery items are ranked by distance with a *stable* sort, so items at exactly the same
distance keep gallery order (lower gallery index first). The result is deterministic and
identical on CPU and CUDA for the same distances.

Distances are squared Euclidean (same ranking as Euclidean) or ``1 - cosine similarity``,
computed in float32. Memory is bounded: only a ``chunk_size x num_gallery`` block of distances
(plus its sort order) exists at any time, never the full query x gallery matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from reidkit.utils.errors import ConfigError, DataError

DISTANCES = ("euclidean", "cosine")
PROTOCOLS = ("market", "cuhk03")
# Elements of one (chunk x gallery) block; bounds memory to a few hundred MB per chunk.
_BLOCK_ELEMENTS = 1 << 22


def _as_tensor(x: Any, name: str, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
    """Turn a tensor / array / list into a tensor on ``device`` with a clear error."""
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise DataError(f"evaluate_reid: {name} cannot be read as a tensor ({e})") from None
    return t.to(device=device if device is not None else t.device, dtype=dtype)


def _check_inputs(
    qf: torch.Tensor,
    gf: torch.Tensor,
    ids: dict[str, torch.Tensor],
) -> None:
    """Raise a one-line DataError when shapes do not agree."""
    if qf.dim() != 2 or gf.dim() != 2:
        raise DataError(
            f"evaluate_reid: features must be 2-D (N, D), got qf {tuple(qf.shape)} "
            f"and gf {tuple(gf.shape)}"
        )
    if qf.shape[1] != gf.shape[1]:
        raise DataError(
            f"evaluate_reid: query features have dimension {qf.shape[1]} but gallery "
            f"features {gf.shape[1]}; both must come from the same model"
        )
    if gf.shape[0] == 0:
        raise DataError("evaluate_reid: the gallery is empty")
    for name, t in ids.items():
        n = qf.shape[0] if name.startswith("q_") else gf.shape[0]
        if t.dim() != 1 or t.shape[0] != n:
            raise DataError(
                f"evaluate_reid: {name} has shape {tuple(t.shape)}, expected ({n},) "
                f"to match the {'query' if name.startswith('q_') else 'gallery'} features"
            )


def check_ranks(ranks: Sequence[int]) -> tuple[int, ...]:
    """Validate the requested CMC ranks (positive integers), sorted and de-duplicated."""
    try:
        out = tuple(sorted({int(r) for r in ranks}))
    except (TypeError, ValueError):
        raise ConfigError(
            f"evaluation_params.ranks = {ranks!r}: expected a list of positive integers"
        ) from None
    if not out or out[0] < 1 or any(int(r) != r for r in ranks):
        raise ConfigError(
            f"evaluation_params.ranks = {list(ranks)!r}: expected a non-empty list of "
            "positive integers such as [1, 5, 10]"
        )
    return out


def pairwise_distance(qf: torch.Tensor, gf: torch.Tensor, distance: str) -> torch.Tensor:
    """Distances between two feature blocks: squared Euclidean or 1 - cosine (float32)."""
    qf = qf.float()
    gf = gf.float()
    if distance == "cosine":
        return 1.0 - F.normalize(qf, dim=1) @ F.normalize(gf, dim=1).T
    if distance == "euclidean":
        qq = (qf * qf).sum(1, keepdim=True)
        gg = (gf * gf).sum(1)
        return torch.addmm(qq + gg, qf, gf.T, beta=1.0, alpha=-2.0).clamp_(min=0)
    raise ConfigError(
        f"evaluation_params.distance = {distance!r} is not valid: expected one of "
        f"{', '.join(DISTANCES)}"
    )


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
    salt = _hash32(torch.tensor(seed * 1000003 + repeat * 7919 + 12345, dtype=torch.int64))
    h = _hash32(q_index[:, None] * 2654435761 + salt.to(q_index.device))
    h = _hash32(h ^ _hash32(g_index + 0x9E3779B9)[None, :])
    return h * num_gallery + g_index[None, :]


def _rank_chunk(
    dist: torch.Tensor,
    qp: torch.Tensor,
    qc: torch.Tensor,
    g_pids: torch.Tensor,
    g_camids: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Sort one chunk of queries and return, per query, what the metrics need.

    Returns ``order`` (B, M) gallery indices by rank, ``keep`` (valid gallery items in rank
    order), ``good`` (true matches among them) and ``pos`` (1-based rank among kept items).
    """
    order = torch.sort(dist, dim=1, stable=True).indices
    gp = g_pids[order]
    match = gp == qp[:, None]
    keep = ~((match & (g_camids[order] == qc[:, None])) | (gp == -1))
    good = match & keep
    pos = keep.cumsum(1, dtype=torch.int32)
    return {"order": order, "keep": keep, "good": good, "pos": pos}


def _market_stats(r: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-query first-hit rank, AP and INP of one chunk (valid queries only).

    Works on the (few) true-match positions only, so no extra (B, M) float block is built.
    """
    good, pos = r["good"], r["pos"]
    b = good.shape[0]
    rows, cols = good.nonzero(as_tuple=True)
    p = pos[rows, cols].to(torch.int64)
    num_good = torch.zeros(b, dtype=torch.int64, device=good.device).index_add_(
        0, rows, torch.ones_like(rows)
    )
    # nonzero() is row-major, so the k-th true match of a row is its k-th entry there.
    offsets = num_good.cumsum(0) - num_good
    hits = (torch.arange(rows.numel(), device=good.device) - offsets[rows] + 1).double()
    valid = num_good > 0
    first = torch.full((b,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=good.device)
    first.scatter_reduce_(0, rows, p, reduce="amin")
    last = torch.zeros(b, dtype=torch.int64, device=good.device)
    last.scatter_reduce_(0, rows, p, reduce="amax")
    prec = torch.zeros(b, dtype=torch.float64, device=good.device)
    prec.index_add_(0, rows, hits / p.double())
    n = num_good.clamp(min=1).double()
    return {
        "valid": valid,
        "first": first[valid],
        "ap": (prec / n)[valid],
        "inp": (num_good.double() / last.clamp(min=1).double())[valid],
    }


def _cuhk03_first(
    r: dict[str, torch.Tensor],
    pid_index: torch.Tensor,
    num_ids: int,
    q_index: torch.Tensor,
    seed: int,
    num_repeats: int,
) -> torch.Tensor:
    """(num_repeats, B) rank of the sampled true match among sampled items (single shot)."""
    order, keep, good = r["order"], r["keep"], r["good"]
    b, m = order.shape
    groups = pid_index[order]
    out = []
    for rep in range(num_repeats):
        prio = shot_priority(seed, rep, q_index, m).gather(1, order)
        prio = torch.where(keep, prio, torch.full_like(prio, -1))
        best = torch.full((b, num_ids), -1, dtype=prio.dtype, device=prio.device)
        best.scatter_reduce_(1, groups, prio, reduce="amax")
        chosen = keep & (prio == best.gather(1, groups))
        rank = chosen.cumsum(1, dtype=torch.int32)
        big = torch.iinfo(torch.int32).max
        out.append(torch.where(good & chosen, rank, big).amin(1))
    return torch.stack(out)


def _auto_chunk(num_gallery: int) -> int:
    """Queries per chunk so that one block holds about ``_BLOCK_ELEMENTS`` distances."""
    return max(1, min(4096, _BLOCK_ELEMENTS // max(1, num_gallery)))


def evaluate_reid(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    ranks: Sequence[int] = (1, 5, 10),
    distance: str = "euclidean",
    protocol: str = "market",
    chunk_size: int | None = None,
    num_repeats: int = 10,
    seed: int = 0,
    dist_fn: Any = None,
) -> dict[str, float]:
    """CMC ranks, mAP and mINP of a query set against a gallery, exactly and in bounded memory.

    ``qf`` (Nq, D) and ``gf`` (Ng, D) are features (tensors on any device, or arrays); the ids
    are 1-D. Returns ``rank{k}`` for each requested k, ``mAP``, ``mINP`` (fractions in [0, 1]),
    ``num_queries`` and ``num_valid_queries``. ``dist_fn(q_start, q_end) -> (B, Ng)`` replaces
    the feature distance (used by re-ranking); ``qf`` then only gives the number of queries.
    See the module docstring for the protocols and the tie rule.
    """
    ranks = check_ranks(ranks)
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"protocol = {protocol!r} is not valid: expected one of {', '.join(PROTOCOLS)}"
        )
    if distance not in DISTANCES:
        raise ConfigError(
            f"evaluation_params.distance = {distance!r} is not valid: expected one of "
            f"{', '.join(DISTANCES)}"
        )
    if num_repeats < 1:
        raise ConfigError(f"num_repeats = {num_repeats}: expected an integer >= 1")
    qf = _as_tensor(qf, "qf", None, torch.float32)
    device = qf.device
    gf = _as_tensor(gf, "gf", device, torch.float32)
    ids = {
        "q_pids": _as_tensor(q_pids, "q_pids", device, torch.int64),
        "g_pids": _as_tensor(g_pids, "g_pids", device, torch.int64),
        "q_camids": _as_tensor(q_camids, "q_camids", device, torch.int64),
        "g_camids": _as_tensor(g_camids, "g_camids", device, torch.int64),
    }
    _check_inputs(qf, gf, ids)
    n_q, n_g = qf.shape[0], gf.shape[0]
    step = chunk_size if chunk_size and chunk_size > 0 else _auto_chunk(n_g)
    pid_index = num_ids = None
    if protocol == "cuhk03":
        uniq, pid_index = torch.unique(ids["g_pids"], return_inverse=True)
        num_ids = int(uniq.numel())

    firsts, aps, inps, shot_firsts = [], [], [], []
    for s in range(0, n_q, step):
        e = min(n_q, s + step)
        dist = dist_fn(s, e) if dist_fn is not None else pairwise_distance(qf[s:e], gf, distance)
        r = _rank_chunk(
            dist, ids["q_pids"][s:e], ids["q_camids"][s:e], ids["g_pids"], ids["g_camids"]
        )
        del dist
        st = _market_stats(r)
        firsts.append(st["first"])
        aps.append(st["ap"])
        inps.append(st["inp"])
        if protocol == "cuhk03":
            q_index = torch.arange(s, e, device=device, dtype=torch.int64)
            sf = _cuhk03_first(r, pid_index, num_ids, q_index, seed, num_repeats)
            shot_firsts.append(sf[:, st["valid"]])
    return _summarise(firsts, aps, inps, shot_firsts, ranks, n_q)


def _summarise(
    firsts: list[torch.Tensor],
    aps: list[torch.Tensor],
    inps: list[torch.Tensor],
    shot_firsts: list[torch.Tensor],
    ranks: tuple[int, ...],
    num_queries: int,
) -> dict[str, float]:
    """Average the per-query statistics into the metrics dict."""
    first = torch.cat(firsts) if firsts else torch.zeros(0, dtype=torch.int32)
    n_valid = int(first.numel())
    out: dict[str, float] = {}
    for k in ranks:
        if shot_firsts:
            hit = (torch.cat(shot_firsts, dim=1) <= k).double().mean(0)
        else:
            hit = (first <= k).double()
        out[f"rank{k}"] = float(hit.mean()) if n_valid else 0.0
    out["mAP"] = float(torch.cat(aps).mean()) if n_valid else 0.0
    out["mINP"] = float(torch.cat(inps).mean()) if n_valid else 0.0
    out["num_queries"] = num_queries
    out["num_valid_queries"] = n_valid
    return out
