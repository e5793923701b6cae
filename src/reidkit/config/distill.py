"""The ``distill`` section: knowledge distillation from a trained teacher (``reidkit distill``).

A frozen teacher run guides the student of the params file: KD on the logits (temperature),
feature distillation on the BNNeck embeddings (through a learnt projection when the widths
differ), and the relation of the batch's pairwise similarities, each weighted and logged next to
the student's own ReID loss. With ``unlabeled`` the student learns from the teacher alone, on
unlabeled crops (feature + relation terms). docs/distillation.md explains every key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reidkit.config.section import Section

FEATURE_LOSSES = ("cosine", "l2")


class DistillParams(Section):
    """Distillation from a teacher (new key ``distill``; used by ``reidkit distill`` only)."""

    teacher: str | None = Field(
        None,
        description="The teacher: a run folder (its best.pth, else last.pth) or a reidkit "
        "checkpoint, e.g. one written by `reidkit import` from torchreid / fast-reid; "
        "`reidkit distill --teacher RUN` sets it.",
    )
    unlabeled: str | None = Field(
        None,
        description="Label-free distillation: a folder of unlabeled crops (any depth) the "
        "student learns on from the teacher's features alone (feature + relation terms, no "
        "ReID loss, no KD); `--unlabeled DIR` sets it. None = the train split of batches_dir "
        "with its labels.",
    )
    reid_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the student's own ReID loss (the params file's ce / triplet / "
        "... terms) next to the distillation terms; 0 = distillation only.",
    )
    kd_weight: float | None = Field(
        None,
        ge=0,
        description="Weight of KD on the logits (KL divergence of the temperature-softened "
        "class distributions, times T^2). None = 1.0 when the teacher was trained on the "
        "student's classes (same dataset and num_classes), else skipped with a warning; a "
        "number > 0 with other classes is an error.",
    )
    temperature: float = Field(
        4.0, gt=0, description="Softmax temperature T of the KD term (Hinton et al.)."
    )
    feature_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of feature distillation: the student's BNNeck embedding "
        "(projected to the teacher's width when they differ) against the teacher's.",
    )
    feature_loss: Literal["cosine", "l2"] = Field(
        "cosine",
        description="cosine: mean of 1 - cos(student, teacher); l2: mean squared difference "
        "per dimension (sensitive to the teacher's scale).",
    )
    projection: Literal["auto", "always"] = Field(
        "auto",
        description="Linear projection student width -> teacher width for the feature term: "
        "auto = only when the widths differ; always = also when equal. Trained with the "
        "head's lr, saved in the checkpoint's loss state, never exported.",
    )
    relation_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of relation distillation: mean squared difference between the "
        "batch's pairwise cosine-similarity matrices of student and teacher (no projection "
        "needed).",
    )
    teacher_cache: Literal["auto", "off"] = Field(
        "auto",
        description="auto = run the teacher once per image before training when the train "
        "augmentation is deterministic per image (a mirror flip at most: both views are "
        "cached), else per batch; off = always per batch.",
    )
