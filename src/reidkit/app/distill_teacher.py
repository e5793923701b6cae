"""The teacher of ``reidkit distill``: loading it, checking it fits the student, and caching
its outputs.

``load_teacher`` restores the teacher run or checkpoint (``models.checkpoint.restore``:
``weights_only=True``) on the student's device, under a forked RNG so the student's
initialisation is the one ordinary training would draw. ``teacher_input`` says how the
student's batch becomes the teacher's input (same size and normalisation, or resized /
renormalised), ``kd_weight`` whether KD on the logits is possible (the teacher's classes must
be the student's). ``build_teacher_cache`` runs the teacher once per image and view before
training when the augmentation allows it. ``TeacherGuard`` stores a digest of the teacher's
weights in each checkpoint, so a resume with another teacher is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reidkit.config import Config
from reidkit.data.plan import available_ram
from reidkit.data.targets import TargetLoader
from reidkit.engine.callbacks import Callback
from reidkit.engine.step import AMP_DTYPES
from reidkit.models.checkpoint import resolve_checkpoint, restore
from reidkit.models.distill import FrozenTeacher, renormalisation
from reidkit.utils.errors import CheckpointError, ConfigError
from reidkit.utils.logging import get_logger

CACHE_SHARE = 0.25  # of the free memory a teacher cache may take


@dataclass
class Teacher:
    """A restored teacher: its checkpoint, model (eval mode), stored config and digest."""

    checkpoint: Path
    model: nn.Module
    cfg: Config
    digest: str

    @property
    def num_classes(self) -> int:
        """Classes of the teacher's classifier."""
        return int(getattr(self.model, "num_classes", 0))

    @property
    def embedding_dim(self) -> int:
        """Width of the teacher's eval embedding."""
        return int(self.model.embedding_dim)


def weights_digest(model: nn.Module) -> str:
    """sha256 of every tensor of ``model.state_dict()`` (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_teacher(cfg: Config, device: torch.device) -> Teacher:
    """The teacher named by ``distill.teacher`` on ``device``, frozen; one-line errors."""
    target = cfg.distill.teacher
    if not target:
        raise ConfigError(
            "distill.teacher is not set: pass --teacher RUN (a trained run folder or a "
            "checkpoint, e.g. from `reidkit import`)"
        )
    ckpt = resolve_checkpoint(target)
    run = cfg.run_dir.resolve()
    if ckpt.resolve().is_relative_to(run):
        raise ConfigError(
            f"distill.teacher = {target!r} lies inside the student's run folder {cfg.run_dir}; "
            "give the student another sub_working_dir"
        )
    with torch.random.fork_rng(devices=[]):
        model, tcfg = restore(ckpt, device=device)
    if not hasattr(model, "embedding_dim") or not hasattr(model, "classify"):
        raise CheckpointError(f"{ckpt}: not a reidkit ReID model (no embedding / classifier)")
    for p in model.parameters():
        p.requires_grad_(False)
    return Teacher(ckpt, model.eval(), tcfg, weights_digest(model))


def teacher_input(
    cfg: Config, teacher: Teacher
) -> tuple[tuple[int, int] | None, tuple[torch.Tensor, torch.Tensor] | None, str]:
    """``(size, renorm, description)``: how the student's batch is fed to the teacher."""
    t, notes = teacher.cfg, []
    size = None
    if (t.img_h, t.img_w) != (cfg.img_h, cfg.img_w):
        size = (t.img_h, t.img_w)
        notes.append(
            f"the student's {cfg.img_h}x{cfg.img_w} batch is resized (bilinear) to the "
            f"teacher's {t.img_h}x{t.img_w}"
        )
    else:
        notes.append(f"same input size {cfg.img_h}x{cfg.img_w}")
    s, d = cfg.data, t.data
    renorm = renormalisation(s.mean, s.std, s.pixel_range, d.mean, d.std, d.pixel_range)
    if renorm is None:
        notes.append("same normalisation")
    else:
        notes.append(
            f"renormalised to the teacher's mean {list(d.mean)} / std {list(d.std)} "
            f"(pixel_range {d.pixel_range})"
        )
    return size, renorm, "teacher input: " + ", ".join(notes)


