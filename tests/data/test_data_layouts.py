"""Every layout loads from a tiny folder in its real naming convention; detection; data info."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_test_helpers import write_images

from reidkit.data import detect_layout, load_dataset
from reidkit.data.info import dataset_info, format_info
from reidkit.utils.errors import DataError


def _market_names(pids: list[int], cams: int = 2, per: int = 2) -> list[str]:
    return [
        f"{p:04d}_c{c + 1}s1_{p * 100 + c * 10 + k:06d}_01.jpg"
        for p in pids
        for c in range(cams)
        for k in range(per)
    ]


def test_dukemtmc(tmp_path: Path) -> None:
    root = tmp_path / "DukeMTMC-reID"
    write_images(
        root / "bounding_box_train",
        ["0001_c2_f0046182.jpg", "0001_c3_f0046190.jpg", "0005_c1_f0000001.jpg"],
    )
    write_images(root / "query", ["0010_c1_f0000100.jpg"])
    write_images(root / "bounding_box_test", ["0010_c5_f0000200.jpg", "0011_c5_f0000201.jpg"])
    assert detect_layout(root) == "dukemtmc"
    ds = load_dataset(root)
    assert ds.name == "dukemtmc" and ds.num_train_ids == 2
    assert [(r.pid, r.camid) for r in ds.query] == [(10, 0)]


def test_msmt17_lists(tmp_path: Path) -> None:
    train = [
        "0000/0000_000_01_0303morning_0015_0.jpg",
        "0000/0000_001_05_0303morning_0016_1.jpg",
        "0001/0001_000_02_0303noon_0001_0.jpg",
    ]
    test = [
        "0000/0000_000_03_0303afternoon_0001_0.jpg",
        "0000/0000_002_07_0303afternoon_0002_0.jpg",
        "0001/0001_000_15_0303morning_0001_0.jpg",
    ]
    for rel in train:
        write_images(tmp_path / "train" / Path(rel).parent, [Path(rel).name])
    for rel in test:
        write_images(tmp_path / "test" / Path(rel).parent, [Path(rel).name])
    (tmp_path / "list_train.txt").write_text(f"{train[0]} 0\n{train[1]} 0\n")
    (tmp_path / "list_val.txt").write_text(f"{train[2]} 1\n")
    (tmp_path / "list_query.txt").write_text(f"{test[0]} 0\n")
    (tmp_path / "list_gallery.txt").write_text(f"{test[1]} 0\n{test[2]} 1\nbroken line\n")
    assert detect_layout(tmp_path) == "msmt17"
    ds = load_dataset(tmp_path)
    assert ds.num_train_ids == 2 and len(ds.train) == 3
    assert sorted((r.pid, r.camid) for r in ds.train) == [(0, 0), (0, 4), (1, 1)]
    assert ds.query[0].path == f"test/{test[0]}" and ds.query[0].camid == 2
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 6), (1, 14)]
    assert ds.skipped == 1 and "list_gallery.txt:3" in ds.problems[0]


@pytest.mark.parametrize("subset", ["detected", "labeled"])
def test_cuhk03_np(tmp_path: Path, subset: str) -> None:
    for s in ("detected", "labeled"):
        base = tmp_path / s
        write_images(base / "bounding_box_train", _market_names([1, 3]))
        write_images(base / "query", _market_names([5], per=1))
        write_images(base / "bounding_box_test", _market_names([5, 6]))
    assert detect_layout(tmp_path) == "cuhk03_np"
    ds = load_dataset(tmp_path, "cuhk03_np", cuhk03_subset=subset)
    assert ds.name == f"cuhk03_np_{subset}" and ds.num_train_ids == 2
    assert all(r.path.startswith(f"{subset}/") for r in ds.train + ds.query + ds.gallery)
    assert ds.source.read(ds.train[0].path)[:2] == b"\xff\xd8"


def test_cuhk03_missing_subset(tmp_path: Path) -> None:
    write_images(tmp_path / "detected" / "bounding_box_train", _market_names([1]))
    with pytest.raises(DataError, match="cuhk03_subset must be one of detected"):
        load_dataset(tmp_path, "cuhk03_np", cuhk03_subset="labeled")


def test_veri776(tmp_path: Path) -> None:
    write_images(
        tmp_path / "image_train",
        ["0001_c001_00016450_0.jpg", "0001_c002_00016460_0.jpg", "0002_c001_00016470_0.jpg"],
    )
    write_images(tmp_path / "image_query", ["0002_c002_00000001_0.jpg"])
    write_images(tmp_path / "image_test", ["0002_c003_00000002_0.jpg", "0009_c020_00000003_0.jpg"])
    assert detect_layout(tmp_path) == "veri776"
    ds = load_dataset(tmp_path)
    assert ds.num_train_ids == 2 and {r.camid for r in ds.gallery} == {2, 19}


def test_custom_flat_without_cameras(tmp_path: Path) -> None:
    for i, name in enumerate(["alice", "bob", "carol", "dave", "erin"]):
        write_images(tmp_path / name, [f"img{k}.jpg" for k in range(3 if i != 3 else 1)])
    assert detect_layout(tmp_path) == "custom"
    ds = load_dataset(tmp_path)
    # sorted: alice bob carol dave erin; odd positions (bob, dave) are test identities
    assert ds.class_names == ["alice", "carol", "erin"] and ds.num_train_ids == 3
    assert [r.path for r in ds.query] == ["bob/img0.jpg"]
    assert all(r.camid == 0 for r in ds.query) and all(r.camid == 1 for r in ds.gallery)
    assert sorted(r.path for r in ds.gallery) == ["bob/img1.jpg", "bob/img2.jpg", "dave/img0.jpg"]
    q = {r.path for r in ds.query}
    assert not q & {r.path for r in ds.gallery}


def test_custom_train_test_with_cameras(tmp_path: Path) -> None:
    write_images(tmp_path / "train" / "id7", ["a_c1_1.jpg", "a_c2_2.jpg"])
    write_images(tmp_path / "train" / "id8", ["b_c1_1.jpg"])
    write_images(tmp_path / "test" / "id9", ["x_c1_1.jpg", "x_c3_2.jpg", "x_c4_3.jpg"])
    ds = load_dataset(tmp_path)
    assert ds.name == "custom" and ds.class_names == ["id7", "id8"]
    assert sorted((r.pid, r.camid) for r in ds.train) == [(0, 0), (0, 1), (1, 0)]
    assert [(r.path, r.camid) for r in ds.query] == [("test/id9/x_c1_1.jpg", 0)]
    assert sorted(r.camid for r in ds.gallery) == [2, 3]


def test_imagefolder(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            write_images(tmp_path / split / cls, [f"{cls}{k}.png" for k in range(n)])
    write_images(tmp_path / "val" / "eel", ["e.jpg"])
    assert detect_layout(tmp_path) == "imagefolder"
    ds = load_dataset(tmp_path)
    assert ds.class_names == ["cat", "dog"] and ds.gallery == []
    assert sorted({r.pid for r in ds.query}) == [0, 1] and len(ds.query) == 4
    assert ds.skipped == 1  # the val class without train images


def test_nested_dataset_folder_is_found(tmp_path: Path) -> None:
    inner = tmp_path / "Market-1501-v15.09.15"
    write_images(inner / "bounding_box_train", _market_names([1, 2]))
    write_images(inner / "query", _market_names([3], per=1))
    write_images(inner / "bounding_box_test", _market_names([3]))
    ds = load_dataset(tmp_path)
    assert ds.name == "market1501" and Path(ds.source.root) == inner


def test_undetectable_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="cannot detect the dataset layout"):
        load_dataset(tmp_path)


def test_data_info_report(tmp_path: Path) -> None:
    write_images(
        tmp_path / "bounding_box_train", _market_names([1, 2]) + ["0009_c1s1_000001_01.jpg"]
    )
    write_images(tmp_path / "query", _market_names([3], per=1) + ["0004_c1s1_000002_01.jpg"])
    write_images(
        tmp_path / "bounding_box_test", _market_names([3]) + ["-1_c1s1_000003_01.jpg"], h=40, w=20
    )
    (tmp_path / "bounding_box_test" / "0003_c2s1_000009_01.jpg").write_bytes(b"")
    info = dataset_info(tmp_path)
    s = info["splits"]
    assert (s["train"]["images"], s["train"]["identities"], s["train"]["cameras"]) == (9, 3, 2)
    assert s["gallery"]["junk"] == 1 and s["query"]["identities"] == 2
    assert info["image_sizes"] == {"32x16": 12, "40x20": 5}
    text = format_info(info)
    assert "empty file (0 bytes)" in text and "single image" in text
    assert "no gallery image of their identity in another camera" in text
