"""Helpers of the adaptation tests: the night camera, params, writing params files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def night_camera(folder: Path) -> None:
    """Re-save every JPEG under ``folder`` as a dim, low-contrast, blue-tinted night camera."""
    tint = np.array([0.8, 0.9, 1.3], dtype=np.float32)
    for path in sorted(folder.rglob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        night = 0.05 + 0.3 * rgb**1.3 * tint
        Image.fromarray((np.clip(night, 0, 1) * 255).astype(np.uint8)).save(path, quality=90)


def base_params(data: Path, work: Path, **over) -> dict:
    """Params of the source training (and, with an ``adapt`` section, of adaptation)."""
    params = {
        "batches_dir": str(data),
        "working_dir": str(work),
        "img_h": 64,
        "img_w": 32,
        "batch_size": 16,
        "epoch": 5,
        "optimizer": "adam",
        "lr": {"base_lr": 0.001, "decay_step": [100], "decay_unit": "epoch"},
        "model_params": {"backbone": "resnet18", "last_stride": 1},
        "data_augmentation": {"mirror": True, "padding": 4},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {"type": "market_evaluate", "period": 100},
        "data": {"cache": "ram", "num_workers": 0},
        "progress": False,
        "device": "cpu",
    }
    params.update(over)
    return params


def write_json(path: Path, params: dict) -> Path:
    """Write ``params`` as a JSON params file."""
    path.write_text(json.dumps(params), encoding="utf-8")
    return path