def _same_classes(cfg: Config, teacher: Teacher, num_classes: int) -> str | None:
    """None when the teacher was trained on the student's classes, else why not."""
    t = teacher.cfg
    if cfg.distill.unlabeled:
        return "label-free distillation has no classes"
    if Path(t.batches_dir).resolve() != Path(cfg.batches_dir).resolve():
        return (
            f"the teacher was trained on {t.batches_dir} ({teacher.num_classes} classes), the "
            f"student trains on {cfg.batches_dir} ({num_classes} classes)"
        )
    if teacher.num_classes != num_classes:
        return (
            f"the teacher has {teacher.num_classes} classes, the student's train split "
            f"{num_classes}"
        )
    return None


def kd_weight(cfg: Config, teacher: Teacher, num_classes: int) -> float:
    """The KD term's weight: ``distill.kd_weight``, or 1.0 / 0.0 for None (see its doc)."""
    asked = cfg.distill.kd_weight
    if asked == 0:
        return 0.0
    why = _same_classes(cfg, teacher, num_classes)
    if why is None:
        return 1.0 if asked is None else float(asked)
    if asked is not None:
        raise ConfigError(
            f"distill.kd_weight = {asked}: KD on the logits needs the teacher's classes to be "
            f"the student's, but {why}; set distill.kd_weight 0 (the feature and relation "
            "terms need no classes)"
        )
    if not cfg.distill.unlabeled:
        get_logger().warning(f"warning: KD on the logits skipped: {why}")
    return 0.0


def cache_fits(views: int, records: int, width: int, device: torch.device) -> tuple[bool, str]:
    """Whether a float32 table of ``views x records x width`` takes at most ``CACHE_SHARE`` of
    the device's free memory (the images, the models and the optimiser need the rest);
    ``(fits, size as text)``."""
    need = views * records * width * 4
    have = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_ram()
    return need <= CACHE_SHARE * have, f"{need / 2**20:.1f} MiB"


def build_teacher_cache(
    teacher: FrozenTeacher,
    loader: TargetLoader,
    views: int,
    amp: str,
    device: torch.device,
    batch_size: int = 128,
) -> dict[str, torch.Tensor]:
    """The teacher's outputs for every record and view: ``{name: (views, N, ...)}`` in
    float32 on ``device`` (rows of images that cannot be decoded stay zero: never drawn)."""
    n = len(loader.records)
    tables: dict[str, torch.Tensor] = {}
    dtype = AMP_DTYPES.get(amp)
    for idx, batches in loader.plain_views(views, batch_size):
        for v, x in enumerate(batches):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = teacher(x.to(device))
            for name, t in out.items():
                if name not in tables:
                    tables[name] = torch.zeros(views, n, *t.shape[1:], device=device)
                tables[name][v, idx.to(device)] = t.float()
    return tables


def table_digest(tables: dict[str, torch.Tensor]) -> str:
    """sha256 of a teacher cache (to tell whether a resume rebuilt the same one)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        h.update(name.encode())
        h.update(tables[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class TeacherGuard(Callback):
    """Keeps the teacher's weight digest (and the cache's) in every checkpoint; a resume
    with other teacher weights is refused, a differently rebuilt cache is warned about."""

    name = "distill_teacher"

    def __init__(self, teacher: Teacher, cache_digest: str = "") -> None:
        self.teacher, self.cache_digest = teacher, cache_digest

    def state_dict(self) -> dict[str, Any]:
        """The digests (plain strings: checkpoints load with weights_only=True)."""
        return {"teacher": self.teacher.digest, "cache": self.cache_digest}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Refuse another teacher; warn when the cache was rebuilt differently."""
        if state.get("teacher") and state["teacher"] != self.teacher.digest:
            raise CheckpointError(
                f"{self.teacher.checkpoint}: the teacher's weights differ from those the run "
                "started with; resume with the same teacher or start a new sub_working_dir"
            )
        if state.get("cache") and self.cache_digest and state["cache"] != self.cache_digest:
            get_logger().warning(
                "warning: the teacher cache rebuilt for this resume differs from the first "
                "one (non-deterministic kernels?): the resumed run is not bit-exact"
            )
