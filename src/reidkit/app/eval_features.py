"""The features ``reidkit eval`` scores: query and gallery features with their ids, from a
saved ``.npz``, a PyTorch model or an exported model (``reidkit.app.evaluate``), image by
image, or tracklet by tracklet for a video dataset or ``--tracklets``
(``reidkit.app.evaluate_video``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reidkit.app.evaluate_video import exported_tracklet_tensors, model_tracklet_tensors
from reidkit.data import build_dataset, build_test_loader
from reidkit.data.images import decode_rgb
from reidkit.data.video_records import is_video
from reidkit.deploy.embedder import Embedder
from reidkit.deploy.features_io import load_features, open_npz
from reidkit.evaluation.features import extract_features
from reidkit.utils.errors import DataError
from reidkit.utils.logging import get_logger

FEATURE_KEYS = ("qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids")


@dataclass
class FeatureSet:
    """Query and gallery features with ids, plus (optionally) the images they came from."""

    tensors: dict[str, torch.Tensor]
    dataset: Any = None  # a ReidDataset when the features were computed here
    # the query / gallery records in feature-row order (unreadable images have no row)
    records: tuple[list[Any], list[Any]] | None = None


def load_feature_file(path: Path, gallery: str | Path | None = None) -> FeatureSet:
    """Features from one evaluation .npz, or a query + gallery pair of ``reidkit extract``."""
    if gallery is not None:
        q, g = load_features(path), load_features(gallery)
        for name, f in ((path, q), (gallery, g)):
            if f.pids is None or f.camids is None:
                raise DataError(
                    f"{name}: features file has no pids/camids (file names were not "
                    "Market-style <pid>_c<cam>...); they are needed to evaluate"
                )
        values = (q.feats, g.feats, q.pids, g.pids, q.camids, g.camids)
        arrays = dict(zip(FEATURE_KEYS, values, strict=True))
    else:
        try:
            with open_npz(path, "an evaluation features file (.npz)") as data:
                missing = [k for k in FEATURE_KEYS if k not in data]
                if missing:
                    hint = " (a `reidkit extract` file: pass the gallery with --gallery)"
                    raise DataError(
                        f"{path}: features file lacks {', '.join(missing)}; expected keys "
                        f"{', '.join(FEATURE_KEYS)}" + (hint if "feats" in data else "")
                    )
                arrays = {k: data[k] for k in FEATURE_KEYS}
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable .npz features file ({e})") from None
    return FeatureSet({k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()})


def model_features(
    model: torch.nn.Module,
    cfg: Any,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
    tracklets: bool = False,
) -> FeatureSet:
    """Embed the configured dataset's query and gallery with a PyTorch model (tracklet by
    tracklet for a video dataset or ``tracklets``)."""
    ds = build_dataset(cfg)
    if tracklets or is_video(ds):
        tensors, records = model_tracklet_tensors(model, cfg, ds, device)
        return FeatureSet(tensors, ds, records)
    out: dict[str, torch.Tensor] = {}
    kept: list[list[Any]] = []
    for split, prefix in ((ds.query, "q"), (ds.gallery, "g")):
        loader = build_test_loader(cfg, split, ds.source, device)
        f, p, c = extract_features(model, loader, device, flip=cfg.data.flip_test, scales=scales)
        out.update({f"{prefix}f": f, f"{prefix}_pids": p, f"{prefix}_camids": c})
        kept.append([split[i] for i in loader.delivered])
    return FeatureSet({k: out[k] for k in FEATURE_KEYS}, ds, (kept[0], kept[1]))


def onnx_features(path: Path, cfg: Any, device: torch.device, tracklets: bool) -> FeatureSet:
    """Embed the configured dataset with an exported model (onnxruntime or OpenVINO)."""
    embedder = Embedder.load(path, device=device.type, batch_size=cfg.data.test_batch_size)
    ds = build_dataset(cfg)
    embed = lambda recs: _embed_records(embedder, ds.source, recs, cfg.data.flip_test)  # noqa: E731
    if tracklets or is_video(ds):
        tensors, records = exported_tracklet_tensors(cfg, ds, embed)
        return FeatureSet(tensors, ds, records)
    out: dict[str, torch.Tensor] = {}
    kept: list[list[Any]] = []
    for split, prefix in ((ds.query, "q"), (ds.gallery, "g")):
        records, feats = embed(split)
        out[f"{prefix}f"] = torch.from_numpy(feats)
        out[f"{prefix}_pids"] = torch.tensor([r.pid for r in records], dtype=torch.int64)
        out[f"{prefix}_camids"] = torch.tensor([r.camid for r in records], dtype=torch.int64)
        kept.append(records)
    return FeatureSet({k: out[k] for k in FEATURE_KEYS}, ds, (kept[0], kept[1]))


def _embed_records(
    embedder: Embedder, source: Any, records: Sequence[Any], flip: bool
) -> tuple[list[Any], np.ndarray]:
    """The readable records and their embeddings (``(N, D)``), averaged with the mirrored
    image's when ``flip``; ``batch_size`` images per forward pass."""
    kept, arrays = _decode_records(source, records)
    feats = [np.empty((0, embedder.embedding_dim), dtype=np.float32)]
    for s in range(0, len(arrays), embedder.batch_size):
        chunk = arrays[s : s + embedder.batch_size]
        f = embedder.embed_arrays(chunk)
        if flip:
            f = (f + embedder.embed_arrays([np.ascontiguousarray(a[:, ::-1]) for a in chunk])) / 2
        feats.append(f)
    return kept, np.concatenate(feats)


def _decode_records(source: Any, records: Sequence[Any]) -> tuple[list[Any], list[np.ndarray]]:
    """The readable records and their HWC uint8 RGB arrays; unreadable images are skipped and
    counted, like the PyTorch path's loaders do."""
    kept, arrays, bad = [], [], []
    for r in records:
        try:
            arrays.append(decode_rgb(source.read(r.path), r.path))
            kept.append(r)
        except DataError as e:
            bad.append(str(e))
    if bad:
        get_logger().warning(f"skipped {len(bad)} image(s) that cannot be decoded; first: {bad[0]}")
    return kept, arrays
