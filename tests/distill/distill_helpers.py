"""Helpers of the distillation tests: teacher / student params, files, untrained teachers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SIZE = {"img_h": 32, "img_w": 16}


def _common(data: Path, work: Path) -> dict:
    return {
        "batches_dir": str(data),
        "working_dir": str(work),
        **SIZE,
        "batch_size": 16,
        "epoch": 1,
        "optimizer": "adam",
        "lr": {"base_lr": 0.001, "decay_step": [100], "decay_unit": "epoch"},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {"type": "market_evaluate"},
        "data": {"cache": "ram", "num_workers": 0},
        "progress": False,
        "device": "cpu",
    }


def teacher_params(data: Path, work: Path) -> dict:
    """A ResNet-18 teacher, one epoch."""
    params = _common(data, work)
    params.update(
        sub_working_dir="teacher",
        model_params={"backbone": "resnet18"},
        data_augmentation={"mirror": True, "padding": 2},
    )
    return params


def student_params(data: Path, work: Path, teacher: Path, **over) -> dict:
    """An OSNet-x0.25 student of ``teacher`` (``**over`` replaces top-level keys)."""
    params = _common(data, work)
    params.update(
        model_params={"backbone": "osnet_x0_25"},
        data_augmentation={"mirror": True, "padding": 0},
        distill={"teacher": str(teacher)},
    )
    params.update(over)
    return params


def write_json(path: Path, params: dict) -> Path:
    """Write ``params`` as a JSON params file."""
    path.write_text(json.dumps(params), encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def untrained_teacher(
    run: Path, params: dict, num_classes: int, backbone: str = "resnet18", seed: int = 0
) -> Path:
    """A run folder holding an untrained model (initialised from ``seed``) with ``params``'
    config (image size, normalisation, dataset ...)."""
    import torch

    from reidkit.config import save_config, validate_config
    from reidkit.models import build_model
    from reidkit.models.checkpoint import save_checkpoint

    params = {**params, "model_params": {"backbone": backbone}}
    params.pop("distill", None)
    cfg = validate_config(params)
    torch.manual_seed(seed)
    model = build_model(cfg, num_classes).eval()
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.json")
    state = {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": num_classes}
    save_checkpoint({**state, "epoch": 0}, run / "best.pth")
    return run
