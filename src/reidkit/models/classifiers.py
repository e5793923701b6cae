"""Identity classifiers: softmax (linear), AM-softmax / CosFace, ArcFace, CircleSoftmax.

Margin classifiers compare L2-normalised features with L2-normalised class weights
(cosine similarity) and need the labels in training to apply the margin to the true class;
without labels (or in eval mode) they return ``scale * cos``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reidkit.utils.errors import ConfigError

CLASSIFIERS = ("softmax", "am_softmax", "cosface", "arcface", "circle")


class LinearClassifier(nn.Module):
    """Softmax classifier: a linear layer (std 0.001 init, as in BoT), bias-free unless
    ``bias`` (torchreid's classifiers have one)."""

    def __init__(self, in_dim: int, num_classes: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        nn.init.normal_(self.weight, std=0.001)
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)``; ``labels`` are unused."""
        return F.linear(x, self.weight, self.bias)


class CosineClassifier(nn.Module):
    """Base of the margin classifiers: ``cos`` between features and class weights."""

    def __init__(self, in_dim: int, num_classes: int, scale: float, margin: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale, self.margin = float(scale), float(margin)

    def cosine(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` cosine similarities, in float32."""
        return F.linear(F.normalize(x.float(), dim=1), F.normalize(self.weight.float(), dim=1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``scale * cos`` with the margin on the true class in training (labels required);
        ``scale * cos`` in eval mode."""
        cos = self.cosine(x)
        if not self.training:
            return self.scale * cos
        if labels is None:
            raise ValueError(
                f"{type(self).__name__} needs the labels in training mode: call "
                "model(images, labels)"
            )
        one_hot = F.one_hot(labels.long(), cos.size(1)).to(cos.dtype)
        return self.margin_logits(cos, one_hot)

    def margin_logits(self, cos: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """Scaled logits with the margin applied (overridden by each kind)."""
        return self.scale * cos


class AMSoftmax(CosineClassifier):
    """AM-softmax / CosFace: ``s * (cos - m)`` for the true class, ``s * cos`` otherwise."""

    def margin_logits(self, cos: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """Additive cosine margin."""
        return self.scale * (cos - self.margin * one_hot)


class ArcFace(CosineClassifier):
    """ArcFace: ``s * cos(theta + m)`` for the true class.

    Where ``theta + m`` would pass pi the target logit continues as ``cos - m * sin(m)``
    (keeps it monotonic in theta, as in the ArcFace paper's implementation).
    """

    def margin_logits(self, cos: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """Additive angular margin on the true class."""
        m = self.margin
        sin = (1.0 - cos * cos).clamp(min=1e-7).sqrt()
        phi = cos * math.cos(m) - sin * math.sin(m)
        phi = torch.where(cos > math.cos(math.pi - m), phi, cos - m * math.sin(m))
        return self.scale * torch.where(one_hot.bool(), phi, cos)


class CircleSoftmax(CosineClassifier):
    """Circle loss in classification form (Sun et al. 2020): self-paced weights
    ``alpha_p = relu(1 + m - cos)``, ``alpha_n = relu(cos + m)``, optima ``1 - m`` and ``m``."""

    def margin_logits(self, cos: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """Circle logits for positives (true class) and negatives."""
        m = self.margin
        alpha_p = (1.0 + m - cos.detach()).clamp(min=0)
        alpha_n = (cos.detach() + m).clamp(min=0)
        s_p = self.scale * alpha_p * (cos - (1.0 - m))
        s_n = self.scale * alpha_n * (cos - m)
        return one_hot * s_p + (1.0 - one_hot) * s_n


def build_classifier(
    kind: str,
    in_dim: int,
    num_classes: int,
    scale: float = 30.0,
    margin: float = 0.35,
    bias: bool = False,
) -> nn.Module:
    """A classifier by name (see ``CLASSIFIERS``); cosface is an alias of am_softmax.
    ``bias`` (softmax only) adds a bias to the linear layer."""
    if kind == "softmax":
        return LinearClassifier(in_dim, num_classes, bias)
    if bias:
        raise ConfigError(
            f"model_params.classifier_bias = true needs classifier 'softmax' ({kind!r} compares "
            "cosines and has no bias)"
        )
    cls = {"am_softmax": AMSoftmax, "cosface": AMSoftmax, "arcface": ArcFace}.get(
        kind, CircleSoftmax
    )
    return cls(in_dim, num_classes, scale, margin)
