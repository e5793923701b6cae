"""Building a ``ReidModel`` from a ``Config``, fine-tuning, freezing and snapshot loading."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from reidkit.config import Config
from reidkit.models.backbones import LoadReport, read_state_dict
from reidkit.models.reid_model import ReidModel
from reidkit.utils.errors import CheckpointError, ConfigError
from reidkit.utils.logging import get_logger


def build_model(cfg: Config, num_classes: int) -> ReidModel:
    """Map ``cfg.model_params`` and ``cfg.imagenet_pretrain`` to a ``ReidModel``."""
    mp = cfg.model_params
    model = ReidModel(
        mp.backbone,
        num_classes,
        last_stride=mp.last_stride,
        pooling=mp.pooling,
        neck=mp.neck,
        embedding_dim=mp.embedding_dim,
        classifier=mp.classifier,
        scale=mp.scale,
        margin=mp.margin,
        num_parts=mp.num_parts,
        pretrained=cfg.imagenet_pretrain,
        dropout=mp.dropout,
        global_branch=mp.global_branch,
        stem_pool=mp.stem_pool,
        non_local=mp.non_local,
        non_local_inter=mp.non_local_inter,
        neck_bias=mp.neck_bias,
        neck_relu=mp.neck_relu,
        classifier_bias=mp.classifier_bias,
        temporal=cfg.video.temporal,
    )
    check_layer_names(model, mp.freeze_layers)
    return model


def _freeze_module(model: ReidModel, name: str, frozen: bool) -> None:
    for p in model.get_submodule(name).parameters():
        p.requires_grad_(not frozen)
    model.lock_eval(name, frozen)


def apply_fine_tune(model: ReidModel) -> int:
    """Freeze everything but ``model.classifier`` (BatchNorm statistics too).

    Returns the number of parameters left trainable.
    """
    for name, child in model.named_children():
        if child is not model.classifier and any(True for _ in child.parameters()):
            _freeze_module(model, name, True)
    for p in model.classifier.parameters():
        p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_layer_names(model: ReidModel, layers: list[str]) -> None:
    """Raise a ``ConfigError`` for a ``freeze_layers`` name the backbone does not have."""
    stages = model.backbone.stages()
    for layer in layers:
        if layer != "backbone" and layer not in stages:
            raise ConfigError(
                f"model_params.freeze_layers: {layer!r} is not a part of this backbone "
                f"(valid: backbone, {', '.join(stages)})"
            )


def set_frozen(model: ReidModel, layers: list[str], frozen: bool) -> None:
    """Freeze (or unfreeze) named backbone stages, e.g. ``["stem", "layer1"]``.

    ``"backbone"`` means the whole backbone. Frozen stages keep their BatchNorm statistics.
    Unfreezing restores ``requires_grad`` for every parameter of the stage except the BNNeck
    bias, which lives in the head and is never touched here.
    """
    check_layer_names(model, layers)
    for layer in layers:
        _freeze_module(model, "backbone" if layer == "backbone" else f"backbone.{layer}", frozen)


def load_pretrain_snapshot(model: nn.Module, path: str | Path) -> LoadReport:
    """Start from a reidkit checkpoint (its ``"model"`` state dict), skipping a classifier of
    another size; any other mismatch is a ``CheckpointError``. Returns what was loaded/skipped.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    report = LoadReport(source=f"pretrain_snapshot {path}")
    usable: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            if key.startswith("classifier."):
                report.skipped.append(f"{key} {tuple(value.shape)}->{tuple(own[key].shape)}")
                continue
            raise CheckpointError(
                f"{path}: tensor {key} has shape {tuple(value.shape)} but the model expects "
                f"{tuple(own[key].shape)}; was the snapshot trained with another backbone?"
            )
        else:
            usable[key] = value
    report.missing = [k for k in own if k not in usable and not k.startswith("classifier.")]
    if report.missing or report.unexpected:
        first = (report.missing or report.unexpected)[0]
        raise CheckpointError(
            f"{path}: snapshot does not fit the model ({len(report.missing)} missing, "
            f"{len(report.unexpected)} unexpected tensors, e.g. {first}); check model_params"
        )
    model.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    get_logger().info(report.summary())
    return report
