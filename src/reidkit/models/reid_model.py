"""``ReidModel``: backbone -> pooling -> neck -> classifier, per docs/architecture.md.

Training: ``model(images, labels) -> {"feature", "embedding", "logits"}`` where ``feature`` is
the pre-neck feature (``feature_dim`` wide; the metric losses use it), ``embedding`` the
post-neck feature (``embedding_dim`` wide: what eval mode returns) and ``logits`` a tensor, or a
list (one per part / branch) for multi-branch heads. Eval: ``model(images) -> (B, D)``, the
post-neck embedding used for retrieval (branches concatenated).

Clips: a 5-D input ``(B, T, C, H, W)`` is a batch of ``B`` clips of ``T`` frames. Every frame
goes through the backbone; the global branch pools each frame and ``temporal``
(``TemporalPool``: avg | attention) aggregates the ``T`` frame features into one before the
neck, so every output has ``B`` rows. The part branch (PCB) stripes the frames' feature maps
averaged with the same temporal weights (for average pooling that equals aggregating the
per-frame stripes). A 4-D input is a batch of images, exactly as before.

Branches: the global branch (pool -> neck -> classifier) and, with ``num_parts > 0``, the PCB
part branch (``PartHead``, one classifier per stripe). With parts the global branch is kept only
when ``global_branch`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Union

import torch
from torch import nn

from reidkit.models.backbones import Backbone, build_backbone
from reidkit.models.backbones.non_local import add_non_local, set_stem_pool
from reidkit.models.classifiers import CLASSIFIERS, build_classifier
from reidkit.models.heads import Neck, PartHead, Pool, check_choice
from reidkit.models.temporal import TemporalPool
from reidkit.utils.errors import ConfigError

Outputs = dict[str, Union[torch.Tensor, list[torch.Tensor]]]


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
        global_branch: bool = False,
        stem_pool: str = "padded",
        non_local: Sequence[int] = (),
        non_local_inter: int = 0,
        neck_bias: bool = False,
        neck_relu: bool = False,
        classifier_bias: bool = False,
        temporal: str = "avg",
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes = {num_classes}: a classifier needs at least 1 class")
        check_choice("classifier", classifier, CLASSIFIERS)
        if isinstance(backbone, str):
            backbone = build_backbone(backbone, last_stride, pretrained)
        set_stem_pool(backbone, stem_pool)
        add_non_local(backbone, list(non_local), non_local_inter)
        self.backbone = backbone
        channels = backbone.out_channels
        self.use_global = num_parts == 0 or global_branch
        self.pool = Pool(pooling) if self.use_global else None
        self.neck = (
            Neck(neck, channels, embedding_dim, bias=neck_bias, relu=neck_relu)
            if self.use_global
            else None
        )
        self.parts = (
            PartHead(channels, num_parts, embedding_dim or 256, pooling, neck)
            if num_parts
            else None
        )
        self.temporal = TemporalPool(temporal, channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        in_dims = [self.neck.out_dim] if self.neck is not None else []
        if self.parts is not None:
            in_dims += [self.parts.part_dim] * num_parts
        heads = [
            build_classifier(classifier, d, num_classes, scale, margin, classifier_bias)
            for d in in_dims
        ]
        self.classifier: nn.Module = heads[0] if len(heads) == 1 else nn.ModuleList(heads)
        self.num_classes = num_classes
        self.embedding_dim = sum(in_dims)
        self.feature_dim = (channels if self.use_global else 0) + sum(in_dims[self.use_global :])
        self._eval_locked: set[str] = set()

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> Outputs | torch.Tensor:
        """The outputs dict in training mode, the retrieval embedding in eval mode; ``images``
        is a batch of images ``(B, C, H, W)`` or of clips ``(B, T, C, H, W)``."""
        clip = images.shape[:2] if images.dim() == 5 else None
        fmap = self.backbone.forward_features(images.flatten(0, 1) if clip else images)
        pre: list[torch.Tensor] = []
        post: list[torch.Tensor] = []  # one (B, d) tensor per classifier
        if self.pool is not None and self.neck is not None:
            feature = self.pool(fmap)
            if clip is not None:
                feature = self.temporal(feature.unflatten(0, clip))
            pre.append(feature)
            post.append(self.neck(feature))
        if clip is not None and self.parts is not None:
            fmap = self._aggregate_maps(fmap.unflatten(0, clip))
        if self.parts is not None:
            part_pre, part_post = self.parts(fmap)
            pre.append(part_pre.flatten(1))
            post.extend(part_post.unbind(1))
        neck = post[0] if len(post) == 1 else torch.cat(post, 1)
        if not self.training:
            return neck
        logits = [head(self.dropout(f), labels) for head, f in zip(self.heads(), post, strict=True)]
        return {
            "feature": pre[0] if len(pre) == 1 else torch.cat(pre, 1),
            "embedding": neck,
            "logits": logits[0] if len(logits) == 1 else logits,
        }

    def _aggregate_maps(self, fmaps: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, h, w)`` frame feature maps -> ``(B, C, h, w)`` with the temporal weights
        of the frames' average-pooled features."""
        weights = self.temporal.weights(fmaps.mean((3, 4)))
        return (weights[:, :, None, None, None] * fmaps).sum(1)

    def heads(self) -> list[nn.Module]:
        """The classifiers, one per branch / part, in the order of the embedding's chunks."""
        if isinstance(self.classifier, nn.ModuleList):
            return list(self.classifier)
        return [self.classifier]

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, num_classes)`` from an eval-mode embedding: each branch's chunk
        through its classifier, averaged over branches (margin classifiers give
        ``scale * cos``). Call it with the model in eval mode."""
        dims = [self.neck.out_dim] if self.neck is not None else []
        if self.parts is not None:
            dims += [self.parts.part_dim] * self.parts.num_parts
        chunks = torch.split(embedding, dims, dim=1)
        logits = [head(x).float() for head, x in zip(self.heads(), chunks, strict=True)]
        return torch.stack(logits).mean(0)

    # ------------------------------------------------------------------ parameter groups
    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained with ``lr.base_lr``."""
        return self.backbone.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained with ``lr.fc_lr``: pooling, necks, part head and classifiers."""
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
