"""Loss functions on tensors: cross-entropy with label smoothing and batch-hard triplet."""

from __future__ import annotations

from typing import Literal, Union

import torch
import torch.nn.functional as F

from reidkit.utils.errors import ConfigError

Margin = Union[float, Literal["soft_margin"]]
DISTANCES = ("euclidean", "cosine")


def cross_entropy_label_smoothing(
    logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """Mean cross-entropy against ``(1 - eps) * one_hot + eps / C`` targets (Szegedy et al.).

    Computed in float32 whatever the logits' dtype (safe under autocast).
    """
    if not 0 <= epsilon < 1:
        raise ConfigError(f"label_smoothing = {epsilon!r}: expected 0 <= value < 1")
    return F.cross_entropy(logits.float(), targets.long(), label_smoothing=epsilon)


def pairwise_distance(x: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """``(N, D) -> (N, N)`` euclidean distances, or cosine distances ``1 - cos``."""
    x = x.float()
    if distance == "cosine":
        x = F.normalize(x, dim=1)
        return 1.0 - x @ x.t()
    if distance != "euclidean":
        raise ConfigError(
            f"triplet distance = {distance!r}: expected one of {', '.join(DISTANCES)}"
        )
    sq = (x * x).sum(dim=1, keepdim=True)
    d2 = (sq + sq.t() - 2.0 * (x @ x.t())).clamp(min=1e-12)
    return d2.sqrt()


def hard_example_mining(
    dist: torch.Tensor, pids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each anchor: hardest positive distance, hardest negative distance, validity mask.

    Positives exclude the anchor itself; an anchor is valid when it has at least one other
    image of its identity and at least one image of another identity in the batch.
    """
    n = dist.size(0)
    same = pids.view(n, 1) == pids.view(1, n)
    eye = torch.eye(n, dtype=torch.bool, device=dist.device)
    pos = same & ~eye
    neg = ~same
    dist_ap = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    dist_an = dist.masked_fill(~neg, float("inf")).amin(dim=1)
    valid = pos.any(dim=1) & neg.any(dim=1)
    return dist_ap, dist_an, valid


def batch_hard_triplet(
    embeddings: torch.Tensor,
    pids: torch.Tensor,
    margin: Margin = 0.3,
    distance: str = "euclidean",
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017), mean over valid anchors.

    ``margin`` > 0 gives ``relu(d_ap - d_an + margin)``; ``"soft_margin"`` gives
    ``softplus(d_ap - d_an)``. A batch without any valid anchor yields 0 (still differentiable).
    """
    if margin != "soft_margin" and (isinstance(margin, str) or margin < 0):
        raise ConfigError(f"tri_loss_margin = {margin!r}: expected a number >= 0 or 'soft_margin'")
    dist = pairwise_distance(embeddings, distance)
    dist_ap, dist_an, valid = hard_example_mining(dist, pids)
    if not bool(valid.any()):
        return embeddings.float().sum() * 0.0
    diff = dist_ap[valid] - dist_an[valid]
    if margin == "soft_margin":
        return F.softplus(diff).mean()
    return F.relu(diff + float(margin)).mean()
