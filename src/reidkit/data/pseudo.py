"""Unlabeled target crops for adaptation: listing them, and a loader whose identities are
pseudo-labels that change every epoch (``reidkit adapt``).

``PseudoLabelLoader`` decodes the crops once (like ``TrainLoader``, whose store and batched
augmentation it reuses) and is told each epoch which crops form which pseudo-identity
(``set_labels``; -1 = left out). It then yields PK batches over the pseudo-identities, a fixed
number per epoch, optionally followed in each batch by a PK batch of a labelled source
dataset. Source rows carry ``pid + SOURCE_OFFSET`` so the loss can tell the domains apart.
``plain_batches`` gives the un-augmented crops in order, for embedding them before clustering.
When the clustering finds fewer pseudo-identities than a batch's ``P``, every batch takes all
of them and more crops of each (drawn with replacement from a small one), so the batch keeps
its size.

``crop_tracklets`` reads which crops form one tracklet from the names ``reidkit crops``
writes (``f<frame>_t<track>``; ``data.crops.parse_crop_name``): the must-link and
cannot-link facts the clustering may use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reidkit.data.augment import IMAGENET_MEAN, IMAGENET_STD, BatchAugment, normalize_uint8
from reidkit.data.crops import parse_crop_name
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


def min_crops(k1: int, min_samples: int, K: int) -> int:
    """The fewest crops a folder needs to be clustered into at least two pseudo-identities:
    two DBSCAN cores' worth (``min_samples``, and ``K`` crops for a batch's identity) and
    more crops than the ``k1`` neighbours the Jaccard distance looks at."""
    return max(2 * max(min_samples, K), k1 + 1)


@dataclass(frozen=True)
class CropTracklets:
    """Which unlabeled crops form one tracklet, and which tracklets are surely two people.

    ``unit[i]`` is crop i's tracklet, numbered ``0..num_tracklets-1``; a crop whose name
    carries no tracklet is a unit of its own (numbers from ``num_tracklets`` on).
    ``cannot_link`` (M, 2) pairs two tracklets of one folder and camera whose frame ranges
    overlap: seen at the same time, so different people.
    """

    unit: np.ndarray
    num_units: int
    num_tracklets: int
    cannot_link: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Crops per unit."""
        return np.bincount(self.unit, minlength=self.num_units)


def crop_tracklets(records: Sequence[Record]) -> CropTracklets | None:
    """The tracklets of ``records`` from their file names (``f<frame>_t<track>``, camera
    from a ``c<N>`` field), or None when no name carries one.

    A tracklet is one track id in one folder and camera (two videos' track 1 are two
    tracklets); its time is the range of its crops' frames.
    """
    keys: dict[tuple[str, int, int], int] = {}
    span: list[list[int]] = []
    unit = np.full(len(records), -1, dtype=np.int64)
    for i, r in enumerate(records):
        folder, _, name = r.path.rpartition("/")
        parsed = parse_crop_name(name)
        if parsed is None:
            continue
        frame, track = parsed
        t = keys.setdefault((folder, r.camid, track), len(keys))
        if t == len(span):
            span.append([frame, frame])
        span[t] = [min(span[t][0], frame), max(span[t][1], frame)]
        unit[i] = t
    if not keys:
        return None
    lone = np.flatnonzero(unit < 0)
    unit[lone] = len(keys) + np.arange(lone.size)
    pairs = []
    groups: dict[tuple[str, int], list[int]] = {}
    for (folder, cam, _), t in keys.items():
        groups.setdefault((folder, cam), []).append(t)
    for members in groups.values():
        members.sort(key=lambda t: span[t][0])
        for a_i, a in enumerate(members):  # sorted by start: stop at the first that starts later
            for b in members[a_i + 1 :]:
                if span[b][0] > span[a][1]:
                    break
                pairs.append((min(a, b), max(a, b)))
    cannot = np.asarray(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return CropTracklets(unit, len(keys) + lone.size, len(keys), cannot)


class PseudoLabelLoader(TrainLoader):
    """PK batches over pseudo-identities of unlabeled crops (see the module docstring).

    ``batch_size`` is the number of target images per batch (``P = batch_size // K``);
    ``steps`` the batches per epoch (0: one pass, ``len(records) // batch_size``). With
    fewer clusters than ``P`` a batch holds every cluster, ``ceil(batch_size / clusters)``
    crops of each (one fewer for the last few, so the batch size never changes).
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
        self.batch_size = batch_size
        self.layout = (self.P, self.K)  # this epoch's (identities, crops each) per batch
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
        if clusters == 0:
            raise DataError("adapt: no pseudo-identities to train on (every crop an outlier)")
        P, K = self.P, self.K
        if clusters < P:  # every cluster in every batch, more crops of each
            P, K = clusters, math.ceil(self.batch_size / clusters)
        self.sampler = PKSampler(labels[keep], P, K, self.seed, steps=self.steps)
        self.sampler.set_epoch(self.epoch)
        self.labels, self.index, self.layout = labels, keep, (P, K)
        self.pids = torch.as_tensor(labels, device=self.device)

    def describe_layout(self) -> str:
        """The epoch's batch layout in words, for the log."""
        P, K = self.layout
        if P == self.P:
            return f"batches of {P} pseudo-identities x {K} crops"
        low = K - 1 if self.batch_size < P * K else K
        each = f"{low}-{K}" if low != K else f"{K}"
        return (
            f"{P} pseudo-identities, fewer than P = {self.P}: every batch takes all {P}, "
            f"{each} crops each ({self.batch_size} images)"
        )

    def _fit(self, batch: list[int]) -> list[int]:
        """A sampler batch of P x K cut to ``batch_size``: the last identities give one crop."""
        P, K = self.layout
        extra = P * K - self.batch_size
        if extra <= 0:
            return batch
        groups = [batch[i * K : (i + 1) * K] for i in range(P)]
        return [i for g_i, g in enumerate(groups) for i in (g[:-1] if g_i >= P - extra else g)]

    def __len__(self) -> int:
        return self.steps

    def _index_batches(self) -> list[list[int]]:
        if not self.index.size:
            raise DataError("PseudoLabelLoader: set_labels() must be called before iterating")
        return [self.index[self._fit(b)].tolist() for b in self.sampler]

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
