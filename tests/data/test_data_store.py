"""Packed LMDB stores: round trip, atomicity, workers, unpack, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest
import torch
from data_test_helpers import jpeg_bytes

from reidkit.config import validate_config
from reidkit.data import TrainLoader, build_dataset, load_dataset
from reidkit.data.pack import pack_dataset, unpack_store
from reidkit.data.store import META_KEY, load_store
from reidkit.utils.errors import DataError


def test_pack_load_is_byte_identical(synth_small: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.lmdb"
    summary = pack_dataset(synth_small, out, progress=False)
    assert out.is_file() and not Path(f"{out}.partial").exists()
    folder, store = load_dataset(synth_small), load_dataset(out)
    assert summary["images"] == len(folder.train) + len(folder.query) + len(folder.gallery)
    for split in ("train", "query", "gallery"):
        assert getattr(store, split) == getattr(folder, split)
    assert (store.name, store.num_train_ids, store.class_names) == (
        folder.name,
        folder.num_train_ids,
        folder.class_names,
    )
    for r in folder.train + folder.query + folder.gallery:
        assert store.source.read(r.path) == folder.source.read(r.path)
    cfg = validate_config({"batches_dir": str(out)})
    assert build_dataset(cfg).train == folder.train


def test_store_feeds_worker_processes(synth_small: Path, tmp_path: Path) -> None:
    out = tmp_path / "w.lmdb"
    pack_dataset(synth_small, out, progress=False)
    ds = load_store(out)
    kw = dict(height=32, width=16, batch_size=8, K=4, num_workers=2, progress=False)
    a = TrainLoader(ds.train, ds.source, cache="none", **kw)
    b = TrainLoader(
        load_dataset(synth_small).train, load_dataset(synth_small).source, cache="ram", **kw
    )
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.images, y.images)


def test_incomplete_store_never_loads(tmp_path: Path) -> None:
    path = tmp_path / "half.lmdb"
    env = lmdb.open(str(path), subdir=False, lock=False, map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"query/0001_c1s1_000001_01.jpg", jpeg_bytes())
        txn.put(META_KEY, json.dumps({"name": "x"}).encode())
    env.close()
    with pytest.raises(DataError, match="incomplete reidkit store"):
        load_store(path)
    with pytest.raises(DataError, match="no such LMDB store"):
        load_store(tmp_path / "missing.lmdb")


def test_interrupted_pack_leaves_no_store(tmp_path: Path) -> None:
    root = tmp_path / "big"
    data = jpeg_bytes(16, 8)
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (root / split).mkdir(parents=True)
    for i in range(4000):
        split = ("bounding_box_train", "query", "bounding_box_test")[i % 3]
        (root / split / f"{i % 300 + 1:04d}_c{i % 6 + 1}s1_{i:06d}_01.jpg").write_bytes(data)
    out = tmp_path / "big.lmdb"
    code = (
        "import sys; from reidkit.data.pack import pack_dataset; "
        "pack_dataset(sys.argv[1], sys.argv[2], progress=False, commit_every=10)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(out)])
    partial = Path(f"{out}.partial")
    deadline = time.monotonic() + 120
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    assert partial.exists() and not out.exists()
    with pytest.raises(DataError, match=r"interrupted pack left \.partial"):
        load_store(out)
    copy = tmp_path / "copy.lmdb"
    shutil.copy(partial, copy)
    with pytest.raises(DataError, match="incomplete reidkit store"):
        load_store(copy)
    pack_dataset(root, out, progress=False)  # packing again replaces the partial file
    assert not partial.exists() and len(load_store(out).train) > 0


def test_unpack_reloads_the_same_dataset(tmp_path: Path) -> None:
    for cls in ("a", "b", "c", "d"):
        for k in range(2):
            p = tmp_path / "src" / cls / f"{k}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(jpeg_bytes(seed=k + ord(cls)))
    pack_dataset(tmp_path / "src", tmp_path / "c.lmdb", progress=False)
    unpack_store(tmp_path / "c.lmdb", tmp_path / "out", progress=False)
    a, b = load_dataset(tmp_path / "src"), load_dataset(tmp_path / "out")
    assert (a.train, a.query, a.gallery, a.class_names) == (
        b.train,
        b.query,
        b.gallery,
        b.class_names,
    )
    assert all(a.source.read(r.path) == b.source.read(r.path) for r in a.train)


def test_pack_and_info_cli(synth_small: Path, tmp_path: Path, capsys) -> None:
    import argparse

    from reidkit.app.commands.data import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "cli.lmdb"
    for argv in (
        ["pack", str(synth_small), str(out)],
        ["data", "info", str(out)],
        ["unpack", str(out), str(tmp_path / "un")],
    ):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "packed" in text and "market1501" in text and "unpacked" in text
    assert "train" in text and "64x32" in text


def test_a_store_cut_before_its_header_is_called_incomplete(tmp_path: Path) -> None:
    """A copy taken the instant a pack began (0 bytes, or part of LMDB's first page) is named
    an incomplete store, not a bare LMDB error (the interrupted-pack test can race there)."""
    for size in (0, 100):
        short = tmp_path / f"short_{size}.lmdb"
        short.write_bytes(b"\0" * size)
        with pytest.raises(DataError, match="incomplete reidkit store"):
            load_store(short)
