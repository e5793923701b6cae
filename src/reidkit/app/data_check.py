"""``reidkit data check``: load a dataset, pick the features for the label check, run
``reidkit.data.check`` and write ``check.json`` + ``check.html``.

Features for the label check come from a trained run (``model=RUN_OR_CHECKPOINT``: its eval
embedding at its own input size) or, by default, from torchvision's ImageNet MobileNetV2
(global average of its last feature map); ``features=False`` skips the label check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reidkit.data.build import load_dataset
from reidkit.data.check import CheckOptions, Embed, check_dataset
from reidkit.data.check_html import write_check
from reidkit.data.loaders import TestLoader
from reidkit.data.records import ImageSource, Record
from reidkit.data.video_records import require_images
from reidkit.evaluation.features import extract_features
from reidkit.models.backbones import build_backbone
from reidkit.models.checkpoint import restore
from reidkit.utils.devices import pick_device
from reidkit.utils.errors import DataError


class PooledBackbone(nn.Module):
    """A backbone's feature map averaged over space: one vector per image."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` features of an image batch."""
        return self.backbone(x).mean((2, 3))


def model_embedder(
    model: nn.Module, height: int, width: int, device: torch.device, batch_size: int = 64
) -> Embed:
    """An ``Embed`` running ``model`` (eval mode) over images resized to ``height x width``."""

    def embed(records: Sequence[Record], source: ImageSource) -> tuple[np.ndarray, list[str]]:
        loader = TestLoader(
            records,
            source,
            height=height,
            width=width,
            batch_size=batch_size,
            device=device,
            cache="none",
            num_workers=0,
        )
        feats, _, _ = extract_features(model, loader, device)
        # rows follow loader.delivered: images that cannot be decoded have no row
        return feats.cpu().numpy(), [records[i].path for i in loader.delivered]

    return embed


def imagenet_embedder(height: int, width: int, device: torch.device) -> Embed:
    """ImageNet MobileNetV2 features (torchvision's published weights, from torch's cache)."""
    net = PooledBackbone(build_backbone("mobilenet_v2", last_stride=2, pretrained=True))
    return model_embedder(net.to(device).eval(), height, width, device)


def run_embedder(target: str | Path, device: torch.device) -> Embed:
    """The eval embedding of a run folder's best model (or of one checkpoint)."""
    model, cfg = restore(target, device=device)
    return model_embedder(model, cfg.img_h, cfg.img_w, device, cfg.data.test_batch_size)


def parse_size(text: str) -> tuple[int, int]:
    """``"256x128"`` -> ``(256, 128)`` (height x width); one-line error otherwise."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DataError(f"--feature-size {text!r}: expected HEIGHTxWIDTH such as 256x128") from None
    if h < 16 or w < 16:
        raise DataError(f"--feature-size {text!r}: use at least 16x16")
    return h, w


def default_out(root: str | Path) -> Path:
    """Where the check writes by default: ``./<dataset name>_check``."""
    return Path(f"{Path(root).resolve().name}_check")


def run_data_check(
    root: str | Path,
    *,
    layout: str = "auto",
    out: str | Path | None = None,
    options: CheckOptions | None = None,
    model: str | Path | None = None,
    features: bool = True,
    feature_size: tuple[int, int] = (256, 128),
    device: str = "auto",
    max_shown: int = 50,
    progress: bool = True,
) -> tuple[dict[str, Any], list[Path]]:
    """Check the dataset at ``root``; returns the result and the written files."""
    ds = load_dataset(root, layout)
    require_images(ds, "reidkit data check")
    dev = pick_device(device)
    embed = None
    if features:
        embed = run_embedder(model, dev) if model else imagenet_embedder(*feature_size, dev)
    result = check_dataset(ds, options, embed, progress=progress)
    if features:
        h, w = feature_size
        result["features"] = str(model) if model else f"imagenet mobilenet_v2 {h}x{w}"
    paths = write_check(result, out or default_out(root), ds.source.read, max_shown)
    return result, list(paths)
