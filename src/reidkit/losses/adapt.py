"""Adaptation losses: a memory of cluster centroids and the ClusterNCE loss against it
(after Dai et al., "Cluster Contrast for Unsupervised Person Re-Identification", 2021).

Every pseudo-identity (cluster) has one L2-normalised centroid in ``ClusterMemory``. A target
image's normalised embedding ``f`` is scored against all centroids,
``softmax(f . c_k / temperature)``, and ``cluster_nce`` is the cross-entropy with its own
cluster: pulled to its centroid, pushed from all others. The centroids are not learnt by
gradient: after each step they move towards the batch, ``c <- normalise(m c + (1 - m) f)``
(``momentum`` m), with ``f`` the mean of the cluster's images in the batch or its hardest
one (least similar to the centroid). The memory is refilled from fresh cluster means at
every re-clustering.

``AdaptLoss`` adds, for batches that mix in labelled source images (pids >= SOURCE_OFFSET),
the configured supervised loss on those rows, weighted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reidkit.data.pseudo import SOURCE_OFFSET
from reidkit.utils.errors import ConfigError

MEMORY_UPDATES = ("mean", "hard")


def cluster_nce(
    feats: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean cross-entropy of normalised ``feats`` (B, D) over centroid similarities / T."""
    logits = feats.float() @ centroids.float().t() / temperature
    return F.cross_entropy(logits, labels.long())


class ClusterMemory(nn.Module):
    """One L2-normalised centroid per cluster, moved towards the batch by momentum.

    ``centroids`` is a non-persistent buffer (it follows ``.to(device)`` but is not part of
    ``state_dict``: its size changes with every clustering, so whoever re-clusters saves it).
    """

    def __init__(self, dim: int, momentum: float = 0.2, update: str = "hard") -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ConfigError(f"adapt.momentum = {momentum}: expected 0 <= momentum < 1")
        if update not in MEMORY_UPDATES:
            raise ConfigError(
                f"adapt.memory_update = {update!r}: expected one of {', '.join(MEMORY_UPDATES)}"
            )
        self.dim, self.momentum, self.mode = dim, momentum, update
        self.register_buffer("centroids", torch.zeros(0, dim), persistent=False)

    def reset(self, centroids: torch.Tensor, normalize: bool = True) -> None:
        """Replace the memory by new centroids (C, D), normalised here unless ``normalize``
        is False (a memory saved by ``centroids`` comes back bit for bit)."""
        if centroids.ndim != 2 or centroids.shape[1] != self.dim:
            raise ValueError(f"centroids must be (C, {self.dim}), got {tuple(centroids.shape)}")
        new = centroids.detach().float()
        new = F.normalize(new, dim=1) if normalize else new
        self.centroids = new.clone().to(self.centroids.device)

    @torch.no_grad()
    def update(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Move each cluster present in the batch towards its normalised ``feats``.

        A new tensor replaces the buffer (no in-place write), so a loss computed from the
        old centroids can still be differentiated.
        """
        feats, labels = F.normalize(feats.detach().float(), dim=1), labels.long()
        if self.mode == "hard":
            sims = (feats * self.centroids[labels]).sum(1)
            order = torch.argsort(labels.double() * 4.0 + sims.double())  # per cluster, by sim
            ids, counts = torch.unique_consecutive(labels[order], return_counts=True)
            first = torch.cumsum(counts, 0) - counts
            target = feats[order[first]]
        else:
            ids, inverse = torch.unique(labels, return_inverse=True)
            target = torch.zeros(ids.numel(), feats.shape[1], device=feats.device)
            target.index_add_(0, inverse, feats)
        new = self.centroids.clone()
        moved = self.momentum * new[ids] + (1.0 - self.momentum) * F.normalize(target, dim=1)
        new[ids] = F.normalize(moved, dim=1)
        self.centroids = new


def _rows(value: torch.Tensor | list | tuple, mask: torch.Tensor) -> torch.Tensor | list:
    """``value[mask]`` for a tensor or each tensor of a list (multi-part logits)."""
    if isinstance(value, (list, tuple)):
        return [v[mask] for v in value]
    return value[mask]


class AdaptLoss(nn.Module):
    """``loss(outputs, pids) -> (total, terms)``: ClusterNCE on the target rows (pids below
    ``SOURCE_OFFSET``, pseudo-identities) against ``memory``, which it then updates; plus
    ``source_weight`` x ``source_loss`` on source rows when given."""

    def __init__(
        self,
        memory: ClusterMemory,
        temperature: float = 0.05,
        source_loss: nn.Module | None = None,
        source_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"adapt.temperature = {temperature}: expected a number > 0")
        self.memory, self.temperature = memory, temperature
        self.source_loss = source_loss if source_weight > 0 else None
        self.source_weight = source_weight

    def make_extra_optimizer(self) -> torch.optim.Optimizer | None:
        """The source loss's own optimiser (center-loss centres), if it has one."""
        make = getattr(self.source_loss, "make_extra_optimizer", None)
        return make() if make is not None else None

    def forward(
        self, outputs: dict[str, torch.Tensor], pids: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its weighted terms (``cluster_nce``, ``source_<term>``)."""
        terms: dict[str, torch.Tensor] = {}
        if self.source_loss is None:
            target, labels = outputs["embedding"], pids
        else:
            is_target = pids < SOURCE_OFFSET
            target, labels = outputs["embedding"][is_target], pids[is_target]
            src = ~is_target
            sub = {k: _rows(v, src) for k, v in outputs.items()}
            _, source_terms = self.source_loss(sub, pids[src] - SOURCE_OFFSET)
            for k, v in source_terms.items():
                terms[f"source_{k}"] = self.source_weight * v
        feats = F.normalize(target.float(), dim=1)
        terms["cluster_nce"] = cluster_nce(feats, self.memory.centroids, labels, self.temperature)
        self.memory.update(feats, labels)
        total = torch.stack(list(terms.values())).sum()
        return total, terms


class SourceLabels(nn.Module):
    """Calls ``model(images, labels)`` with source rows' own identities and 0 for target rows:
    what a margin classifier (arcface, cosface ...) needs; the target rows' logits are unused."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, pids: torch.Tensor | None = None) -> dict:
        """The model's training outputs for the mixed batch."""
        if pids is None:
            return self.model(images)
        labels = torch.where(pids >= SOURCE_OFFSET, pids - SOURCE_OFFSET, torch.zeros_like(pids))
        return self.model(images, labels)
