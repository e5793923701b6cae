"""A frozen teacher next to a student: the network half of distillation.

``FrozenTeacher`` wraps a trained model as a fixed target: eval mode whatever ``train()`` is
asked (BatchNorm statistics never move), no parameter requires a gradient, and it runs under
``torch.no_grad``. It converts the student's batch to the teacher's input first when the two
differ: the per-channel normalisation (an exact affine map between the two) and the size
(bilinear, antialiased when shrinking). It returns ``{"embedding"}`` and, when asked,
``{"logits"}`` (``classify`` of its eval embedding: margin-free class scores).

``DistillNet(student, teacher)`` is what the training step calls: ``net(images, targets)``
with ``targets = (pids, cached)``; it returns the student's training outputs plus
``teacher_embedding`` (and ``teacher_logits`` / ``kd_logits`` for KD), taken from ``cached``
when the loader looked them up (teacher-feature cache) or computed from the batch. In eval mode
(no targets) it is the student alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reidkit.models.classifiers import CosineClassifier


def margin_free_logits(model: nn.Module, embedding: torch.Tensor) -> torch.Tensor:
    """Class scores of a ``ReidModel``'s embedding without the training margin (margin
    classifiers give ``scale * cos``, softmax heads their logits), averaged over branches: what
    ``classify`` returns in eval mode, usable in training mode."""
    dims = [model.neck.out_dim] if model.neck is not None else []
    if model.parts is not None:
        dims += [model.parts.part_dim] * model.parts.num_parts
    chunks = torch.split(embedding, dims, dim=1)
    scores = []
    for head, x in zip(model.heads(), chunks, strict=True):
        if isinstance(head, CosineClassifier):
            scores.append(head.scale * head.cosine(x))
        else:
            scores.append(head(x).float())
    return torch.stack(scores).mean(0)


def renormalisation(
    src_mean: Sequence[float],
    src_std: Sequence[float],
    src_range: float,
    dst_mean: Sequence[float],
    dst_std: Sequence[float],
    dst_range: float,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(scale, shift)`` (each ``(1, 3, 1, 1)``) mapping a batch normalised one way to the
    other: ``x_dst = x_src * scale + shift``; None when both normalise alike.

    ``x = (u / (255 / range) - mean) / std`` for raw pixels ``u``, so
    ``u = (x std_s + mean_s) 255 / range_s`` and ``x_d = (u range_d / 255 - mean_d) / std_d``.
    """
    same = (
        tuple(src_mean) == tuple(dst_mean)
        and tuple(src_std) == tuple(dst_std)
        and float(src_range) == float(dst_range)
    )
    if same:
        return None
    ms, ss = torch.tensor(src_mean, dtype=torch.float64), torch.tensor(src_std, dtype=torch.float64)
    md, sd = torch.tensor(dst_mean, dtype=torch.float64), torch.tensor(dst_std, dtype=torch.float64)
    ratio = float(dst_range) / float(src_range)  # u * range_d / 255 = (x std_s + mean_s) * ratio
    scale = ss * ratio / sd
    shift = (ms * ratio - md) / sd
    return scale.float().view(1, -1, 1, 1), shift.float().view(1, -1, 1, 1)


class FrozenTeacher(nn.Module):
    """A trained model as a fixed target (see the module docstring).

    ``size`` ``(h, w)``: the teacher's input size when it differs from the student's (None:
    the same); ``renorm``: ``renormalisation(...)`` or None; ``logits``: also return class
    scores (for KD); ``channels_last``: feed NHWC batches (inference is faster so).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        size: tuple[int, int] | None = None,
        renorm: tuple[torch.Tensor, torch.Tensor] | None = None,
        logits: bool = False,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        for p in model.parameters():
            p.requires_grad_(False)
        self.size, self.logits, self.channels_last = size, logits, channels_last
        if renorm is not None:
            self.register_buffer("scale", renorm[0], persistent=False)
            self.register_buffer("shift", renorm[1], persistent=False)
        else:
            self.scale = self.shift = None
        if channels_last:
            model.to(memory_format=torch.channels_last)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Stays in eval mode whatever ``mode`` is: the teacher never updates BatchNorm."""
        return super().train(False)

    def adapt(self, images: torch.Tensor) -> torch.Tensor:
        """The student's normalised batch as the teacher's input (normalisation, size)."""
        x = images
        if self.scale is not None and self.shift is not None:
            x = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        if self.size is not None and tuple(x.shape[-2:]) != tuple(self.size):
            shrink = self.size[0] < x.shape[-2] or self.size[1] < x.shape[-1]
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False,
                              antialias=shrink)  # fmt: skip
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"embedding": (B, Dt)[, "logits": (B, C)]}`` in float32, without gradients."""
        with torch.no_grad():
            emb = self.model(self.adapt(images))
            out = {"embedding": emb.float()}
            if self.logits:
                out["logits"] = self.model.classify(emb).float()
        return out


class DistillNet(nn.Module):
    """``net(images, (pids, cached))``: the student's outputs plus the teacher's (see the
    module docstring). ``kd`` adds the logits the KD term compares."""

    def __init__(self, student: nn.Module, teacher: FrozenTeacher, kd: bool = False) -> None:
        super().__init__()
        self.student, self.teacher, self.kd = student, teacher, kd

    def forward(self, images: torch.Tensor, targets: Any = None) -> Any:
        """Training outputs with the teacher's, or the student's embedding without targets."""
        if targets is None:
            return self.student(images)
        pids, cached = targets
        out = dict(self.student(images, pids.clamp(min=0)))  # unlabeled rows (pid -1) -> 0
        teacher = cached if cached else self.teacher(images)
        out["teacher_embedding"] = teacher["embedding"]
        if self.kd:
            out["teacher_logits"] = teacher["logits"]
            out["kd_logits"] = margin_free_logits(self.student, out["embedding"])
        return out
