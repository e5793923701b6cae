"""Sequence sampling (evenly / random / all, seq_len), grouping images into tracklets, and
the video training loader's clip batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from video_helpers import make_duke_video

from reidkit.data.augment import BatchAugment
from reidkit.data.build import load_dataset
from reidkit.data.clips import eval_clips, evenly, restricted_random, train_clip
from reidkit.data.records import Record
from reidkit.data.video_loaders import VideoTrainLoader
from reidkit.data.video_records import group_tracklets
from reidkit.utils.errors import ConfigError


def test_evenly_spreads_over_the_tracklet() -> None:
    assert evenly(8, 4) == [0, 2, 4, 6]
    assert evenly(10, 3) == [1, 4, 7]  # segments 0-2, 3-5, 6-9
    assert evenly(5, 1) == [2]
    assert evenly(2, 5) == [0, 0, 0, 1, 1]  # short: frames repeat, still in order


def test_restricted_random_one_frame_per_segment() -> None:
    rng = np.random.default_rng(0)
    draws = [restricted_random(12, 4, rng) for _ in range(200)]
    for d in draws:
        assert [x // 3 for x in d] == [0, 1, 2, 3]  # one per segment, in order
    assert len({tuple(d) for d in draws}) > 20  # it is random
    assert all(x in range(0, 12) for d in draws for x in d)
    short = restricted_random(3, 5, rng)
    assert len(short) == 5 and short == sorted(short) and set(short) <= {0, 1, 2}
    same = [train_clip(12, 4, "random", np.random.default_rng(7)) for _ in range(2)]
    assert same[0] == same[1]  # a function of the generator's seed


def test_eval_clips_all_chunks_every_frame() -> None:
    assert eval_clips(7, 3, "all") == [[0, 1, 2], [3, 4, 5], [6]]
    assert eval_clips(7, 3, "evenly") == [evenly(7, 3)]
    with pytest.raises(ConfigError, match="video.test_sampling = 'random'"):
        eval_clips(7, 3, "random")
    with pytest.raises(ConfigError, match="video.train_sampling = 'all'"):
        train_clip(7, 3, "all", np.random.default_rng(0))


def test_grouping_orders_frames_by_sequence_and_frame() -> None:
    recs = [
        Record("q/0002_c1s2_000005_01.jpg", 2, 0),
        Record("q/0002_c1s1_000100_01.jpg", 2, 0),
        Record("q/0002_c1s1_000020_01.jpg", 2, 0),
        Record("q/0002_c3s1_000020_01.jpg", 2, 2),
        Record("q/0001_c2_f0046182.jpg", 1, 1),
        Record("q/0001_c2_f0000999.jpg", 1, 1),
        Record("q/-1_c1s1_000001_01.jpg", -1, 0),
        Record("q/-1_c1s1_000002_01.jpg", -1, 0),
    ]
    tracks = group_tracklets(recs)
    assert [(t.pid, t.camid, len(t)) for t in tracks] == [
        (1, 1, 2),
        (2, 0, 3),
        (2, 2, 1),
        (-1, 0, 1),  # junk: one tracklet per image, not one person
        (-1, 0, 1),
    ]
    assert tracks[0].frames == ("q/0001_c2_f0000999.jpg", "q/0001_c2_f0046182.jpg")
    assert [f[-13:-7] for f in tracks[1].frames] == ["000020", "000100", "000005"]


@pytest.fixture(scope="module")
def duke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_duke_video(tmp_path_factory.mktemp("duke"), train_ids=(1, 2, 3, 4), frames=5)


def _loader(ds, **kw) -> VideoTrainLoader:
    options = dict(height=32, width=16, batch_size=4, seq_len=3, K=2, cache="ram")
    options.update(num_workers=0, progress=False, seed=3)
    options.update(kw)
    return VideoTrainLoader(ds.train, ds.source, **options)


def test_pk_clip_batches(duke: Path) -> None:
    ds = load_dataset(duke)
    loader = _loader(ds)
    batches = list(loader)
    assert len(batches) == len(loader) == 2  # 8 tracklets, 2 per identity, 2 identities a step
    for b in batches:
        assert b.images.shape == (4, 3, 3, 32, 16) and b.images.dtype == torch.float32
        pids = b.pids.tolist()
        assert len(set(pids)) == 2 and all(pids.count(p) == 2 for p in pids)
    loader.set_epoch(1)
    again = list(loader)
    loader.set_epoch(1)
    assert all(torch.equal(a.images, b.images) for a, b in zip(again, list(loader), strict=True))
    assert not torch.equal(batches[0].images, again[0].images)


def test_augmentation_is_the_same_for_every_frame_of_a_clip(duke: Path) -> None:
    ds = load_dataset(duke)
    fill = (0.25, 0.5, 0.75)
    augment = BatchAugment(padding=0, random_erasing=1.0, erase_value=fill)
    loader = _loader(ds, augment=augment, batch_size=8, K=None, seq_len=4)
    (batch,) = list(loader)
    value = torch.tensor(fill).view(1, 3, 1, 1)
    masks = (batch.images == value).all(2)  # (B, T, H, W): the erased box of each frame
    assert masks.any()
    for clip in masks:
        assert all(torch.equal(clip[0], frame) for frame in clip[1:])  # same box, every frame
    assert len({m[0].nonzero().min(0).values.tolist().__repr__() for m in masks}) > 1


def test_undecodable_frames_leave_their_tracklet(duke: Path, tmp_path: Path) -> None:
    import shutil

    root = Path(shutil.copytree(duke, tmp_path / "d"))
    ds = load_dataset(root)
    (root / ds.train[0].frames[1]).write_bytes(b"not a jpeg")
    ram = _loader(ds)
    assert ram.skipped == 1 and len(ram.spans[0]) == 4
    assert all(b.images.shape[1] == 3 for b in ram)
    none = _loader(ds, cache="none", seq_len=5, sampling="evenly")  # every frame in the clip
    batches = list(none)
    assert sum(b.images.shape[0] for b in batches) == 7  # the clip of the bad frame dropped
    assert all(b.images.shape[1:] == (5, 3, 32, 16) for b in batches)
    assert none.skipped == 1
