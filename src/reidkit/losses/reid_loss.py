"""``ReidLoss``: the weighted sum of the configured terms, each returned for logging.

Terms (each only when its weight is > 0): ``ce`` (cross-entropy with label smoothing on the
logits, averaged over parts), ``triplet`` (batch-hard or AGW weighted on the pre-neck
feature), ``center`` (center loss) and ``circle`` (pair-wise circle loss).

The center loss has learnable centres. Like BoT, they are meant to be stepped by their own
SGD optimiser: ``extra_parameters()`` with ``extra_lr`` (``make_extra_optimizer()`` builds it);
their gradient is that of the unweighted center loss, so ``center_loss_weight`` does not change
how fast the centres move.
"""

from __future__ import annotations

import torch
from torch import nn

from reidkit.config import Config
from reidkit.losses.functional import (
    Margin,
    batch_hard_triplet,
    center_loss,
    check_margin,
    cross_entropy_label_smoothing,
    pairwise_circle_loss,
    weighted_regularization_triplet,
)
from reidkit.utils.choices import DISTANCES
from reidkit.utils.errors import ConfigError

TRIPLET_TYPES = ("batch_hard", "weighted")


class ReidLoss(nn.Module):
    """``loss(outputs, pids) -> (total, terms)``; ``terms`` are already weighted and sum to
    ``total``."""

    def __init__(
        self,
        num_classes: int,
        *,
        ce_weight: float = 1.0,
        label_smoothing: float = 0.1,
        triplet_margin: Margin | None = None,
        triplet_weight: float = 1.0,
        triplet_distance: str = "euclidean",
        triplet_type: str = "batch_hard",
        center_weight: float = 0.0,
        feat_dim: int = 0,
        center_lr: float = 0.5,
        circle_weight: float = 0.0,
        circle_scale: float = 64.0,
        circle_margin: float = 0.25,
    ) -> None:
        super().__init__()
        if triplet_distance not in DISTANCES:
            raise ConfigError(
                f"tri_loss_distance = {triplet_distance!r}: expected one of {', '.join(DISTANCES)}"
            )
        if triplet_type not in TRIPLET_TYPES:
            raise ConfigError(
                f"tri_loss_type = {triplet_type!r}: expected one of {', '.join(TRIPLET_TYPES)}"
            )
        self.use_triplet = triplet_margin == "soft_margin" or bool(triplet_margin)
        if self.use_triplet:
            check_margin(triplet_margin)  # type: ignore[arg-type]
        if ce_weight <= 0 and not self.use_triplet and circle_weight <= 0:
            raise ConfigError(
                "tri_loss_lambda_cls: 0 with tri_loss_margin 0 leaves no loss to train"
            )
        if center_weight > 0 and feat_dim <= 0:
            raise ConfigError("center_loss_weight > 0 needs the model's feature_dim (feat_dim > 0)")
        self.num_classes = num_classes
        self.ce_weight, self.label_smoothing = ce_weight, label_smoothing
        self.triplet_margin, self.triplet_weight = triplet_margin, triplet_weight
        self.triplet_distance, self.triplet_type = triplet_distance, triplet_type
        self.center_weight, self.extra_lr = center_weight, center_lr
        self.circle_weight, self.circle_scale, self.circle_margin = (
            circle_weight,
            circle_scale,
            circle_margin,
        )
        self.centers = (
            nn.Parameter(torch.randn(num_classes, feat_dim)) if center_weight > 0 else None
        )

    def extra_parameters(self) -> list[nn.Parameter]:
        """Parameters the loss itself learns (center-loss centres), for their own optimiser."""
        return [self.centers] if self.centers is not None else []

    def make_extra_optimizer(self) -> torch.optim.Optimizer | None:
        """SGD over ``extra_parameters()`` at ``extra_lr`` (None when there are none)."""
        params = self.extra_parameters()
        if not params:
            return None
        try:
            return torch.optim.SGD(params, lr=self.extra_lr, fused=True)
        except (RuntimeError, ValueError):  # no fused kernel for this device
            return torch.optim.SGD(params, lr=self.extra_lr)

    def forward(
        self, outputs: dict[str, torch.Tensor], pids: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its weighted terms."""
        terms: dict[str, torch.Tensor] = {}
        feature = outputs["feature"]
        if self.ce_weight > 0:
            logits = outputs["logits"]
            parts = logits if isinstance(logits, (list, tuple)) else [logits]
            ce = sum(cross_entropy_label_smoothing(x, pids, self.label_smoothing) for x in parts)
            terms["ce"] = self.ce_weight * ce / len(parts)
        if self.use_triplet:
            fn = (
                batch_hard_triplet
                if self.triplet_type == "batch_hard"
                else (weighted_regularization_triplet)
            )
            tri = fn(feature, pids, self.triplet_margin, self.triplet_distance)  # type: ignore[arg-type]
            terms["triplet"] = self.triplet_weight * tri
        if self.centers is not None:
            # value of the centres, gradient of the unweighted loss (BoT's rescaling)
            w = self.center_weight
            centers = self.centers.detach() + (self.centers - self.centers.detach()) / w
            terms["center"] = w * center_loss(feature, pids, centers)
        if self.circle_weight > 0:
            circle = pairwise_circle_loss(feature, pids, self.circle_scale, self.circle_margin)
            terms["circle"] = self.circle_weight * circle
        total = torch.stack(list(terms.values())).sum()
        return total, terms


def build_loss(cfg: Config, num_classes: int, feat_dim: int = 0) -> ReidLoss:
    """Map the loss keys of ``cfg`` to a ``ReidLoss``.

    ``feat_dim`` is the model's ``feature_dim`` (the width of its ``"feature"`` output); it
    sizes the center-loss centres and is required when ``center_loss_weight`` > 0.
    """
    return ReidLoss(
        num_classes,
        ce_weight=cfg.tri_loss_lambda_cls,
        label_smoothing=cfg.label_smoothing,
        triplet_margin=cfg.tri_loss_margin if cfg.use_triplet else None,
        triplet_distance=cfg.tri_loss_distance,
        triplet_type=cfg.tri_loss_type,
        center_weight=cfg.center_loss_weight,
        feat_dim=feat_dim,
        center_lr=cfg.center_lr,
        circle_weight=cfg.circle_loss_weight,
        circle_scale=cfg.circle_loss_scale,
        circle_margin=cfg.circle_loss_margin,
    )
