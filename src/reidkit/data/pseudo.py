"""Unlabeled target crops for adaptation: listing them, and a loader whose identities are
pseudo-labels that change every epoch (``reidkit adapt``).

``PseudoLabelLoader`` decodes the crops once (like ``TrainLoader``, whose store and batched
augmentation it reuses) and is told each epoch which crops form which pseudo-identity
(``set_labels``; -1 = left out). It then yields PK batches over the pseudo-identities, a fixed
number per epoch, optionally followed in each batch by a PK batch of a labelled source
dataset. Source rows carry ``pid + SOURCE_OFFSET`` so the loss can tell the domains apart.
``plain_batches`` gives the un-augmented crops in order, for embedding them before clustering.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from reidkit.data.augment import IMAGENET_MEAN, IMAGENET_STD, BatchAugment, normalize_uint8
from reidkit.data.layouts.common import IMAGE_SUFFIXES
from reidkit.data.layouts.folders import camera_of
from reidkit.data.loaders import Batch, TrainLoader, _to_device
from reidkit.data.records import ImageSource, Record
from reidkit.data.samplers import PKSampler
from reidkit.data.sources import FolderSource
from reidkit.utils.errors import DataError

SOURCE_OFFSET = 1 << 40  # a batch pid >= this is source identity ``pid - SOURCE_OFFSET``


def unlabeled_records(root: str | Path) -> tuple[list[Record], FolderSource]:
    """Every image below ``root`` (any depth, sorted by path) as a record with pid -1.

    The camera comes from a ``c<N>`` file-name field when there is one (else 0). Empty
    files are left out. A missing folder or one without images is a one-line ``DataError``.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"{base}: unlabeled folder not found (`reidkit crops VIDEO --out DIR`)")
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    records = []
    for p in files:
        if p.is_file() and p.stat().st_size > 0:
            cam = camera_of(p.name)
            records.append(Record(p.relative_to(base).as_posix(), -1, 0 if cam is None else cam))
    if not records:
        raise DataError(
            f"{base}: no images in the unlabeled folder (expected {', '.join(IMAGE_SUFFIXES)} "
            "files at any depth, e.g. written by `reidkit crops VIDEO --out DIR`)"
        )
    return records, FolderSource(base)


class PseudoLabelLoader(TrainLoader):
    """PK batches over pseudo-identities of unlabeled crops (see the module docstring).

    ``batch_size`` is the number of target images per batch (``P = batch_size // K``);
    ``steps`` the batches per epoch (0: one pass, ``len(records) // batch_size``).
    """

    def __init__(
        self,
        records: Sequence[Record],
        source: ImageSource,
        *,
        height: int,
        width: int,
        batch_size: int,
        K: int,
        steps: int = 0,
        device: torch.device | str = "cpu",
        augment: BatchAugment | None = None,
        cache: str = "ram",
        num_workers: int = 2,
        seed: int = 0,
        progress: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        pixel_range: float = 1.0,
        source_loader: TrainLoader | None = None,
    ) -> None:
        super().__init__(
            records,
            source,
            height=height,
            width=width,
            batch_size=batch_size,
            device=device,
            augment=augment,
            K=None,
            cache=cache,
            num_workers=num_workers,
            seed=seed,
            progress=progress,
        )
        self.P, self.K = max(1, batch_size // K), K
        self.steps = steps or max(1, len(self.records) // batch_size)
        self.mean, self.std, self.pixel_range = tuple(mean), tuple(std), float(pixel_range)
        self.source_loader = source_loader
        self.labels = np.full(len(self.records), -1, dtype=np.int64)
        self.index = np.zeros(0, dtype=np.int64)  # sampler position -> record index

    def set_labels(self, labels: Sequence[int] | np.ndarray) -> None:
        """This epoch's pseudo-identity of each record (``-1``: not trained on)."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(self.records),):
            raise DataError(f"set_labels: expected {len(self.records)} labels, got {labels.shape}")
        keep = np.flatnonzero(labels >= 0)
        clusters = int(labels.max()) + 1 if keep.size else 0
        if clusters < self.P:
            raise DataError(
                f"adapt: {clusters} pseudo-identities, but a batch takes P = {self.P} of them "
                f"(batch of {self.P * self.K} target images, K = {self.K}); try another "
                "adapt.eps (lower splits clusters, higher gathers outliers) or adapt.k1 "
                "(about the crops a person has), or a smaller batch_size"
            )
        self.sampler = PKSampler(labels[keep], self.P, self.K, self.seed, steps=self.steps)
        self.sampler.set_epoch(self.epoch)
        self.labels, self.index = labels, keep
        self.pids = torch.as_tensor(labels, device=self.device)

    def __len__(self) -> int:
        return self.steps

    def _index_batches(self) -> list[list[int]]:
        if not self.index.size:
            raise DataError("PseudoLabelLoader: set_labels() must be called before iterating")
        return [self.index[b].tolist() for b in self.sampler]

    def _source_batches(self) -> Iterator[Batch]:
        """Source batches without end: passes ``epoch * 10007 + c`` for c = 0, 1, ..."""
        assert self.source_loader is not None
        cycle = 0
        while True:
            self.source_loader.set_epoch(self.epoch * 10007 + cycle)
            yield from self.source_loader
            cycle += 1

    def __iter__(self) -> Iterator[Batch]:
        target = super().__iter__()
        if self.source_loader is None:
            yield from target
            return
        source = self._source_batches()
        for t in target:
            s = next(source)
            pids = torch.cat([t.pids, s.pids.to(t.pids.device) + SOURCE_OFFSET])
            camids = torch.cat([t.camids, s.camids.to(t.camids.device)])
            yield Batch(torch.cat([t.images, s.images.to(t.images.device)]), pids, camids)

    def plain_batches(self, batch_size: int = 128) -> Iterator[Batch]:
        """Every crop once, in order, resized and normalised without augmentation; ``pids``
        holds each row's record index (crops that cannot be decoded are skipped)."""
        n = len(self.records)
        chunks = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
        for images, rows, delivered in self.store.batches(chunks):
            x = _to_device(images, rows, self.device)
            x = normalize_uint8(x, self.mean, self.std, self.pixel_range)
            idx = delivered.to(self.device)
            yield Batch(x, idx, self.camids[idx])
