"""Tracklet-level evaluation: one feature per tracklet, query tracklets against gallery
tracklets, through the same exact metrics as images (``evaluate_reid``).

A tracklet's feature is pooled (``video.pool``: ``avg`` = mean, ``max`` = element-wise
maximum) from the features of its parts:

* a model without temporal attention (an image model, or a video model trained with
  ``video.temporal: avg``): every frame chosen by ``video.test_sampling`` (``all``: every frame;
  ``evenly``: ``seq_len`` frames spread over the tracklet) is embedded on its own, as torchreid
  does at test;
* a model with temporal attention: the frames are fed as clips (``all``: consecutive chunks of
  ``seq_len``; ``evenly``: one clip), each clip embedded by the model's own aggregation, and the
  clip embeddings are pooled.

The built-in evaluator ``video_evaluate`` (``evaluation/builtins.py``) scores these features;
``market_evaluate`` runs it on a video dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reidkit.data.clips import eval_clips
from reidkit.data.records import Record
from reidkit.data.video_records import TrackletRecord
from reidkit.evaluation.features import embed_batch, extract_features
from reidkit.utils.errors import ConfigError, DataError
from reidkit.utils.logging import get_logger

POOLS = ("avg", "max")
LoaderFactory = Callable[[Sequence[Record]], Any]


@dataclass
class TrackletFeatures:
    """One feature row per tracklet that had a decodable frame; ``kept`` = their indices."""

    feats: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor
    kept: list[int]


def check_pool(pool: str) -> str:
    """``pool`` if it is avg or max, else a one-line ``ConfigError``."""
    if pool not in POOLS:
        raise ConfigError(f"video.pool / --pool = {pool!r} is not valid (valid: avg, max)")
    return pool


def pool_rows(
    feats: torch.Tensor, owner: Sequence[int], count: int, pool: str
) -> tuple[torch.Tensor, list[int]]:
    """Rows of ``feats`` pooled per owner (0..count-1): ``(pooled (M, D), owners present)``."""
    check_pool(pool)
    idx = torch.as_tensor(list(owner), dtype=torch.int64, device=feats.device)
    out = torch.zeros(count, feats.shape[1], dtype=torch.float32, device=feats.device)
    how = "mean" if pool == "avg" else "amax"
    out.scatter_reduce_(0, idx[:, None].expand_as(feats), feats.float(), how, include_self=False)
    present = sorted(set(idx.tolist()))
    return out[present], present


def frame_picks(n: int, seq_len: int, sampling: str) -> list[int]:
    """The frames of an ``n``-frame tracklet that are embedded one by one at test
    (``sampling`` all, or evenly: ``seq_len`` frames spread over it, each frame once)."""
    if sampling == "all":
        return list(range(n))
    return sorted(set(eval_clips(n, seq_len, sampling)[0]))


def uses_clips(model: nn.Module) -> bool:
    """Whether ``model`` aggregates clips itself with learned (attention) weights."""
    temporal = getattr(model, "temporal", None)
    return getattr(temporal, "kind", "avg") == "attention"


def _frame_units(
    model: nn.Module,
    tracklets: Sequence[TrackletRecord],
    make_loader: LoaderFactory,
    device: torch.device,
    seq_len: int,
    sampling: str,
    flip: bool,
) -> tuple[torch.Tensor, list[int]]:
    """Features of the chosen frames, each embedded alone, and the tracklet of each row."""
    records, owner = [], []
    for i, t in enumerate(tracklets):
        picks = frame_picks(len(t), seq_len, sampling)
        records += [Record(t.frames[j], t.pid, t.camid) for j in picks]
        owner += [i] * len(picks)
    loader = make_loader(records)
    feats, _, _ = extract_features(model, loader, device, flip=flip)
    return feats, [owner[i] for i in loader.delivered]


def _clip_units(
    model: nn.Module,
    tracklets: Sequence[TrackletRecord],
    make_loader: LoaderFactory,
    device: torch.device,
    seq_len: int,
    sampling: str,
    flip: bool,
) -> tuple[torch.Tensor, list[int]]:
    """Clip embeddings (the model's own temporal aggregation) and the tracklet of each row.

    Frames stream from the loader in clip order; a clip is embedded once all its frames have
    arrived (frames that cannot be decoded are left out of their clip)."""
    records, frame_clip, clip_owner = [], [], []
    for i, t in enumerate(tracklets):
        for clip in eval_clips(len(t), seq_len, sampling):
            records += [Record(t.frames[j], t.pid, t.camid) for j in clip]
            frame_clip += [len(clip_owner)] * len(clip)
            clip_owner.append(i)
    loader = make_loader(records)
    out: dict[int, torch.Tensor] = {}
    ready: list[tuple[int, torch.Tensor]] = []
    current: tuple[int, list[torch.Tensor]] = (-1, [])
    limit = max(seq_len, getattr(loader, "batch_size", 64))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in loader:
                rows = loader.delivered[len(loader.delivered) - batch.images.shape[0] :]
                for pos, image in zip(rows, batch.images.to(device), strict=True):
                    if frame_clip[pos] != current[0]:
                        if current[1]:
                            ready.append((current[0], torch.stack(current[1])))
                        current = (frame_clip[pos], [])
                    current[1].append(image)
                if sum(len(x) for _, x in ready) >= limit:
                    _embed_clips(model, ready, out, flip)
            if current[1]:
                ready.append((current[0], torch.stack(current[1])))
            _embed_clips(model, ready, out, flip)
    finally:
        model.train(was_training)
    if not out:
        raise DataError("tracklet features: no frame could be decoded")
    order = sorted(out)
    return torch.stack([out[c] for c in order]), [clip_owner[c] for c in order]


def _embed_clips(
    model: nn.Module,
    ready: list[tuple[int, torch.Tensor]],
    out: dict[int, torch.Tensor],
    flip: bool,
) -> None:
    """Embed the ready clips, those of one length in one batch; empties ``ready``."""
    by_len: dict[int, list[tuple[int, torch.Tensor]]] = {}
    for c, frames in ready:
        by_len.setdefault(frames.shape[0], []).append((c, frames))
    for group in by_len.values():
        feats = embed_batch(model, torch.stack([f for _, f in group]), flip=flip)
        out.update({c: f for (c, _), f in zip(group, feats, strict=True)})
    ready.clear()


def tracklet_features(
    model: nn.Module,
    tracklets: Sequence[TrackletRecord],
    make_loader: LoaderFactory,
    device: torch.device | str,
    *,
    seq_len: int = 4,
    sampling: str = "all",
    pool: str = "avg",
    flip: bool = False,
) -> TrackletFeatures:
    """One pooled feature per tracklet (see the module docstring); ``make_loader(records)``
    gives a test loader over frame records (``build_test_loader``)."""
    check_pool(pool)
    if not tracklets:
        raise DataError("tracklet features: no tracklets to embed")
    device = torch.device(device)
    units = _clip_units if uses_clips(model) else _frame_units
    feats, owner = units(model, tracklets, make_loader, device, seq_len, sampling, flip)
    pooled, kept = pool_rows(feats, owner, len(tracklets), pool)
    if len(kept) < len(tracklets):
        get_logger().warning(
            f"{len(tracklets) - len(kept)} tracklet(s) left out: none of their frames decoded"
        )
    pids = torch.tensor([tracklets[i].pid for i in kept], dtype=torch.int64)
    camids = torch.tensor([tracklets[i].camid for i in kept], dtype=torch.int64)
    return TrackletFeatures(pooled, pids, camids, kept)
