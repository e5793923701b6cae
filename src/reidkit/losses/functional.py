"""Loss functions on tensors: cross-entropy with label smoothing and batch-hard triplet.

None of them reads a value back from the device: anchors without a positive or a negative in
the batch are weighted out (``masked_mean``) instead of being selected with a boolean index
or skipped by a Python ``if``, so every shape is static and the training step never waits
for the GPU (``tests/engine/test_step_sync.py`` counts such reads).
"""

from __future__ import annotations

from typing import Literal, Union

import torch
import torch.nn.functional as F

from reidkit.utils.choices import DISTANCES
from reidkit.utils.errors import ConfigError

Margin = Union[float, Literal["soft_margin"]]


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


def check_margin(margin: Margin) -> None:
    """A triplet margin must be a number >= 0 or 'soft_margin'."""
    if margin != "soft_margin" and (
        isinstance(margin, (str, bool)) or not isinstance(margin, (int, float)) or margin < 0
    ):
        raise ConfigError(f"tri_loss_margin = {margin!r}: expected a number >= 0 or 'soft_margin'")


def _pair_masks(
    pids: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(N, N)`` positive mask (same identity, not the anchor itself), negative mask and the
    ``(N,)`` mask of anchors having at least one of each."""
    pids = pids.to(device)
    n = pids.numel()
    same = pids.view(n, 1) == pids.view(1, n)
    pos = same & ~torch.eye(n, dtype=torch.bool, device=device)
    neg = ~same
    return pos, neg, pos.any(dim=1) & neg.any(dim=1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` holds, 0 (still differentiable) where it never does.

    Computed on the device without a data-dependent shape or branch.
    """
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def _rows_or_all(mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``mask`` for valid anchors, all-true rows for the others (their softmax / logsumexp stay
    finite; ``masked_mean`` then gives them weight 0)."""
    return mask | ~valid[:, None]


def hard_example_mining(
    dist: torch.Tensor, pids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each anchor: hardest positive distance, hardest negative distance, validity mask.

    Positives exclude the anchor itself; an anchor is valid when it has at least one other
    image of its identity and at least one image of another identity in the batch.
    """
    pos, neg, valid = _pair_masks(pids, dist.device)
    dist_ap = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    dist_an = dist.masked_fill(~neg, float("inf")).amin(dim=1)
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
    check_margin(margin)
    dist = pairwise_distance(embeddings, distance)
    dist_ap, dist_an, valid = hard_example_mining(dist, pids)
    diff = torch.where(valid, dist_ap - dist_an, 0.0)
    per_anchor = F.softplus(diff) if margin == "soft_margin" else F.relu(diff + float(margin))
    return masked_mean(per_anchor, valid)


def weighted_regularization_triplet(
    embeddings: torch.Tensor,
    pids: torch.Tensor,
    margin: Margin = "soft_margin",
    distance: str = "euclidean",
) -> torch.Tensor:
    """AGW's weighted-regularisation triplet (Ye et al. 2021): instead of the hardest pair, a
    softmax over each anchor's positive distances (and over its negated negative distances)
    weights them, so harder pairs count more without a hard choice. Soft margin by default;
    a number gives ``relu(d_ap - d_an + margin)``. Mean over valid anchors.
    """
    check_margin(margin)
    dist = pairwise_distance(embeddings, distance)
    pos, neg, valid = _pair_masks(pids, dist.device)
    pos, neg = _rows_or_all(pos, valid), _rows_or_all(neg, valid)
    w_ap = torch.softmax(dist.masked_fill(~pos, float("-inf")), dim=1)
    w_an = torch.softmax((-dist).masked_fill(~neg, float("-inf")), dim=1)
    diff = (w_ap * dist).sum(1) - (w_an * dist).sum(1)
    per_anchor = F.softplus(diff) if margin == "soft_margin" else F.relu(diff + float(margin))
    return masked_mean(per_anchor, valid)


def pairwise_circle_loss(
    embeddings: torch.Tensor, pids: torch.Tensor, scale: float = 64.0, margin: float = 0.25
) -> torch.Tensor:
    """Pair-wise circle loss (Sun et al. 2020) on cosine similarities within the batch.

    For each anchor: ``softplus(logsumexp_n(s*a_n*(s_n - m)) + logsumexp_p(-s*a_p*(s_p - 1 + m)))``
    with ``a_p = relu(1 + m - s_p)``, ``a_n = relu(s_n + m)`` (detached); mean over anchors that
    have a positive and a negative.
    """
    x = F.normalize(embeddings.float(), dim=1)
    pos, neg, valid = _pair_masks(pids, x.device)
    sim = x @ x.t()
    pos, neg = _rows_or_all(pos, valid), _rows_or_all(neg, valid)
    alpha_p = (1.0 + margin - sim.detach()).clamp(min=0)
    alpha_n = (sim.detach() + margin).clamp(min=0)
    logit_p = (-scale * alpha_p * (sim - (1.0 - margin))).masked_fill(~pos, float("-inf"))
    logit_n = (scale * alpha_n * (sim - margin)).masked_fill(~neg, float("-inf"))
    z = torch.logsumexp(logit_p, dim=1) + torch.logsumexp(logit_n, dim=1)
    return masked_mean(F.softplus(z), valid)


def center_loss(
    embeddings: torch.Tensor, pids: torch.Tensor, centers: torch.Tensor
) -> torch.Tensor:
    """Center loss (Wen et al. 2016): mean squared euclidean distance of each embedding to
    the centre of its identity (``centers`` is ``(num_classes, D)``)."""
    diff = embeddings.float() - centers.float()[pids.long()]
    return (diff * diff).sum(dim=1).mean()
