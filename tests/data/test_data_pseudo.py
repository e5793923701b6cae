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


def test_too_few_clusters_for_a_batch_is_one_line(tmp_path: Path) -> None:
    loader = _loader(_crops(tmp_path / "crops", 12))
    with pytest.raises(DataError, match="3 pseudo-identities, but a batch takes P = 4"):
        loader.set_labels(np.repeat(np.arange(3), 4))
    with pytest.raises(DataError, match="set_labels"):
        list(loader)


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
