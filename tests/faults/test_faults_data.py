"""Damaged data: truncated stores, bad and hostile images, unusable splits, plans that do not
fit. Each ends in one line (or, for a bad image, a skipped and counted image)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import lmdb
import numpy as np
from fault_helpers import assert_one_line_error, run_cli, tiny_params, write_json
from PIL import Image

from reidkit.data.pack import pack_dataset
from reidkit.data.plan import available_ram
from reidkit.data.store import DONE_KEY, META_KEY


def _bomb_jpeg() -> bytes:
    """A small JPEG whose header claims 15000x15000 pixels (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 80, 40)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (15000).to_bytes(2, "big") + (15000).to_bytes(2, "big")
    return bytes(data)


def test_truncated_store_is_one_line_never_sigbus(faults_data: Path, tmp_path: Path):
    store = tmp_path / "s.lmdb"
    pack_dataset(faults_data, store, progress=False)
    cut = tmp_path / "cut.lmdb"
    cut.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    cfg = write_json(tmp_path / "p.json", tiny_params(cut, tmp_path / "runs"))
    for args in (["data", "info", str(cut)], ["unpack", str(cut), str(tmp_path / "o")]):
        assert_one_line_error(run_cli(*args, cwd=tmp_path), "damaged LMDB store")
    r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "r", cwd=tmp_path)
    assert_one_line_error(r, "damaged LMDB store")
    assert not (tmp_path / "o").exists() and not (tmp_path / "runs").exists()


def test_unpack_checks_every_key_before_writing(faults_data: Path, tmp_path: Path):
    store = tmp_path / "s.lmdb"
    pack_dataset(faults_data, store, progress=False)
    env = lmdb.open(str(store), subdir=False, lock=False)
    with env.begin(write=True) as txn:
        meta = json.loads(txn.get(META_KEY))
        meta["splits"]["gallery"].append(["../../escaped.jpg", 1, 0])
        txn.put(META_KEY, json.dumps(meta).encode())
        txn.put(b"../../escaped.jpg", b"x")
        txn.put(DONE_KEY, b"1")
    env.close()
    r = run_cli("unpack", str(store), str(tmp_path / "out" / "x"), cwd=tmp_path)
    assert_one_line_error(r, "unsafe key", "nothing written")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped.jpg").exists()


def test_bad_query_images_are_skipped_and_training_keeps_its_checkpoint(data_copy, tmp_path):
    """A truncated first query, a bomb in the middle and a 16-bit PNG: the epoch finishes,
    best.pth is written, the skips are counted; nothing stops the run."""
    queries = sorted((data_copy / "query").iterdir())
    queries[0].write_bytes(queries[0].read_bytes()[:150])
    queries[len(queries) // 2].write_bytes(_bomb_jpeg())
    grey = (np.linspace(0, 65535, 64 * 32).reshape(64, 32)).astype(np.uint16)
    png16 = data_copy / "query" / (queries[-1].stem + ".png")
    Image.fromarray(grey).save(png16)
    queries[-1].unlink()
    for cache in ("ram", "none"):
        params = tiny_params(data_copy, tmp_path / "runs", data={"cache": cache, "num_workers": 0})
        cfg = write_json(tmp_path / f"{cache}.json", params)
        r = run_cli("train", "-c", str(cfg), "--sub-working-dir", cache, cwd=tmp_path)
        assert r.rc == 0 and "Traceback" not in r.err, r.err[-3000:]
        assert (tmp_path / "runs" / cache / "best.pth").is_file()
        log = (tmp_path / "runs" / cache / "train.log").read_text()
        assert "decompression bomb" in log and "Truncated" in log


def test_sixteen_bit_and_palette_pngs_train(data_copy: Path, tmp_path: Path):
    train = sorted((data_copy / "bounding_box_train").iterdir())
    for i, path in enumerate(train[:6]):
        rgb = np.asarray(Image.open(path).convert("L"), dtype=np.uint16) * 257
        out = path.with_suffix(".png")
        if i % 2:
            Image.fromarray(rgb).save(out)  # mode I;16
        else:
            Image.open(path).convert("P").save(out)
        path.unlink()
    cfg = write_json(tmp_path / "p.json", tiny_params(data_copy, tmp_path / "runs"))
    r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "r", cwd=tmp_path)
    assert r.rc == 0 and "Traceback" not in r.err, r.err[-3000:]
    assert "cannot be decoded" not in (tmp_path / "runs" / "r" / "train.log").read_text()


def test_names_that_do_not_parse_say_why(faults_data: Path, tmp_path: Path):
    root = tmp_path / "data"
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (root / split).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 32)).save(root / split / f"person{i}.jpg")
    r = run_cli("data", "info", str(root), cwd=tmp_path)
    assert_one_line_error(r, "no usable images", "does not parse as <pid>_c<camera>")


def test_plans_that_cannot_fit_are_refused_before_the_run_folder(faults_data, tmp_path):
    side = int((available_ram() / (3 * 40)) ** 0.5) + 64  # 40+ images of side^2 > RAM
    cases = [
        ({"batch_size": 400, "batch_sampling_params": {"class_balanced": False}}, "batch_size"),
        ({"img_h": side, "img_w": side}, "data.cache = 'ram'"),
        ({"evaluation_params": {"type": "market_evaluate", "ranks": [1, 5000]}}, "rank 5000"),
        ({"evaluation_params": {"type": "market_evaluate", "metric": "rank7"}}, "rank7"),
    ]
    for over, needle in cases:
        cfg = write_json(tmp_path / "p.json", tiny_params(faults_data, tmp_path / "runs", **over))
        r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "r", cwd=tmp_path)
        assert_one_line_error(r, needle)
        assert not (tmp_path / "runs").exists(), needle
    assert os.listdir(tmp_path) == ["p.json"]
