"""The video training loader: PK (or random) batches of tracklets, each a clip of ``seq_len``
frames, as ``(B, T, 3, H, W)`` tensors on the model's device.

Frames are decoded once into the same uint8 store as images (``data.cache``; ``none`` decodes
each batch's frames again), clips are drawn by ``clips.train_clip`` from a generator that is a
pure function of ``(seed, epoch, rank)``, and the augmentation is batched like the image
loader's, with one set of geometric parameters per clip (flip, pad-crop offset, erased box):
every frame of a clip is flipped / shifted / erased alike, so the clip stays one coherent
motion. Colour extras (jitter, patch, auto-augment) are drawn per frame. ``batch_size`` counts
clips (``batch_sampling_params.K`` tracklets per identity with PK sampling).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from reidkit.data.augment import AugmentParams, BatchAugment
from reidkit.data.clips import train_clip
from reidkit.data.loaders import (
    Batch,
    _ImageStore,
    _to_device,
    augment_from_config,
    augment_generator,
    prefetch,
)
from reidkit.data.records import ImageSource
from reidkit.data.samplers import PKSampler, RandomBatchSampler
from reidkit.data.video_records import (
    TrackletRecord,
    VideoDataset,
    frame_records,
    require_video_train,
)
from reidkit.utils.errors import DataError


def clip_rng(seed: int, epoch: int, rank: int) -> np.random.Generator:
    """The generator of one epoch's clip draws: a pure function of its arguments."""
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, rank, 0xC11B])


def repeat_params(params: AugmentParams, times: int) -> AugmentParams:
    """Each clip's parameters repeated for its ``times`` frames."""
    return AugmentParams(
        *(getattr(params, f.name).repeat_interleave(times) for f in fields(AugmentParams))
    )


class VideoTrainLoader:
    """Augmented clip batches of tracklets on ``device`` (see the module docstring).

    ``K`` set: PK sampling over identities (``batch_size // K`` identities of ``K``
    tracklets each); ``K`` None: random tracklets. ``len()`` is the number of steps per
    epoch; ``set_epoch(e)`` fixes the order, the clips and the augmentation of epoch ``e``.
    Frames that cannot be decoded are left out of their tracklet (a tracklet left with none
    is dropped); ``skipped`` counts them.
    """

    def __init__(
        self,
        tracklets: Sequence[TrackletRecord],
        source: ImageSource,
        *,
        height: int,
        width: int,
        batch_size: int,
        seq_len: int,
        sampling: str = "random",
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
        frames, spans = frame_records(tracklets)
        self.store = _ImageStore(
            frames, source, height, width, self.device, cache, num_workers, progress
        )
        row_of = {orig: row for row, orig in enumerate(self.store.kept)}
        kept = [
            (t, [row_of[i] for i in span if i in row_of])
            for t, span in zip(tracklets, spans, strict=True)
        ]
        kept = [(t, rows) for t, rows in kept if rows]
        if not kept:
            raise DataError(f"{source.root}: the train split has no decodable frames")
        self.tracklets = [t for t, _ in kept]
        self.spans = [rows for _, rows in kept]
        self.seq_len, self.sampling = int(seq_len), sampling
        train_clip(1, self.seq_len, sampling, clip_rng(0, 0, 0))  # checks the method
        pids = [t.pid for t in self.tracklets]
        if K:
            self.sampler: PKSampler | RandomBatchSampler = PKSampler(
                pids, max(1, batch_size // K), K, seed, rank, world_size
            )
        else:
            n = len(self.tracklets)
            self.sampler = RandomBatchSampler(n, batch_size, seed, rank, world_size)
        self.pids = torch.tensor(pids, dtype=torch.int64, device=self.device)
        self.camids = torch.tensor(
            [t.camid for t in self.tracklets], dtype=torch.int64, device=self.device
        )
        self.augment = augment or BatchAugment()
        self.seed, self.rank, self.epoch = seed, rank, 0

    @property
    def skipped(self) -> int:
        """Frames left out because they could not be decoded."""
        return self.store.skipped

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order, clips and augmentation the next iteration yields."""
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def _clip_batches(self) -> list[tuple[list[int], list[int]]]:
        """The epoch's batches: (tracklet indices, their clips' frame rows, clip by clip)."""
        rng = clip_rng(self.seed, self.epoch, self.rank)
        out = []
        for idx in self.sampler:
            rows: list[int] = []
            for i in idx:
                span = self.spans[i]
                rows += [span[j] for j in train_clip(len(span), self.seq_len, self.sampling, rng)]
            out.append((list(idx), rows))
        return out

    def _staged(self) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor | None]]:
        """Per batch: (tracklet indices of its complete clips, frames, rows into frames)."""
        batches = self._clip_batches()
        staged = self.store.batches([rows for _, rows in batches])
        for (idx, rows), (images, take, delivered) in zip(batches, staged, strict=True):
            if take is None and len(delivered) != len(rows):  # decoded per batch, some failed
                idx, take = self._complete(idx, rows, delivered.tolist())
                if not idx:
                    continue
            if images.device.type == "cpu" and self.device.type == "cpu":
                yield idx, images, take
            else:
                yield idx, _to_device(images, take, self.device), None

    def _complete(
        self, idx: list[int], rows: list[int], delivered: list[int]
    ) -> tuple[list[int], torch.Tensor]:
        """The clips of a batch whose frames all decoded, and their rows in the decoded batch
        (the decoded batch holds the wanted frames in order, failed ones left out)."""
        good = set(delivered)
        position, pos = [], 0
        for r in rows:
            position.append(pos if r in good else -1)
            pos += r in good
        t = self.seq_len
        keep = [c for c in range(len(idx)) if min(position[c * t : (c + 1) * t]) >= 0]
        take = [position[c * t + j] for c in keep for j in range(t)]
        return [idx[c] for c in keep], torch.as_tensor(take, dtype=torch.int64)

    def __iter__(self) -> Iterator[Batch]:
        gen = augment_generator(self.device, self.seed, self.epoch, self.rank)
        staged: Any = self._staged()
        if self.device.type == "cuda" and self.store.mode != "device":
            staged = prefetch(staged)
        for idx, images, take in staged:
            b, t = len(idx), self.seq_len
            h, w = images.shape[-2:]
            params = repeat_params(self.augment.draw(b, h, w, gen), t)
            out = self.augment.apply(images, params, take, gen)
            sel = torch.as_tensor(idx, dtype=torch.int64).to(self.device, non_blocking=True)
            yield Batch(out.view(b, t, *out.shape[1:]), self.pids[sel], self.camids[sel])


def build_video_train_loader(
    cfg: Any, dataset: VideoDataset, device: torch.device | str, rank: int = 0, world_size: int = 1
) -> VideoTrainLoader:
    """The training loader of ``dataset.train`` as ``cfg`` (``video``, sampling) describes it."""
    require_video_train(dataset)
    bs = cfg.batch_sampling_params
    return VideoTrainLoader(
        dataset.train,
        dataset.source,
        height=cfg.img_h,
        width=cfg.img_w,
        batch_size=cfg.batch_size,
        seq_len=cfg.video.seq_len,
        sampling=cfg.video.train_sampling,
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
