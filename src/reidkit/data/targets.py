"""A train loader whose batches carry per-image targets looked up by record: the
teacher-feature cache of ``reidkit distill``.

``TargetLoader`` is a ``TrainLoader`` (same order, same augmentation, same random numbers: a
student sees exactly the batches ordinary training would show it) whose ``Batch.pids`` is a
``BatchTargets(pids, teacher)``: ``teacher`` maps names to the rows of a table set with
``set_table`` (shape ``(views, records, ...)``) for the batch's records, in the view each
image was augmented to (0 plain, 1 mirrored), or is empty when no table is set (the teacher
then runs on the batch). The engine passes ``Batch.pids`` through to the network and the loss
untouched.

Whether a table can stand in for the teacher depends on the augmentation: only when each
image's training view is one of a few fixed ones (``cacheable_views``). ``plain_views`` gives
those views of every record, in order, to fill the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch

from reidkit.data.augment import AugmentParams, BatchAugment
from reidkit.data.loaders import Batch, TrainLoader, _to_device, augment_generator, prefetch
from reidkit.utils.errors import DataError


class BatchTargets(NamedTuple):
    """What ``Batch.pids`` holds for distillation: identities and looked-up teacher rows."""

    pids: torch.Tensor
    teacher: dict[str, torch.Tensor]


def cacheable_views(augment: BatchAugment) -> tuple[int, str]:
    """``(views, reason)``: how many fixed views of an image training can show (1: the image,
    2: it and its mirror image), or 0 when the augmentation draws more per image and epoch."""
    random = []
    if augment.padding > 0:
        random.append(f"random crop (data_augmentation.padding = {augment.padding})")
    if augment.erase_prob > 0:
        random.append("random erasing")
    if augment.jitter_prob > 0:
        random.append("colour jitter")
    if augment.patch_prob > 0:
        random.append("random patch")
    if augment.auto_augment != "none":
        random.append(augment.auto_augment)
    if random:
        return 0, f"{', '.join(random)} changes every image every epoch"
    if augment.flip_prob > 0:
        return 2, "the augmentation is a mirror flip at most: plain and mirrored views cached"
    return 1, "no random augmentation: one view per image cached"


def _fixed_params(n: int, flip: bool, padding: int, device: torch.device) -> AugmentParams:
    """Parameters of an un-shifted, un-erased view, mirrored or not, for ``n`` images."""
    zeros = torch.zeros(n, dtype=torch.int64, device=device)
    pad = torch.full((n,), padding, dtype=torch.int64, device=device)
    flags = torch.full((n,), flip, dtype=torch.bool, device=device)
    off = torch.zeros(n, dtype=torch.bool, device=device)
    return AugmentParams(flags, pad, pad, off, zeros, zeros, zeros, zeros)


class TargetLoader(TrainLoader):
    """``TrainLoader`` whose batches carry ``BatchTargets`` (see the module docstring)."""

    table: dict[str, torch.Tensor] | None = None

    def set_table(self, table: dict[str, torch.Tensor] | None) -> None:
        """Per-record targets, each ``(views, len(records), ...)`` on the loader's device
        (None: batches carry no targets)."""
        if table is not None:
            for name, t in table.items():
                if t.ndim < 2 or t.shape[1] != len(self.records) or t.shape[0] not in (1, 2):
                    raise DataError(
                        f"set_table: {name} has shape {tuple(t.shape)}, expected (1 or 2, "
                        f"{len(self.records)}, ...)"
                    )
        self.table = table

    def __iter__(self) -> Iterator[Batch]:
        gen = augment_generator(self.device, self.seed, self.epoch, self.rank)
        staged = self._staged()
        if self.device.type == "cuda" and self.store.mode != "device":
            staged = prefetch(staged)
        for images, rows, delivered in staged:
            n = images.shape[0] if rows is None else rows.numel()
            params = self.augment.draw(n, images.shape[-2], images.shape[-1], gen)
            out = self.augment.apply(images, params, rows, gen)
            idx = delivered.to(self.device, non_blocking=True)
            teacher: dict[str, torch.Tensor] = {}
            if self.table:
                for name, t in self.table.items():
                    view = params.flip.to(t.device).long() if t.shape[0] == 2 else 0
                    teacher[name] = t[view, idx.to(t.device)].to(self.device)
            yield Batch(out, BatchTargets(self.pids[idx], teacher), self.camids[idx])

    def plain_views(
        self, views: int, batch_size: int = 128
    ) -> Iterator[tuple[torch.Tensor, list[torch.Tensor]]]:
        """Every record once, in order: ``(record indices, [plain batch, mirrored batch])``
        (``views`` 1: the plain batch only), normalised exactly as training normalises them."""
        n = len(self.records)
        chunks = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
        pad = self.augment.padding
        for images, rows, delivered in self.store.batches(chunks):
            if not (images.device.type == "cpu" and self.device.type == "cpu"):
                images, rows = _to_device(images, rows, self.device), None
            m = images.shape[0] if rows is None else rows.numel()
            out = []
            for v in range(views):
                params = _fixed_params(m, bool(v), pad, images.device)
                out.append(self.augment.apply(images, params, rows))
            yield delivered.to(self.device), out
