"""Decoding encoded images into uint8 tensors of the model's input size, once.

``decode_resized`` turns bytes into a ``(3, H, W)`` uint8 tensor through the package's one
decoder (``images.decode_chw``: every mode to RGB, the first frame of a multi-frame file).
``decode_records`` decodes a whole record list into one ``(N, 3, H, W)`` tensor, in worker
processes when there are many images, skipping (and reporting) images that cannot be decoded
instead of failing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from reidkit.data.images import decode_chw
from reidkit.data.records import ImageSource, Record
from reidkit.utils.errors import DataError
from reidkit.utils.logging import get_logger

PARALLEL_MIN_IMAGES = 512  # below this, decoding in-process beats starting workers


def decode_resized(data: bytes, height: int, width: int, name: str = "image") -> torch.Tensor:
    """uint8 ``(3, height, width)`` RGB tensor of encoded ``data``; ``DataError`` if unusable
    (the size is checked from the header first: ``images.MAX_PIXELS``)."""
    img = decode_chw(data, name)
    if img.shape[-2:] != (height, width):
        img = TF.resize(img, [height, width], antialias=True)
    return img.contiguous()


class _DecodeSet(Dataset):
    """Map-style dataset: index -> (index, uint8 image or None, error message)."""

    def __init__(self, records: Sequence[Record], source: ImageSource, height: int, width: int):
        self.records, self.source, self.height, self.width = records, source, height, width

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        path = self.records[i].path
        try:
            data = self.source.read(path)
            return i, decode_resized(data, self.height, self.width, path), ""
        except DataError as e:
            if type(e).__name__ == "StoreOpenError":  # the whole store is unusable
                raise
            return i, None, str(e)


@dataclass
class DecodedBatch:
    """One decoded batch: ``images[j]`` is record ``indices[j]``; ``failures`` = (index, why).

    Images are stacked inside the worker so a batch crosses processes as one shared tensor.
    """

    indices: list[int]
    images: torch.Tensor | None
    failures: list[tuple[int, str]]


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> DecodedBatch:
    good = [(i, img) for i, img, _ in items if img is not None]
    images = torch.stack([img for _, img in good]) if good else None
    failures = [(i, err) for i, img, err in items if img is None]
    return DecodedBatch([i for i, _ in good], images, failures)


@contextlib.contextmanager
def single_threaded(enabled: bool = True) -> Iterator[None]:
    """Run torch ops on one intra-op thread (decoding small images in-process: a thread pool
    only adds wake-up costs, badly so on a busy machine); restores the setting after."""
    before = torch.get_num_threads()
    if enabled and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def iterate_decoded(
    records: Sequence[Record],
    source: ImageSource,
    height: int,
    width: int,
    num_workers: int = 0,
    batches: Sequence[Sequence[int]] | None = None,
) -> DataLoader:
    """A DataLoader yielding one ``DecodedBatch`` per batch of record indices.

    ``batches`` (lists of indices) fixes the grouping; default: chunks of 64 in order.
    """
    ds = _DecodeSet(records, source, height, width)
    if batches is None:
        batches = [range(s, min(s + 64, len(records))) for s in range(0, len(records), 64)]
    return DataLoader(
        ds,
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_collate,
        persistent_workers=False,
    )


@dataclass
class DecodedImages:
    """Images decoded once: ``images[j]`` is record ``kept[j]``; ``failures`` = (path, why)."""

    images: torch.Tensor
    kept: list[int]
    failures: list[tuple[str, str]] = field(default_factory=list)


def decode_records(
    records: Sequence[Record],
    source: ImageSource,
    height: int,
    width: int,
    num_workers: int = 2,
    progress: bool = True,
    pin_memory: bool = False,
) -> DecodedImages:
    """Decode every record once into one uint8 tensor; undecodable images are skipped."""
    n = len(records)
    out = torch.empty((n, 3, height, width), dtype=torch.uint8, pin_memory=pin_memory)
    ok = torch.zeros(n, dtype=torch.bool)
    failures: list[tuple[str, str]] = []
    workers = num_workers if n >= PARALLEL_MIN_IMAGES else 0
    bar = tqdm(total=n, desc=f"caching {n} images", disable=not progress, leave=False)
    with single_threaded(workers == 0):
        for batch in iterate_decoded(records, source, height, width, workers):
            failures += [(records[i].path, err) for i, err in batch.failures]
            if batch.images is not None:
                rows = torch.as_tensor(batch.indices, dtype=torch.int64)
                out.index_copy_(0, rows, batch.images)
                ok[rows] = True
            bar.update(len(batch.indices) + len(batch.failures))
    bar.close()
    kept = ok.nonzero().flatten().tolist()
    if failures:
        shown = "; ".join(why for _, why in failures[:3])
        more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
        get_logger().warning(
            f"skipped {len(failures)} image(s) that cannot be decoded: {shown}{more}"
        )
        out = out[ok]
        if pin_memory:
            out = out.pin_memory()
    return DecodedImages(out, kept, failures)
