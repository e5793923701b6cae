"""Unlabeled crops and the pseudo-label loader of ``reidkit adapt``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidkit.config import Config
from reidkit.data import build_dataset
from reidkit.data.loaders import TrainLoader
from reidkit.data.pseudo import SOURCE_OFFSET, PseudoLabelLoader, unlabeled_records
from reidkit.utils.errors import DataError


def _crops(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(sub / f"f{i:04d}_c{1 + i % 3}_t1.jpg")
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def _loader(folder: Path, **kw) -> PseudoLabelLoader:
    records, source = unlabeled_records(folder)
    args = {"height": 32, "width": 16, "batch_size": 8, "K": 2, "cache": "ram", "num_workers": 0}
    return PseudoLabelLoader(records, source, progress=False, **{**args, **kw})


def test_unlabeled_records_are_every_image_at_any_depth(tmp_path: Path) -> None:
    records, source = unlabeled_records(_crops(tmp_path / "crops", 6))
    assert len(records) == 6 and {r.pid for r in records} == {-1}
    assert [r.path for r in records] == sorted(r.path for r in records)
    assert records[0].path.startswith("a/") and {r.camid for r in records} == {0, 1, 2}
    assert source.read(records[0].path)[:2] == b"\xff\xd8"


def test_missing_or_empty_unlabeled_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unlabeled folder not found"):
        unlabeled_records(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images in the unlabeled folder") as e:
        unlabeled_records(tmp_path / "empty")
    assert "\n" not in str(e.value)


def test_pk_batches_over_pseudo_identities(tmp_path: Path) -> None:
    loader = _loader(_crops(tmp_path / "crops", 24), steps=5)
    labels = np.repeat(np.arange(6), 4)
    labels[[3, 7]] = -1  # outliers never appear
    loader.set_labels(labels)
    loader.set_epoch(2)
    batches = list(loader)
    assert len(loader) == len(batches) == 5
    for b in batches:
        assert b.images.shape == (8, 3, 32, 16)
        pids = b.pids.tolist()
        assert len(set(pids)) == 4  # P = 8 // 2 distinct pseudo-identities
        assert all(pids.count(p) == 2 for p in set(pids)) and -1 not in pids
    again = list(loader)  # the order is a function of (seed, epoch) and the labels
    assert all(torch.equal(a.pids, b.pids) for a, b in zip(batches, again, strict=True))
    rows = list(loader.plain_batches(batch_size=10))
    assert torch.cat([b.pids for b in rows]).tolist() == list(range(24))


def test_fewer_clusters_than_P_fill_the_batch(tmp_path: Path) -> None:
    loader = _loader(_crops(tmp_path / "crops", 12), steps=6)  # P = 4, K = 2, batch 8
    with pytest.raises(DataError, match="set_labels"):
        list(loader)
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2, -1, -1])  # 3 clusters, one of 2 crops
    loader.set_labels(labels)
    assert "3 pseudo-identities, fewer than P = 4" in loader.describe_layout()
    batches = list(loader)
    assert len(batches) == 6
    for b in batches:
        pids = b.pids.tolist()
        assert b.images.shape[0] == 8 and set(pids) == {0, 1, 2}  # every cluster, batch kept
        assert sorted(pids.count(p) for p in (0, 1, 2)) == [2, 3, 3]
    with pytest.raises(DataError, match="no pseudo-identities"):
        loader.set_labels(np.full(12, -1))


def test_crop_tracklets_from_names(tmp_path: Path) -> None:
    from reidkit.data.crops import crop_name, parse_crop_name
    from reidkit.data.pseudo import crop_tracklets
    from reidkit.data.records import Record

    assert parse_crop_name(crop_name(12, 3) + ".jpg") == (12, 3)
    assert parse_crop_name("c2_f000012_t0003_x.png") == (12, 3)
    assert parse_crop_name("0001_c1s1_000012_01.jpg") is None
    names = [  # (folder/name, camera): tracklets 1 (frames 1-5), 2 (4-9), 3 (10-12) of cam 0
        ("f000001_t0001.jpg", 0), ("f000005_t0001.jpg", 0), ("f000004_t0002.jpg", 0),
        ("f000009_t0002.jpg", 0), ("f000010_t0003.jpg", 0), ("f000012_t0003.jpg", 0),
        ("f000002_t0001.jpg", 1),  # camera 1's track 1: another tracklet, no overlap test
        ("b/f000002_t0001.jpg", 0),  # another folder (video): another tracklet
        ("other.jpg", 0),  # no tracklet: a unit of its own
    ]  # fmt: skip
    found = crop_tracklets([Record(n, -1, c) for n, c in names])
    assert found is not None and found.num_tracklets == 5 and found.num_units == 6
    u = found.unit.tolist()
    assert u[0] == u[1] and u[2] == u[3] and u[4] == u[5] and len(set(u)) == 6
    assert found.cannot_link.tolist() == [[u[0], u[2]]]  # 1-5 overlaps 4-9; 10-12 overlaps none
    assert crop_tracklets([Record("a.jpg", -1, 0)]) is None


def test_source_batches_follow_each_target_batch(tmp_path: Path, synth_small: Path) -> None:
    ds = build_dataset(Config(batches_dir=str(synth_small)))
    source = TrainLoader(
        ds.train, ds.source, height=32, width=16, batch_size=4, K=2, cache="ram", num_workers=0
    )
    loader = _loader(_crops(tmp_path / "crops", 16), steps=7, source_loader=source)
    loader.set_labels(np.repeat(np.arange(8), 2))
    batches = list(loader)
    assert len(batches) == 7  # the source is cycled as often as needed
    for b in batches:
        assert b.images.shape[0] == 12
        assert (b.pids[:8] < SOURCE_OFFSET).all() and (b.pids[8:] >= SOURCE_OFFSET).all()
        assert set((b.pids[8:] - SOURCE_OFFSET).tolist()) <= set(range(ds.num_train_ids))
