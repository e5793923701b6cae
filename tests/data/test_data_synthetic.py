"""The synthetic Market-1501-style dataset generator."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import pytest

from reidkit.data import load_market, parse_market_name
from reidkit.data.synthetic import SPLIT_DIRS, generate_synthetic
from reidkit.utils.errors import DataError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.jpg")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_layout_naming_and_protocol(synth_small: Path) -> None:
    for d in SPLIT_DIRS:
        names = [f.name for f in (synth_small / d).iterdir()]
        assert names and all(parse_market_name(n) is not None for n in names)
        assert all(n.endswith("_01.jpg") for n in names)
    ds = load_market(synth_small)
    assert ds.skipped == 0 and ds.num_train_ids == 6
    train_pids = {parse_market_name(f.name)[0] for f in (synth_small / SPLIT_DIRS[0]).iterdir()}
    test_pids = {r.pid for r in ds.query}
    assert len(test_pids) == 4 and not train_pids & test_pids
    gallery = defaultdict(set)
    for r in ds.gallery:
        gallery[r.pid].add(r.camid)
    assert -1 in gallery and 0 in gallery  # junk and distractors
    for q in ds.query:  # every query has a true match in another camera
        assert gallery[q.pid] - {q.camid}
    # one query per test id per camera
    assert len({(q.pid, q.camid) for q in ds.query}) == len(ds.query)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    kw = dict(num_ids=3, num_test_ids=2, num_cameras=2, img_h=32, img_w=16, images_per_id=4)
    s1 = generate_synthetic(tmp_path / "a", seed=7, **kw)
    generate_synthetic(tmp_path / "b", seed=7, **kw)
    generate_synthetic(tmp_path / "c", seed=8, **kw)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    assert s1["images"] == len(list((tmp_path / "a").rglob("*.jpg")))


def test_exact_train_image_count(tmp_path: Path) -> None:
    s = generate_synthetic(
        tmp_path, num_ids=4, num_test_ids=1, num_cameras=2, img_h=32, img_w=16, train_images=17
    )
    assert s["train_images"] == 17 == len(list((tmp_path / "bounding_box_train").iterdir()))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"num_ids": 0}, "at least 1"),
        ({"num_cameras": 1}, "--cameras 1"),
        ({"img_h": 8}, "too small"),
        ({"num_ids": 9000, "num_test_ids": 1000}, "9999"),
    ],
)
def test_bad_arguments(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        generate_synthetic(tmp_path, **kw)


def test_synth_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import argparse

    from reidkit.app.commands.data import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "synth",
            str(tmp_path / "s"),
            "--ids",
            "2",
            "--cameras",
            "2",
            "--height",
            "32",
            "--width",
            "16",
            "--images-per-id",
            "2",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "bounding_box_train:" in out and "junk -1" in out
    assert len(list((tmp_path / "s" / "query").iterdir())) >= 2


def test_rerun_reuses_or_regenerates_and_protects_other_folders(tmp_path: Path) -> None:
    kw = dict(num_ids=2, num_test_ids=1, num_cameras=2, img_h=32, img_w=16, images_per_id=2)
    first = generate_synthetic(tmp_path / "s", **kw)
    again = generate_synthetic(tmp_path / "s", **kw)
    assert again["reused"] and again["images"] == first["images"]
    other = generate_synthetic(tmp_path / "s", **{**kw, "num_ids": 3})
    assert not other.get("reused") and other["train_ids"] == 3
    assert len(load_market(tmp_path / "s").train) == other["train_images"]
    (tmp_path / "real" / "query").mkdir(parents=True)
    (tmp_path / "real" / "query" / "0001_c1s1_000001_01.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="did not write; choose an empty or new folder"):
        generate_synthetic(tmp_path / "real", **kw)
