"""Every writer of the package on a disk that is really full or read-only (a small tmpfs):
one ``DiskError`` naming the file and the reason, the previous file byte-identical, no
temporary file left behind. (The command line under a file size limit: test_faults_disk.py.)"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from disk_helpers import leftovers, remount, tmpfs
from fault_helpers import snapshot

from reidkit.data.crops import video_to_dataset
from reidkit.data.pack import pack_dataset, unpack_store
from reidkit.deploy.export import export_onnx
from reidkit.deploy.features_io import Features, save_features
from reidkit.deploy.index import GalleryIndex
from reidkit.models import ReidModel
from reidkit.models.checkpoint import save_checkpoint
from reidkit.utils.errors import DiskError
from reidkit.utils.files import atomic_write_text
from reidkit.utils.write_errors import disk_error


def _fill(disk: Path) -> None:
    """Write a filler file until the file system is full (ENOSPC)."""
    chunk = b"\0" * (64 << 10)
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


def _writers(disk: Path, data: Path) -> dict[str, object]:
    """name -> a function writing that file (each writes more than a few KB)."""
    torch.manual_seed(0)
    model = ReidModel("osnet_x0_25", 3).eval()
    feats = Features(np.random.default_rng(0).normal(size=(64, 128)).astype(np.float32),
                     [f"{i:04d}_c1s1_000001_00.jpg" for i in range(64)])  # fmt: skip
    index = GalleryIndex(128, "exact", "cosine")
    index.add(feats)
    return {
        "best.pth": lambda: save_checkpoint({"model": model.state_dict()}, disk / "best.pth"),
        "model.onnx": lambda: export_onnx(model, disk / "model.onnx", 32, 16, num_images=2),
        "f.npz": lambda: save_features(feats, disk / "f.npz"),
        "report.html": lambda: atomic_write_text(disk / "report.html", "<p>x</p>" * 20_000),
        "s.lmdb": lambda: pack_dataset(data, disk / "s.lmdb", progress=False),
        "index": lambda: index.save(disk / "index"),
    }


def test_a_full_disk_is_one_error_and_the_previous_files_stay(faults_data: Path, tmp_path):
    with tmpfs(tmp_path / "disk", 24 << 20) as disk:
        writers = _writers(disk, faults_data)
        for write in writers.values():  # the previous versions, while there is room
            write()
        before = snapshot(disk)
        _fill(disk)
        for name, write in writers.items():
            with pytest.raises(DiskError) as info:
                write()
            line = str(info.value)
            assert line.startswith(f"{disk / name}: cannot write: disk full"), line
            assert f"the previous {name} is unchanged" in line and "\n" not in line
        (disk / "filler").unlink()
        assert snapshot(disk) == before and not leftovers(disk)


def test_a_read_only_disk_is_one_error_and_nothing_is_written(faults_data, tmp_path):
    with tmpfs(tmp_path / "disk", 24 << 20) as disk:
        store = disk / "s.lmdb"
        pack_dataset(faults_data, store, progress=False)
        remount(disk, ro=True)
        try:
            for name, write in _writers(disk, faults_data).items():
                with pytest.raises(DiskError, match=f"{name}: cannot write: read-only"):
                    write()
            with pytest.raises(DiskError, match="out: cannot write: read-only file system"):
                unpack_store(store, disk / "out", progress=False)
        finally:
            remount(disk, ro=False)
        assert sorted(p.name for p in disk.iterdir()) == ["s.lmdb"]


def test_unpack_on_a_full_disk_leaves_no_half_written_image(faults_data, tmp_path):
    store = tmp_path / "s.lmdb"
    pack_dataset(faults_data, store, progress=False)
    with tmpfs(tmp_path / "disk", 96 << 10) as disk:  # room for part of the images
        with pytest.raises(DiskError, match="cannot write: disk full"):
            unpack_store(store, disk / "out", progress=False)
        assert not [p for p in (disk / "out").rglob("*") if p.is_file()]


def _clip(folder: Path) -> tuple[Path, Path]:
    """A 10-frame video of two noisy 'people' and its MOT boxes."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    video = folder / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    lines = []
    for frame in range(1, 11):
        image = np.full((120, 160, 3), 128, np.uint8)
        for pid, x in ((1, 10 + 5 * frame), (2, 120 - 5 * frame)):
            image[30:90, x : x + 24] = rng.integers(0, 256, (60, 24, 3), dtype=np.uint8)
            lines.append(f"{frame},{pid},{x},30,24,60,1,1,1.0")
        writer.write(image)
    writer.release()
    (folder / "gt.txt").write_text("\n".join(lines) + "\n")
    return video, folder / "gt.txt"


def test_crops_on_a_full_disk_keep_the_earlier_output(tmp_path: Path):
    video, mot = _clip(tmp_path)
    with tmpfs(tmp_path / "disk", 4 << 20) as disk:
        out = disk / "crops"
        video_to_dataset(video, out, mot=mot, labelled=True, min_track=2)
        before = snapshot(out)
        _fill(disk)
        with pytest.raises(DiskError, match=f"{out}: cannot write: disk full"):
            video_to_dataset(video, out, mot=mot, labelled=True, min_track=2, overwrite=True)
        assert snapshot(out) == before and sorted(p.name for p in disk.iterdir()) == [
            "crops",
            "filler",
        ]


def test_errors_that_are_not_write_failures_are_left_alone(tmp_path: Path):
    assert disk_error(tmp_path / "x", KeyError("model")) is None
    assert disk_error(tmp_path / "x", ValueError("bad value")) is None
    assert disk_error(tmp_path / "x", RuntimeError("shapes do not match")) is None
    e = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    line = str(disk_error(tmp_path / "best.pth", e))
    assert line.startswith(f"{tmp_path / 'best.pth'}: cannot write: write failed (")
    e = RuntimeError("open file failed with strerror: No space left on device")
    assert "cannot write: disk full" in str(disk_error(tmp_path / "a.pth", e))
