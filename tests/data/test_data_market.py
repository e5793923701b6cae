"""Market-1501 file-name parser and layout loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_test_helpers import write_images

from reidkit.config import validate_config
from reidkit.data import build_dataset, detect_layout, load_market, parse_market_name
from reidkit.utils.errors import DataError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0002_c1s1_000451_03.jpg", (2, 0)),
        ("1501_c6s4_001877_01.jpg", (1501, 5)),
        ("-1_c3s2_000000_00.jpg", (-1, 2)),
        ("0000_c2s1_000100_01.jpg", (0, 1)),
        ("0005_c2_f0046182.jpg", (5, 1)),  # DukeMTMC naming
        ("0002_c0s1_000451_03.jpg", None),  # cameras are 1-based
        ("abc_c1s1_000451_03.jpg", None),
        ("0002-c1s1.jpg", None),
        ("Thumbs.db", None),
    ],
)
def test_parse_market_name(name: str, expected: tuple[int, int] | None) -> None:
    assert parse_market_name(name) == expected


def _market(root: Path) -> Path:
    write_images(
        root / "bounding_box_train",
        [
            "0007_c1s1_000001_01.jpg",
            "0007_c2s1_000002_01.jpg",
            "0003_c1s1_000003_01.jpg",
            "0003_c3s1_000004_01.jpg",
            "0000_c1s1_000005_01.jpg",
            "-1_c1s1_000006_01.jpg",
        ],
    )
    write_images(root / "query", ["0004_c1s1_000010_01.jpg", "0009_c2s1_000011_01.jpg"])
    write_images(
        root / "bounding_box_test",
        [
            "0004_c2s1_000012_01.jpg",
            "0009_c1s1_000013_01.jpg",
            "-1_c1s1_000014_01.jpg",
            "0000_c3s1_000015_01.jpg",
            "badname.jpg",
        ],
    )
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")
    return root


def test_load_market_protocol(tmp_path: Path) -> None:
    ds = load_market(_market(tmp_path))
    # train: junk and distractor left out, pids 3, 7 relabelled 0, 1 in sorted order
    assert ds.num_train_ids == 2
    assert sorted((r.pid, r.camid) for r in ds.train) == [(0, 0), (0, 2), (1, 0), (1, 1)]
    assert all(r.path.startswith("bounding_box_train/") for r in ds.train)
    assert [(r.pid, r.camid) for r in ds.query] == [(4, 0), (9, 1)]
    # gallery keeps junk (-1) and distractor (0) with their original pids
    assert sorted(r.pid for r in ds.gallery) == [-1, 0, 4, 9]
    assert ds.skipped == 1 and "badname.jpg" in ds.problems[0]
    assert ds.source.read(ds.query[0].path)[:2] == b"\xff\xd8"


def test_unparsable_names_warn_with_first_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    logging.getLogger("reidkit").propagate = True
    with caplog.at_level(logging.WARNING, logger="reidkit"):
        load_market(_market(tmp_path))
    assert "badname.jpg" in caplog.text and "1 file(s) skipped" in caplog.text


def test_empty_split_names_the_folder(tmp_path: Path) -> None:
    root = _market(tmp_path)
    for f in (root / "query").iterdir():
        f.unlink()
    write_images(root / "query", ["nope.jpg"])
    with pytest.raises(DataError, match=r"query: the query split has no usable images"):
        load_market(root)


def test_missing_split_folder(tmp_path: Path) -> None:
    root = _market(tmp_path)
    for f in (root / "query").iterdir():
        f.unlink()
    (root / "query").rmdir()
    assert detect_layout(root) == "market1501"
    with pytest.raises(DataError, match="query: folder not found"):
        load_market(root)


def test_build_dataset_from_config(tmp_path: Path) -> None:
    root = _market(tmp_path / "data")
    cfg = validate_config({"batches_dir": str(root)})
    ds = build_dataset(cfg)
    assert ds.name == "market1501" and len(ds.train) == 4
    bad = validate_config({"batches_dir": str(root), "data": {"layout": "nonsense"}})
    with pytest.raises(DataError, match="data.layout = 'nonsense'"):
        build_dataset(bad)
    with pytest.raises(DataError, match="no such dataset folder"):
        build_dataset(validate_config({"batches_dir": str(tmp_path / "missing")}))
