"""Tracklet-level features of a model for ``reidkit eval``: a video dataset, or an image
dataset grouped into tracklets (``reidkit eval TARGET --data DIR --tracklets``).

* PyTorch (a run folder or checkpoint): ``evaluation.video.tracklet_features``, the code of
  the ``video_evaluate`` evaluator (a temporal-attention model embeds clips itself);
* an exported ``.onnx`` / OpenVINO ``.xml`` model embeds one frame at a time (the export is
  single-frame): the frames ``video.test_sampling`` picks are embedded through
  ``deploy.Embedder`` and pooled per tracklet with ``video.pool`` outside the model.

Both return the evaluation tensors (``qf, gf, q_pids, ...``) and, for the report, one
representative record per tracklet row (its middle frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from reidkit.data import build_test_loader
from reidkit.data.records import Record
from reidkit.data.video_records import TrackletRecord, is_video, tracklets_from_images
from reidkit.evaluation.video import check_pool, frame_picks, pool_rows, tracklet_features
from reidkit.utils.errors import DataError

Tensors = dict[str, torch.Tensor]
Records = tuple[list[Record], list[Record]]


def as_tracklets(dataset: Any) -> Any:
    """``dataset`` as a ``VideoDataset`` (an image dataset grouped by pid and camera)."""
    return dataset if is_video(dataset) else tracklets_from_images(dataset)


def representative(tracklets: Sequence[TrackletRecord], rows: Sequence[int]) -> list[Record]:
    """The middle frame of each tracklet of ``rows``, as the image record shown in reports."""
    out = []
    for i in rows:
        t = tracklets[i]
        out.append(Record(t.frames[(len(t) - 1) // 2], t.pid, t.camid))
    return out


def model_tracklet_tensors(
    model: torch.nn.Module, cfg: Any, dataset: Any, device: torch.device
) -> tuple[Tensors, Records]:
    """Tracklet features of query and gallery with a PyTorch model (``cfg.video`` settings)."""
    ds = as_tracklets(dataset)
    v = cfg.video
    make = lambda recs: build_test_loader(cfg, recs, ds.source, device)  # noqa: E731
    out: Tensors = {}
    kept = []
    for split, prefix in ((ds.query, "q"), (ds.gallery, "g")):
        f = tracklet_features(
            model,
            split,
            make,
            device,
            seq_len=v.seq_len,
            sampling=v.test_sampling,
            pool=v.pool,
            flip=cfg.data.flip_test,
        )
        out.update({f"{prefix}f": f.feats, f"{prefix}_pids": f.pids, f"{prefix}_camids": f.camids})
        kept.append(representative(split, f.kept))
    return out, (kept[0], kept[1])


def exported_tracklet_tensors(
    cfg: Any,
    dataset: Any,
    embed: Callable[[Sequence[Record]], tuple[list[Record], np.ndarray]],
) -> tuple[Tensors, Records]:
    """Tracklet features of query and gallery with an exported single-frame model: the frames
    ``cfg.video.test_sampling`` picks are embedded one by one (``embed(records) -> (readable
    records, (N, D) features)``, unreadable frames left out) and pooled per tracklet with
    ``cfg.video.pool``."""
    ds = as_tracklets(dataset)
    v = cfg.video
    check_pool(v.pool)
    out: Tensors = {}
    kept = []
    for split, prefix in ((ds.query, "q"), (ds.gallery, "g")):
        records = []
        for i, t in enumerate(split):
            records += [
                Record(t.frames[j], t.pid, i)
                for j in frame_picks(len(t), v.seq_len, v.test_sampling)
            ]
        readable, feats = embed(records)  # the records' camid field carries the tracklet
        if not readable:
            raise DataError(f"{ds.source.root}: no frame of the {prefix} split could be decoded")
        owner = [r.camid for r in readable]
        pooled, rows = pool_rows(torch.from_numpy(feats), owner, len(split), v.pool)
        out[f"{prefix}f"] = pooled
        out[f"{prefix}_pids"] = torch.tensor([split[i].pid for i in rows], dtype=torch.int64)
        out[f"{prefix}_camids"] = torch.tensor([split[i].camid for i in rows], dtype=torch.int64)
        kept.append(representative(split, rows))
    return out, (kept[0], kept[1])
