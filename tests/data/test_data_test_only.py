"""Test-only datasets (query + gallery, no train split): every layout loads them, training
refuses them with one line, and pack / data info handle them."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_test_helpers import write_images

from reidkit.config import validate_config
from reidkit.data import build_train_loader, detect_layout, load_dataset, pack_dataset
from reidkit.data.info import dataset_info
from reidkit.utils.errors import DataError

QUERY = ["0003_c1s1_000010_01.jpg", "0004_c1s1_000011_01.jpg"]
GALLERY = ["0003_c2s1_000020_01.jpg", "0004_c2s1_000021_01.jpg", "0000_c2s1_000022_01.jpg"]


def _market_test_only(root: Path) -> Path:
    write_images(root / "query", QUERY)
    write_images(root / "bounding_box_test", GALLERY)
    return root


def test_market_without_train_folder_is_test_only(tmp_path: Path) -> None:
    root = _market_test_only(tmp_path / "m")
    assert detect_layout(root) == "market1501"
    ds = load_dataset(root)
    assert ds.train == [] and ds.num_train_ids == 0
    assert [(r.pid, r.camid) for r in ds.query] == [(3, 0), (4, 0)]
    assert len(ds.gallery) == 3
    (root / "bounding_box_train").mkdir()  # an empty train folder means the same
    assert load_dataset(root).train == []


def test_train_folder_with_only_unusable_images_is_still_an_error(tmp_path: Path) -> None:
    root = _market_test_only(tmp_path / "m")
    write_images(root / "bounding_box_train", ["badname.jpg"])
    with pytest.raises(DataError, match="bounding_box_train: the train split has no usable"):
        load_dataset(root)


def test_veri_and_custom_test_only(tmp_path: Path) -> None:
    veri = tmp_path / "veri"
    write_images(veri / "image_query", ["0002_c001_00016450_0.jpg"])
    write_images(veri / "image_test", ["0002_c002_00016460_0.jpg"])
    ds = load_dataset(veri, "veri776")
    assert ds.train == [] and len(ds.query) == 1 and len(ds.gallery) == 1

    custom = tmp_path / "custom"
    for split, names in (("query", ["a_c1.jpg"]), ("gallery", ["b_c2.jpg", "c_c3.jpg"])):
        write_images(custom / split / "alice", names)
        write_images(custom / split / "bob", names)
    assert detect_layout(custom) == "custom"
    ds = load_dataset(custom)
    assert ds.train == [] and len(ds.query) == 2 and len(ds.gallery) == 4
    assert {r.camid for r in ds.query} == {0} and {r.camid for r in ds.gallery} == {1, 2}


def test_msmt17_without_train_lists(tmp_path: Path) -> None:
    write_images(tmp_path / "test" / "0000", ["0000_000_03_0303a_0001_0.jpg"])
    write_images(tmp_path / "test" / "0000", ["0000_002_07_0303a_0002_0.jpg"])
    (tmp_path / "list_query.txt").write_text("0000/0000_000_03_0303a_0001_0.jpg 0\n")
    (tmp_path / "list_gallery.txt").write_text("0000/0000_002_07_0303a_0002_0.jpg 0\n")
    ds = load_dataset(tmp_path, "msmt17")
    assert ds.train == [] and [(r.pid, r.camid) for r in ds.gallery] == [(0, 6)]


def test_training_refuses_a_test_only_dataset_in_one_line(tmp_path: Path) -> None:
    root = _market_test_only(tmp_path / "m")
    cfg = validate_config({"batches_dir": str(root), "img_h": 32, "img_w": 16})
    with pytest.raises(DataError) as err:
        build_train_loader(cfg, load_dataset(root), "cpu")
    msg = str(err.value)
    assert "\n" not in msg and str(root) in msg
    assert "the train split has no usable images" in msg and "reidkit eval RUN --data" in msg


def test_pack_and_info_of_a_test_only_dataset(tmp_path: Path) -> None:
    root = _market_test_only(tmp_path / "m")
    summary = pack_dataset(root, tmp_path / "m.lmdb", progress=False)
    assert (summary["train"], summary["query"], summary["gallery"]) == (0, 2, 3)
    ds = load_dataset(tmp_path / "m.lmdb")
    assert ds.train == [] and len(ds.query) == 2
    info = dataset_info(root)
    assert info["splits"]["train"]["images"] == 0 and info["splits"]["query"]["identities"] == 2
