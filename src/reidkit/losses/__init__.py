"""Re-identification losses and ``build_loss(cfg, num_classes) -> ReidLoss``."""

from reidkit.losses.functional import (
    batch_hard_triplet,
    cross_entropy_label_smoothing,
    hard_example_mining,
    pairwise_distance,
)
from reidkit.losses.reid_loss import ReidLoss, build_loss

__all__ = [
    "ReidLoss",
    "batch_hard_triplet",
    "build_loss",
    "cross_entropy_label_smoothing",
    "hard_example_mining",
    "pairwise_distance",
]
