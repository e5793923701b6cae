"""Re-identification losses and ``build_loss(cfg, num_classes, feat_dim) -> ReidLoss``."""

from reidkit.losses.functional import (
    batch_hard_triplet,
    center_loss,
    cross_entropy_label_smoothing,
    hard_example_mining,
    pairwise_circle_loss,
    pairwise_distance,
    weighted_regularization_triplet,
)
from reidkit.losses.reid_loss import ReidLoss, build_loss

__all__ = [
    "ReidLoss",
    "batch_hard_triplet",
    "build_loss",
    "center_loss",
    "cross_entropy_label_smoothing",
    "hard_example_mining",
    "pairwise_circle_loss",
    "pairwise_distance",
    "weighted_regularization_triplet",
]
