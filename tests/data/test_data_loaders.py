"""Train / test loaders: caches, determinism, batches, bad images, config mapping."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.io import ImageReadMode, decode_image

from reidkit.config import validate_config
from reidkit.data import (
    BatchAugment,
    TestLoader,
    TrainLoader,
    build_dataset,
    build_test_loader,
    build_train_loader,
    load_market,
)
from reidkit.data.augment import IMAGENET_MEAN, IMAGENET_STD
from reidkit.utils.errors import DataError


def _loader(ds, cache: str, **kw) -> TrainLoader:
    args = dict(
        height=64,
        width=32,
        batch_size=8,
        K=4,
        cache=cache,
        num_workers=0,
        progress=False,
        augment=BatchAugment(padding=4, random_erasing=0.5),
    )
    args.update(kw)
    return TrainLoader(ds.train, ds.source, **args)


def test_train_batches_pk_and_deterministic(synth_small: Path) -> None:
    ds = load_market(synth_small)
    loader = _loader(ds, "ram")
    loader.set_epoch(2)
    first = list(loader)
    assert len(first) == len(loader) > 0
    b = first[0]
    assert b.images.shape == (8, 3, 64, 32) and b.images.dtype == torch.float32
    assert b.pids.dtype == torch.int64 and b.pids.unique().numel() == 2
    paths = {r.path: r for r in ds.train}
    assert len(paths) == len(loader.records)
    loader.set_epoch(2)
    again = list(loader)
    for x, y in zip(first, again, strict=True):
        assert torch.equal(x.images, y.images) and torch.equal(x.pids, y.pids)
    loader.set_epoch(3)
    assert not torch.equal(next(iter(loader)).images, first[0].images)


def test_cache_modes_give_the_same_batches(synth_small: Path) -> None:
    ds = load_market(synth_small)
    loaders = [_loader(ds, c) for c in ("ram", "none", "device")]
    for ld in loaders:
        ld.set_epoch(1)
    ref = list(loaders[0])
    for other in loaders[1:]:
        for x, y in zip(ref, other, strict=True):
            torch.testing.assert_close(x.images, y.images)
            assert torch.equal(x.pids, y.pids) and torch.equal(x.camids, y.camids)


def test_none_cache_with_worker_processes(synth_small: Path) -> None:
    ds = load_market(synth_small)
    a, b = _loader(ds, "none", num_workers=2), _loader(ds, "ram")
    torch.testing.assert_close(next(iter(a)).images, next(iter(b)).images)


def test_test_loader_is_resize_and_normalise(synth_small: Path) -> None:
    ds = load_market(synth_small)
    loader = TestLoader(ds.gallery, ds.source, height=48, width=24, batch_size=7, cache="ram")
    batches = list(loader)
    assert len(batches) == len(loader) and sum(len(b.pids) for b in batches) == len(ds.gallery)
    assert [int(p) for b in batches for p in b.pids] == [r.pid for r in ds.gallery]
    raw = decode_image(str(synth_small / ds.gallery[8].path), ImageReadMode.RGB)
    ref = TF.resize(raw, [48, 24], antialias=True)
    ref = TF.normalize(TF.to_dtype(ref, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(batches[1].images[1], ref, atol=1e-5, rtol=0)
    again = TestLoader(ds.gallery, ds.source, height=48, width=24, batch_size=7, cache="ram")
    assert again.store is loader.store  # decoded once, reused by the next evaluation


def test_bad_images_are_converted_or_skipped_and_counted(synth_small: Path, tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "bad"
    shutil.copytree(synth_small, root)
    train = sorted((root / "bounding_box_train").iterdir())
    train[0].write_bytes(b"")  # zero bytes: left out when listing
    train[1].write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")  # corrupt
    train[2].write_bytes(train[2].read_bytes()[:300])  # truncated
    Image.open(train[3]).convert("L").save(train[3], format="JPEG")  # grayscale: converted
    Image.open(train[4]).convert("RGBA").save(train[4], format="PNG")  # RGBA: converted
    ds = load_market(root)
    assert ds.skipped == 1 and "empty file" in ds.problems[0]
    ram = _loader(ds, "ram")
    assert ram.skipped == 2 and len(ram.records) == len(ds.train) - 2
    assert sorted(ram.store.failed) == sorted(r.path for r in ds.train[:2])
    assert sum(len(b.pids) for b in ram) == len(ram) * 8
    for cache in ("ram", "none"):  # test loaders: every image visited once
        test = TestLoader(ds.train, ds.source, height=32, width=16, batch_size=5, cache=cache)
        delivered = sum(len(b.pids) for b in test)
        assert test.skipped == 2 and delivered == len(ds.train) - 2
    none = _loader(ds, "none")
    for _ in range(3):  # decoding per batch: bad images dropped, the epoch goes on
        assert all(len(b.pids) <= 8 for b in none)
        none.set_epoch(none.epoch + 1)
    assert 1 <= none.skipped <= 2


def test_all_images_bad_is_a_data_error(tmp_path: Path, synth_small: Path) -> None:
    root = tmp_path / "allbad"
    shutil.copytree(synth_small, root)
    for f in (root / "bounding_box_train").iterdir():
        f.write_bytes(b"garbage")
    ds = load_market(root)
    with pytest.raises(DataError, match="no decodable images"):
        _loader(ds, "ram")


def test_build_loaders_from_config(synth_small: Path) -> None:
    cfg = validate_config(
        {
            "batches_dir": str(synth_small),
            "img_h": 32,
            "img_w": 16,
            "batch_size": 6,
            "batch_sampling_params": {"class_balanced": False},
            "progress": False,
            "data": {"cache": "ram", "num_workers": 0, "test_batch_size": 5},
            "data_augmentation": ["mirro"],
        }
    )
    ds = build_dataset(cfg)
    train = build_train_loader(cfg, ds, "cpu")
    assert len(train) == len(ds.train) // 6
    assert train.augment.padding == 10 and train.augment.erase_prob == 0
    b = next(iter(train))
    assert b.images.shape == (6, 3, 32, 16)
    test = build_test_loader(cfg, ds.query, ds.source, "cpu")
    assert len(test) == -(-len(ds.query) // 5)


def test_prefetch_keeps_order_and_raises() -> None:
    from reidkit.data.loaders import prefetch

    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise DataError("boom")

    got = []
    with pytest.raises(DataError, match="boom"):
        for x in prefetch(broken()):
            got.append(x)
    assert got == [1]
    early = prefetch(iter(range(1000)), depth=2)
    assert next(early) == 0
    early.close()  # stopping early does not hang
