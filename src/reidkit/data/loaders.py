"""Train and test loaders: decoded-once uint8 caches, batches built by indexing, augmentation
applied batched on the model's device (see ``augment.py``).

``data.cache``: ``ram`` decodes every image once into CPU memory (pinned when training on a
GPU), ``device`` keeps that cache on the model's device, ``none`` decodes each batch again in
``data.num_workers`` worker processes (for datasets that do not fit in memory).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from reidkit.data.augment import IMAGENET_MEAN, IMAGENET_STD, BatchAugment, normalize_uint8
from reidkit.data.decode import decode_records, iterate_decoded, single_threaded
from reidkit.data.records import ImageSource, Record, ReidDataset, require_train
from reidkit.data.samplers import PKSampler, RandomBatchSampler
from reidkit.utils.errors import DataError
from reidkit.utils.logging import get_logger

CACHE_MODES = ("none", "ram", "device")


class Batch(NamedTuple):
    """One batch: float32 NCHW ``images`` on the device, int64 ``pids`` and ``camids``."""

    images: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor


def augment_generator(device: torch.device, seed: int, epoch: int, rank: int) -> torch.Generator:
    """The augmentation generator of one epoch on ``device``: a function of its arguments."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, rank, 0xA6]).generate_state(1)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state[0]))
    return gen


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run ``items`` in a background thread, ``depth`` elements ahead (torch ops drop the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as e:  # handed to the consumer
            q.put(e)
        q.put(done)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)


