"""Video layouts: a tiny tracklet dataset in each real layout loads, is detected, and bad
input gets one line naming the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from video_helpers import (
    make_crops_folder,
    make_duke_video,
    make_ilids,
    make_mars,
    make_prid,
)

from reidkit.data.build import detect_layout, load_dataset
from reidkit.data.video_records import VideoDataset
from reidkit.utils.errors import DataError


def _ids(tracks) -> set[tuple[int, int]]:
    return {(t.pid, t.camid) for t in tracks}


def test_mars(tmp_path: Path) -> None:
    root = make_mars(tmp_path / "MARS", frames=5)
    assert detect_layout(root) == "mars"
    ds = load_dataset(root)
    assert isinstance(ds, VideoDataset) and ds.name == "mars"
    assert ds.num_train_ids == 4 and len(ds.train) == 8
    assert {t.pid for t in ds.train} == {0, 1, 2, 3}  # relabelled
    assert _ids(ds.query) == {(5, 0), (6, 0), (7, 0)}
    assert _ids(ds.gallery) == {(5, 1), (6, 1), (7, 1), (-1, 0)}  # junk stays in the gallery
    q = ds.query[0]
    assert len(q) == 5 and q.frames[0] == "bbox_test/0005/0005C1T0001F001.jpg"
    assert [f[-7:-4] for f in q.frames] == ["001", "002", "003", "004", "005"]
    assert all((root / f).is_file() for t in ds.gallery for f in t.frames)


def test_mars_min_frames_and_errors(tmp_path: Path) -> None:
    from scipy.io import savemat

    root = make_mars(tmp_path / "mars", frames=3)
    with pytest.raises(DataError, match="train split has no usable tracklets"):
        load_dataset(root, "mars", min_frames=4)
    info = root / "info" / "tracks_test_info.mat"
    savemat(str(info), {"track_test_info": np.array([[3, 2, 5, 1]], float)})
    with pytest.raises(DataError, match=r"tracks_test_info\.mat: row 1 names frames 3\.\.2"):
        load_dataset(root)
    savemat(str(info), {"wrong_key": np.zeros((1, 4))})
    with pytest.raises(DataError, match=r"has no 'track_test_info' array \(has: wrong_key\)"):
        load_dataset(root)
    (root / "info" / "query_IDX.mat").unlink()
    (root / "info" / "tracks_test_info.mat").unlink()
    with pytest.raises(DataError, match=r"tracks_test_info\.mat: split file not found"):
        load_dataset(root)


def test_mars_query_index_out_of_range(tmp_path: Path) -> None:
    from scipy.io import savemat

    root = make_mars(tmp_path / "mars")
    savemat(str(root / "info" / "query_IDX.mat"), {"query_IDX": np.array([[1, 99]], float)})
    with pytest.raises(DataError, match=r"query_IDX\.mat: query_IDX must hold 1-based rows"):
        load_dataset(root)


def test_mars_without_scipy_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    root = make_mars(tmp_path / "mars")
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # what an install without it sees
    with pytest.raises(DataError, match=r"needs scipy: pip install 'reidkit\[adapt\]'"):
        load_dataset(root)


def test_ilidsvid_split_file_and_default(tmp_path: Path) -> None:
    from scipy.io import loadmat

    root = make_ilids(tmp_path / "ilids", persons=6)
    assert detect_layout(root) == "ilidsvid"
    rows = loadmat(str(root / "train-test people splits" / "train_test_splits_ilidsvid.mat"))
    for split in (0, 1):
        ds = load_dataset(root, video_split=split)
        row = rows["ls_set"][split].astype(int)
        assert {t.pid for t in ds.query} == set(row[:3].tolist())  # first half: test
        assert ds.class_names == [f"person{p:03d}" for p in sorted(row[3:].tolist())]
        assert {t.camid for t in ds.query} == {0} and {t.camid for t in ds.gallery} == {1}
        assert len(ds.train) == 6 and ds.num_train_ids == 3
        assert ds.query[0].frames[0].startswith("i-LIDS-VID/sequences/cam1/person")
    with pytest.raises(DataError, match=r"video\.split = 2: .*holds 2 split\(s\) \(valid 0\.\.1\)"):
        load_dataset(root, video_split=2)
    (root / "train-test people splits" / "train_test_splits_ilidsvid.mat").unlink()
    ds = load_dataset(root)  # the documented default: alternate persons
    assert {t.pid for t in ds.query} == {2, 4, 6}
    assert ds.class_names == ["person001", "person003", "person005"]


def test_prid2011_json_split_and_errors(tmp_path: Path) -> None:
    root = make_prid(tmp_path / "prid", persons=6)
    assert detect_layout(root) == "prid2011"
    ds = load_dataset(root)
    assert _ids(ds.query) == {(4, 0), (5, 0), (6, 0)}
    assert _ids(ds.gallery) == {(4, 1), (5, 1), (6, 1)}  # person 7 (camera B only) unused
    assert len(ds.train) == 6
    splits = root / "splits_prid2011.json"
    splits.write_text(json.dumps([{"train": ["person_0001"], "test": ["person_0099"]}]))
    with pytest.raises(DataError, match=r"cam_a/person_0099: person folder named by the split"):
        load_dataset(root)
    splits.write_text(json.dumps({"train": "person_0001"}))
    with pytest.raises(DataError, match=r"splits_prid2011\.json: expected a list of"):
        load_dataset(root)
    splits.unlink()
    ds = load_dataset(root)  # default: persons in both cameras, alternating
    assert {t.pid for t in ds.query} == {2, 4, 6}


def test_duke_video_and_empty_tracklet(tmp_path: Path) -> None:
    root = make_duke_video(tmp_path / "DukeMTMC-VideoReID")
    assert detect_layout(root) == "dukemtmc_video"
    ds = load_dataset(root)
    assert len(ds.train) == 8 and ds.num_train_ids == 4
    assert _ids(ds.query) == {(5, 0), (6, 0), (7, 0)}
    assert _ids(ds.gallery) == {(p, c) for p in (5, 6, 7) for c in (1, 2)}
    assert all(len(t) == 4 for t in ds.gallery)
    empty = root / "gallery" / "0005" / "9999"
    empty.mkdir()
    with pytest.raises(DataError, match=r"gallery/0005/9999: tracklet folder holds no images"):
        load_dataset(root)


def test_duke_video_test_only(tmp_path: Path) -> None:
    root = make_duke_video(tmp_path / "duke_test", train_ids=())
    ds = load_dataset(root)
    assert ds.train == [] and ds.num_train_ids == 0 and len(ds.query) == 3


def test_crops_folder_as_tracklets(tmp_path: Path) -> None:
    root = make_crops_folder(tmp_path / "crops", frames=6)
    assert detect_layout(root) == "market1501"  # an image dataset unless tracklets are asked
    ds = load_dataset(root, "tracklets")
    assert isinstance(ds, VideoDataset)
    assert _ids(ds.query) == {(p, 0) for p in (1, 2, 3, 4)}
    assert _ids(ds.gallery) == {(p, 1) for p in (1, 2, 3, 4)}
    frames = [int(f.rsplit("/", 1)[1].split("_")[2]) for f in ds.gallery[0].frames]
    assert frames == sorted(frames) and len(frames) == 3
    assert len(ds.train) == 4 and ds.num_train_ids == 4
    with pytest.raises(DataError, match=r"crops: the query split has no usable tracklets"):
        load_dataset(root, "tracklets", min_frames=4)


def test_unknown_layout_lists_the_video_layouts(tmp_path: Path) -> None:
    root = make_duke_video(tmp_path / "d")
    with pytest.raises(DataError, match=r"data\.layout = 'mars2'.*mars, ilidsvid, prid2011"):
        load_dataset(root, "mars2")
    with pytest.raises(DataError, match=r"no sequences/cam1/ and sequences/cam2/"):
        load_dataset(root, "ilidsvid")
