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

from reidkit.evaluation.ranking import (
    GalleryDistance,
    GalleryIndex,
    market_stats,
    match_ranks,
    shot_priority,
    single_cpu_thread,
    single_shot_first,
)
from reidkit.utils.choices import DISTANCES
from reidkit.utils.errors import ConfigError, DataError

__all__ = ["check_ranks", "evaluate_reid", "pairwise_distance", "shot_priority"]

PROTOCOLS = ("market", "cuhk03")
# Elements of one (chunk x gallery) block; bounds memory to a few hundred MB per chunk.
_BLOCK_ELEMENTS = 1 << 22
_BLOCK_ELEMENTS_GPU = 1 << 26


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
    for name, f in (("query", qf), ("gallery", gf)):
        # a NaN / inf anywhere makes its row sum non-finite: a cheap check without a copy
        if not bool(torch.isfinite(f.sum(1)).all()):
            raise DataError(
                f"evaluate_reid: the {name} features contain NaN or inf; check the model "
                "(a diverged training run?) or the saved features file"
            )
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
    """Distances between two feature blocks: squared Euclidean or 1 - cosine (float32).

    Squared Euclidean ranks exactly like Euclidean and avoids a square root per pair.
    """
    if distance not in DISTANCES:
        raise ConfigError(
            f"evaluation_params.distance = {distance!r} is not valid: expected one of "
            f"{', '.join(DISTANCES)}"
        )
    return GalleryDistance(gf, distance)(qf)


def _auto_chunk(num_gallery: int, device: torch.device) -> int:
    """Queries per chunk so that one block holds a bounded number of distances.

    About 4M distances on CPU (cache friendly, ~100 MB of temporaries) and 64M on a GPU
    (a few GB of temporaries, large enough to keep the GPU busy).
    """
    budget = _BLOCK_ELEMENTS if device.type == "cpu" else _BLOCK_ELEMENTS_GPU
    return max(1, min(8192, budget // max(1, num_gallery)))


def _check_options(protocol: str, distance: str, num_repeats: int) -> None:
    """One-line errors for an unknown protocol / distance or a bad repeat count."""
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


def _prepare(
    qf: Any, gf: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Features as float32 and ids as int64 tensors on the query features' device, checked."""
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
    return qf, gf, ids


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
    _check_options(protocol, distance, num_repeats)
    qf, gf, ids = _prepare(qf, gf, q_pids, g_pids, q_camids, g_camids)
    device, n_q = qf.device, qf.shape[0]
    step = chunk_size if chunk_size and chunk_size > 0 else _auto_chunk(gf.shape[0], device)
    stats: list[dict[str, torch.Tensor]] = []
    with single_cpu_thread(device):
        index = GalleryIndex(ids["g_pids"], ids["g_camids"])
        distance_to = GalleryDistance(gf, distance) if dist_fn is None else None
        shots = None
        if protocol == "cuhk03":
            uniq, groups = torch.unique(ids["g_pids"], return_inverse=True)
            shots = (groups, int(uniq.numel()), seed, num_repeats)
        for s in range(0, n_q, step):
            e = min(n_q, s + step)
            if distance_to is not None:
                dist = distance_to(qf[s:e])
            else:  # a private float32 copy: removed items are overwritten with +inf
                dist = dist_fn(s, e).to(torch.float32, copy=True)
            stats.append(_chunk_stats(dist, ids, index, s, e, shots))
    return _summarise(stats, ranks, n_q)


def _chunk_stats(
    dist: torch.Tensor,
    ids: dict[str, torch.Tensor],
    index: GalleryIndex,
    s: int,
    e: int,
    shots: tuple[torch.Tensor, int, int, int] | None,
) -> dict[str, torch.Tensor]:
    """First-hit ranks, APs, INPs (and CUHK03 single-shot ranks) of queries ``s:e``."""
    qp, qc = ids["q_pids"][s:e], ids["q_camids"][s:e]
    good_rows, good_cols = index.filter_block(dist, qp, qc)
    st = market_stats(*match_ranks(dist, good_rows, good_cols, qp, ids["g_pids"]), e - s)
    if shots is not None:
        groups, num_ids, seed, num_repeats = shots
        q_index = torch.arange(s, e, device=dist.device, dtype=torch.int64)
        sf = single_shot_first(
            dist, good_rows, good_cols, groups, num_ids, q_index, seed, num_repeats
        )
        st["shot_first"] = sf[:, st["valid"]]
    return st


def _summarise(
    stats: list[dict[str, torch.Tensor]], ranks: tuple[int, ...], num_queries: int
) -> dict[str, float]:
    """Average the per-query statistics of all chunks into the metrics dict."""
    first = torch.cat([st["first"] for st in stats]) if stats else torch.zeros(0)
    n_valid = int(first.numel())
    shots = [st["shot_first"] for st in stats if "shot_first" in st]
    out: dict[str, float] = {}
    for k in ranks:
        if shots:
            hit = (torch.cat(shots, dim=1) <= k).double().mean(0)
        else:
            hit = (first <= k).double()
        out[f"rank{k}"] = float(hit.mean()) if n_valid else 0.0
    out["mAP"] = float(torch.cat([st["ap"] for st in stats]).mean()) if n_valid else 0.0
    out["mINP"] = float(torch.cat([st["inp"] for st in stats]).mean()) if n_valid else 0.0
    out["num_queries"] = num_queries
    out["num_valid_queries"] = n_valid
    return out