class _ImageStore:
    """Decoded images of a record list, kept in RAM / on the device, or decoded per batch."""

    def __init__(
        self,
        records: Sequence[Record],
        source: ImageSource,
        height: int,
        width: int,
        device: torch.device,
        cache: str,
        num_workers: int,
        progress: bool,
    ) -> None:
        if cache not in CACHE_MODES:
            raise DataError(f"data.cache = {cache!r}: expected one of {', '.join(CACHE_MODES)}")
        self.source, self.height, self.width = source, height, width
        self.device, self.mode, self.num_workers = device, cache, num_workers
        self.cache: torch.Tensor | None = None
        self.failed: dict[str, str] = {}
        self.records = list(records)
        self.kept = list(range(len(self.records)))  # index in the given list of each record
        if cache != "none" and records:
            pin = device.type == "cuda" and cache == "ram"
            dec = decode_records(records, source, height, width, num_workers, progress, pin)
            self.records = [records[i] for i in dec.kept]
            self.kept = list(dec.kept)
            self.failed = dict(dec.failures)
            self.cache = dec.images.to(device) if cache == "device" else dec.images

    @property
    def skipped(self) -> int:
        """How many images could not be decoded (and were left out)."""
        return len(self.failed)

    def batches(
        self, index_batches: Sequence[Sequence[int]]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        """Per list of record indices: ``(images, rows, delivered)``.

        The batch is ``images[rows]`` (``rows`` None: all of ``images``); ``delivered`` are
        the record indices of its images (undecodable ones are dropped without a cache).
        """
        if self.cache is not None:
            for idx in index_batches:
                t = torch.as_tensor(idx, dtype=torch.int64)
                yield self.cache, t, t
            return
        loader = iterate_decoded(
            self.records, self.source, self.height, self.width, self.num_workers, index_batches
        )
        for batch in _single_threaded_iter(loader, self.num_workers == 0):
            for i, err in batch.failures:
                if self.records[i].path not in self.failed:
                    self.failed[self.records[i].path] = err
                    get_logger().warning(f"skipping an image that cannot be decoded: {err}")
            if batch.images is not None:
                yield batch.images, None, torch.as_tensor(batch.indices, dtype=torch.int64)


def _single_threaded_iter(items: Any, enabled: bool) -> Iterator[Any]:
    """Iterate ``items`` with torch on one intra-op thread while each item is produced."""
    it = iter(items)
    while True:
        with single_threaded(enabled):
            try:
                item = next(it)
            except StopIteration:
                return
        yield item


def _to_device(
    images: torch.Tensor, rows: torch.Tensor | None, device: torch.device
) -> torch.Tensor:
    """``images[rows]`` as a uint8 batch on ``device`` (pinned staging for host->GPU copies)."""
    if rows is not None:
        images = images.index_select(0, rows.to(images.device, non_blocking=True))
    if images.device.type == device.type and device.type != "cuda" or images.is_cuda:
        return images.to(device, non_blocking=True)  # already there (cuda vs cuda:0 alike)
    if device.type == "cuda":
        images = images.pin_memory()
    return images.to(device, non_blocking=True)


class TrainLoader:
    """Augmented training batches, PK- or randomly sampled, on ``device``.

    ``K`` set: PK sampling with ``P = batch_size // K`` identities per batch; ``K`` None:
    random batches. ``len()`` is the number of steps per epoch; ``set_epoch(e)`` makes the
    order and the augmentation a pure function of ``(seed, e, rank)``. ``skipped`` counts
    images that could not be decoded (left out; training goes on).
    """

    def __init__(
        self,
        records: Sequence[Record],
        source: ImageSource,
        *,
        height: int,
        width: int,
        batch_size: int,
        device: torch.device | str = "cpu",
        augment: BatchAugment | None = None,
        K: int | None = None,
        cache: str = "ram",
        num_workers: int = 2,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        progress: bool = True,
    ) -> None:
        self.device = torch.device(device)
        self.store = _ImageStore(
            records, source, height, width, self.device, cache, num_workers, progress
        )
        recs = self.store.records
        if not recs:
            raise DataError(f"{source.root}: the train split has no decodable images")
        pids = [r.pid for r in recs]
        if K:
            self.sampler: PKSampler | RandomBatchSampler = PKSampler(
                pids, max(1, batch_size // K), K, seed, rank, world_size
            )
        else:
            self.sampler = RandomBatchSampler(len(recs), batch_size, seed, rank, world_size)
        self.pids = torch.tensor(pids, dtype=torch.int64, device=self.device)
        self.camids = torch.tensor([r.camid for r in recs], dtype=torch.int64, device=self.device)
        self.augment = augment or BatchAugment()
        self.seed, self.rank, self.epoch = seed, rank, 0

    @property
    def records(self) -> list[Record]:
        """The records that are trained on (undecodable ones removed when cached)."""
        return self.store.records

    @property
    def skipped(self) -> int:
        """Number of images left out because they could not be decoded."""
        return self.store.skipped

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration yields."""
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def _index_batches(self) -> list[list[int]]:
        """The epoch's batches as lists of record indices."""
        return list(self.sampler)

    def _staged(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        for images, rows, delivered in self.store.batches(self._index_batches()):
            if images.device.type == "cpu" and self.device.type == "cpu":
                yield images, rows, delivered  # the CPU augmentation reads rows itself
            else:
                yield _to_device(images, rows, self.device), None, delivered

    def __iter__(self) -> Iterator[Batch]:
        gen = augment_generator(self.device, self.seed, self.epoch, self.rank)
        staged = self._staged()
        if self.device.type == "cuda" and self.store.mode != "device":
            staged = prefetch(staged)
        for images, rows, delivered in staged:
            out = self.augment(images, gen, rows)
            idx = delivered.to(self.device, non_blocking=True)  # no wait for the GPU
            yield Batch(out, self.pids[idx], self.camids[idx])


class TestLoader:
    """Deterministic batches of resized, normalised images (no augmentation) for evaluation.

    With ``cache`` ram/device the decoded images are kept on the source object, so evaluating
    after every epoch decodes the query and gallery only once.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        records: Sequence[Record],
        source: ImageSource,
        *,
        height: int,
        width: int,
        batch_size: int = 128,
        device: torch.device | str = "cpu",
        cache: str = "none",
        num_workers: int = 2,
        progress: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        pixel_range: float = 1.0,
    ) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size
        # after a pass: for each row of its output, the index of its record in ``records``
        # (images that cannot be decoded are skipped, so rows and records can differ)
        self.delivered: list[int] = []
        self.mean, self.std, self.pixel_range = tuple(mean), tuple(std), float(pixel_range)
        make: Callable[[], _ImageStore] = lambda: _ImageStore(  # noqa: E731
            records, source, height, width, self.device, cache, num_workers, progress
        )
        memo = getattr(source, "decoded_cache", None)
        if cache == "none" or not isinstance(memo, dict):
            self.store = make()
        else:
            key = (
                hash(tuple(r.path for r in records)),
                len(records),
                height,
                width,
                cache,
                str(self.device),
            )
            if key not in memo:
                if len(memo) >= 4:
                    memo.pop(next(iter(memo)))
                memo[key] = make()
            self.store = memo[key]
        recs = self.store.records
        self.pids = torch.tensor([r.pid for r in recs], dtype=torch.int64)
        self.camids = torch.tensor([r.camid for r in recs], dtype=torch.int64)

    @property
    def skipped(self) -> int:
        """Number of images left out because they could not be decoded."""
        return self.store.skipped

    def set_epoch(self, epoch: int) -> None:
        """Test order does not depend on the epoch (kept for symmetry with TrainLoader)."""

    def __len__(self) -> int:
        n = len(self.store.records)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.store.records)
        chunks = [list(range(s, min(s + self.batch_size, n))) for s in range(0, n, self.batch_size)]
        staged = self.store.batches(chunks)
        self.delivered = []
        for images, rows, delivered in staged:
            x = _to_device(images, rows, self.device)
            self.delivered += [self.store.kept[i] for i in delivered.tolist()]
            x = normalize_uint8(x, self.mean, self.std, self.pixel_range)
            yield Batch(x, self.pids[delivered], self.camids[delivered])


def augment_from_config(cfg: Any) -> BatchAugment:
    """The ``BatchAugment`` of ``cfg.data_augmentation``."""
    a = cfg.data_augmentation
    unit_mean = tuple(v / cfg.data.pixel_range for v in cfg.data.mean)  # 0..1 units
    return BatchAugment(
        mirror=a.mirror,
        flip_prob=a.flip_prob,
        padding=a.padding,
        random_erasing=a.random_erasing,
        color_jitter=a.color_jitter,
        random_patch=a.random_patch,
        auto_augment=a.auto_augment,
        erase_value=unit_mean,
        mean=unit_mean,
        std=tuple(v / cfg.data.pixel_range for v in cfg.data.std),
    )


def build_train_loader(
    cfg: Any, dataset: ReidDataset, device: torch.device | str, rank: int = 0, world_size: int = 1
) -> TrainLoader:
    """The training loader of ``dataset.train`` as ``cfg`` describes it (PK or random)."""
    require_train(dataset)
    bs = cfg.batch_sampling_params
    return TrainLoader(
        dataset.train,
        dataset.source,
        height=cfg.img_h,
        width=cfg.img_w,
        batch_size=cfg.batch_size,
        device=device,
        augment=augment_from_config(cfg),
        K=bs.K if bs.class_balanced else None,
        cache=cfg.data.cache,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
        rank=rank,
        world_size=world_size,
        progress=cfg.progress and rank == 0,
    )


def build_test_loader(
    cfg: Any, records: Sequence[Record], source: ImageSource, device: torch.device | str
) -> TestLoader:
    """A deterministic, un-augmented loader over ``records`` (query, gallery, val ...)."""
    return TestLoader(
        records,
        source,
        height=cfg.img_h,
        width=cfg.img_w,
        batch_size=cfg.data.test_batch_size,
        device=device,
        cache=cfg.data.cache,
        num_workers=cfg.data.num_workers,
        progress=cfg.progress,
        mean=cfg.data.mean,
        std=cfg.data.std,
        pixel_range=cfg.data.pixel_range,
    )
