"""Distillation losses: a frozen teacher's outputs as targets for a student.

Plain functions on tensors (each tested against a value computed by hand):

- ``kd_loss``: Hinton et al.'s knowledge distillation, ``T^2 * KL(p_t || p_s)`` with
  ``p = softmax(logits / T)``, averaged over the batch (the ``T^2`` keeps its gradient on the
  scale of a hard-label loss whatever the temperature);
- ``feature_loss``: the student's embedding against the teacher's, ``cosine`` (mean of
  ``1 - cos``) or ``l2`` (mean squared difference per dimension);
- ``relation_loss``: the batch's pairwise cosine similarities, student against teacher: the
  mean squared difference over the ``B (B - 1)`` off-diagonal pairs (the diagonal is 1 for both);
  it transfers how the teacher arranges the batch, whatever the widths.

``DistillLoss`` combines them with weights, next to the student's own ReID loss, with the
``loss(outputs, targets) -> (total, terms)`` contract of ``ReidLoss``; ``terms`` are weighted and
each is logged. It owns the projection (student width -> teacher width) of the feature term: a
trained part of the student's loss, saved in the checkpoint's loss state, never exported.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reidkit.utils.errors import ConfigError

FEATURE_KINDS = ("cosine", "l2")


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * mean_i KL(softmax(t_i / T) || softmax(s_i / T))`` (float32)."""
    t = float(temperature)
    log_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_t = F.log_softmax(teacher_logits.float() / t, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(1).mean() * (t * t)


def feature_loss(
    student: torch.Tensor, teacher: torch.Tensor, kind: str = "cosine"
) -> torch.Tensor:
    """``cosine``: mean of ``1 - cos(s_i, t_i)``; ``l2``: mean of ``(s - t)^2`` over every
    element. ``student`` and ``teacher`` are ``(B, D)`` of the same width."""
    s, t = student.float(), teacher.float()
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(s, t, dim=1, eps=1e-8)).mean()
    if kind == "l2":
        return F.mse_loss(s, t)
    raise ConfigError(
        f"distill.feature_loss = {kind!r}: expected one of {', '.join(FEATURE_KINDS)}"
    )


def similarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` cosine similarities of the rows of ``x`` (float32)."""
    x = F.normalize(x.float(), dim=1, eps=1e-8)
    return x @ x.t()


def relation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the off-diagonal pairwise cosine similarities, student
    ``(B, Ds)`` against teacher ``(B, Dt)`` (0 for a batch of one)."""
    b = student.shape[0]
    diff = similarity_matrix(student) - similarity_matrix(teacher)
    off = 1.0 - torch.eye(b, device=diff.device, dtype=diff.dtype)
    return (diff * diff * off).sum() / max(1, b * (b - 1))


def make_projection(student_dim: int, teacher_dim: int, mode: str = "auto") -> nn.Module | None:
    """The feature term's projection: ``Linear(student_dim, teacher_dim)`` when the widths
    differ (or ``mode`` is ``always``), else None (the embeddings compare directly)."""
    if mode not in ("auto", "always"):
        raise ConfigError(f"distill.projection = {mode!r}: expected auto or always")
    if student_dim == teacher_dim and mode == "auto":
        return None
    return nn.Linear(student_dim, teacher_dim)


def _pids(targets: Any) -> torch.Tensor:
    """The identities of a batch: the tensor itself, or the first field of ``(pids, teacher)``."""
    return targets[0] if isinstance(targets, (tuple, list)) else targets


class DistillLoss(nn.Module):
    """``loss(outputs, targets) -> (total, terms)`` of a distilled student.

    ``outputs`` are the student's training outputs plus ``teacher_embedding`` and, for the KD
    term, ``kd_logits`` (the student's margin-free class scores) and ``teacher_logits``
    (``models.distill.DistillNet`` adds them). ``targets`` are the pids, or ``(pids, ...)``.
    Terms: the student's own ``reid_loss`` terms times ``reid_weight`` (``ce``, ``triplet``
    ...; none when it is None), then ``kd``, ``feature``, ``relation`` (each only with a
    weight > 0).
    """

    def __init__(
        self,
        reid_loss: nn.Module | None = None,
        *,
        reid_weight: float = 1.0,
        kd_weight: float = 0.0,
        temperature: float = 4.0,
        feature_weight: float = 1.0,
        feature_kind: str = "cosine",
        relation_weight: float = 1.0,
        projection: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if feature_kind not in FEATURE_KINDS:
            raise ConfigError(
                f"distill.feature_loss = {feature_kind!r}: expected one of "
                f"{', '.join(FEATURE_KINDS)}"
            )
        if temperature <= 0:
            raise ConfigError(f"distill.temperature = {temperature}: expected a number > 0")
        self.reid_loss = reid_loss if reid_loss is not None and reid_weight > 0 else None
        self.reid_weight = float(reid_weight)
        self.kd_weight, self.temperature = float(kd_weight), float(temperature)
        self.feature_weight, self.feature_kind = float(feature_weight), feature_kind
        self.relation_weight = float(relation_weight)
        self.projection = projection if feature_weight > 0 else None
        distilled = kd_weight > 0 or feature_weight > 0 or relation_weight > 0
        if self.reid_loss is None and not distilled:
            raise ConfigError(
                "distill: every loss weight is 0 (reid_weight, kd_weight, feature_weight, "
                "relation_weight); set at least one > 0"
            )

    def projection_parameters(self) -> list[nn.Parameter]:
        """The projection's parameters (trained in the main optimiser, with the head's lr)."""
        return list(self.projection.parameters()) if self.projection is not None else []

    def make_extra_optimizer(self) -> torch.optim.Optimizer | None:
        """The student ReID loss's own optimiser (center-loss centres), if it has one."""
        make = getattr(self.reid_loss, "make_extra_optimizer", None)
        return make() if make is not None else None

    def forward(
        self, outputs: dict[str, Any], targets: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its weighted terms."""
        terms: dict[str, torch.Tensor] = {}
        if self.reid_loss is not None:
            _, reid_terms = self.reid_loss(outputs, _pids(targets))
            for k, v in reid_terms.items():
                terms[k] = self.reid_weight * v
        teacher = outputs["teacher_embedding"]
        if self.kd_weight > 0:
            kd = kd_loss(outputs["kd_logits"], outputs["teacher_logits"], self.temperature)
            terms["kd"] = self.kd_weight * kd
        student = outputs["embedding"]
        if self.feature_weight > 0:
            projected = self.projection(student.float()) if self.projection is not None else student
            terms["feature"] = self.feature_weight * feature_loss(
                projected, teacher, self.feature_kind
            )
        if self.relation_weight > 0:
            terms["relation"] = self.relation_weight * relation_loss(student, teacher)
        total = torch.stack(list(terms.values())).sum()
        return total, terms
