"""``ReidLoss``: the weighted sum of the configured terms, each returned for logging."""

from __future__ import annotations

import torch
from torch import nn

from reidkit.config import Config
from reidkit.losses.functional import (
    DISTANCES,
    Margin,
    batch_hard_triplet,
    cross_entropy_label_smoothing,
)
from reidkit.utils.errors import ConfigError


class ReidLoss(nn.Module):
    """``total = ce_weight * CE-LS(logits) + triplet_weight * batch-hard triplet(embedding)``.

    ``loss(outputs, pids) -> (total, terms)``; ``terms`` holds each active term already
    weighted (so the terms sum to ``total``). A list of logits (part-based heads) averages the
    cross-entropy over the parts.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ce_weight: float = 1.0,
        label_smoothing: float = 0.1,
        triplet_margin: Margin | None = 0.0,
        triplet_weight: float = 1.0,
        triplet_distance: str = "euclidean",
    ) -> None:
        super().__init__()
        if triplet_distance not in DISTANCES:
            raise ConfigError(
                f"triplet distance = {triplet_distance!r}: expected one of {', '.join(DISTANCES)}"
            )
        self.num_classes = num_classes
        self.ce_weight = ce_weight
        self.label_smoothing = label_smoothing
        self.use_triplet = triplet_margin == "soft_margin" or bool(triplet_margin)
        self.triplet_margin = triplet_margin
        self.triplet_weight = triplet_weight
        self.triplet_distance = triplet_distance
        if ce_weight <= 0 and not self.use_triplet:
            raise ConfigError(
                "tri_loss_lambda_cls: 0 with tri_loss_margin 0 leaves no loss to train"
            )

    def forward(
        self, outputs: dict[str, torch.Tensor], pids: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its weighted terms."""
        terms: dict[str, torch.Tensor] = {}
        if self.ce_weight > 0:
            logits = outputs["logits"]
            parts = logits if isinstance(logits, (list, tuple)) else [logits]
            ce = sum(cross_entropy_label_smoothing(x, pids, self.label_smoothing) for x in parts)
            terms["ce"] = self.ce_weight * ce / len(parts)
        if self.use_triplet:
            assert self.triplet_margin is not None
            tri = batch_hard_triplet(
                outputs["embedding"], pids, self.triplet_margin, self.triplet_distance
            )
            terms["triplet"] = self.triplet_weight * tri
        total = torch.stack(list(terms.values())).sum()
        return total, terms


def build_loss(cfg: Config, num_classes: int) -> ReidLoss:
    """Map ``tri_loss_lambda_cls``, ``label_smoothing`` and ``tri_loss_margin`` to a ReidLoss."""
    return ReidLoss(
        num_classes,
        ce_weight=cfg.tri_loss_lambda_cls,
        label_smoothing=cfg.label_smoothing,
        triplet_margin=cfg.tri_loss_margin if cfg.use_triplet else None,
    )
