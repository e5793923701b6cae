"""``ReidModel``: backbone -> pooling -> neck -> classifier, per docs/architecture.md.

Training: ``model(images, labels) -> {"embedding", "logits", "neck"}`` where ``embedding`` is the
pooled pre-neck feature (for the triplet loss) and ``neck`` the post-neck feature. Eval:
``model(images) -> (B, embedding_dim)``, the post-neck feature used for retrieval.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Union

import torch
from torch import nn

from reidkit.models.backbones import Backbone, build_backbone
from reidkit.models.heads import GlobalPool, Neck, build_classifier
from reidkit.utils.errors import ConfigError


class ReidModel(nn.Module):
    """A re-identification network built from named parts (see the module docstring)."""

    def __init__(
        self,
        backbone: Union[str, Backbone],
        num_classes: int,
        *,
        last_stride: int = 1,
        pooling: str = "avg",
        neck: str = "bnneck",
        embedding_dim: int = 0,
        classifier: str = "softmax",
        scale: float = 30.0,
        margin: float = 0.35,
        num_parts: int = 0,
        pretrained: Union[bool, str, Path] = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes = {num_classes}: a classifier needs at least 1 class")
        if num_parts:
            raise ConfigError(
                f"model_params.num_parts = {num_parts}: part-based heads need the PCB model; "
                "use num_parts 0"
            )
        if isinstance(backbone, str):
            backbone = build_backbone(backbone, last_stride, pretrained)
        self.backbone = backbone
        self.pool = GlobalPool(pooling)
        self.neck = Neck(neck, backbone.out_channels, embedding_dim)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = build_classifier(
            classifier, self.neck.out_dim, num_classes, scale, margin
        )
        self.num_classes = num_classes
        self.feature_dim = backbone.out_channels
        self.embedding_dim = self.neck.out_dim
        self._eval_locked: set[str] = set()

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor] | torch.Tensor:
        """The outputs dict in training mode, the retrieval embedding in eval mode."""
        feature = self.pool(self.backbone.forward_features(images))
        neck = self.neck(feature)
        if not self.training:
            return neck
        logits = self.classifier(self.dropout(neck), labels)
        return {"embedding": feature, "logits": logits, "neck": neck}

    # ------------------------------------------------------------------ parameter groups
    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained with ``lr.base_lr``."""
        return self.backbone.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained with ``lr.fc_lr``: pooling, neck and classifier."""
        for name, p in self.named_parameters():
            if not name.startswith("backbone."):
                yield p

    # ------------------------------------------------------------------ frozen parts
    def lock_eval(self, name: str, locked: bool = True) -> None:
        """Keep submodule ``name`` in eval mode (frozen BatchNorm statistics) while training."""
        self.get_submodule(name)  # raises AttributeError for a wrong name
        if locked:
            self._eval_locked.add(name)
        else:
            self._eval_locked.discard(name)
        self.train(self.training)

    def train(self, mode: bool = True) -> ReidModel:
        """Like ``nn.Module.train`` but locked submodules stay in eval mode."""
        super().train(mode)
        for name in self._eval_locked:
            self.get_submodule(name).eval()
        return self
