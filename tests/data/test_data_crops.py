"""`reidkit crops`: a synthetic video + MOT file gives the exact expected dataset; tracklet
linking; option errors. (The HOG path on the real vtest.avi is in test_data_crops_hog.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reidkit.cli import main
from reidkit.data import load_dataset
from reidkit.data.crops import parse_camera, video_to_dataset
from reidkit.data.tracklets import Box, link, read_mot, select, spread
from reidkit.data.video import parse_frames, read_frames
from reidkit.utils.errors import DataError

cv2 = pytest.importorskip("cv2")

H, W, FRAMES = 120, 160, 12
# (MOT id, BGR colour, first frame, last frame, x at the first frame, speed px/frame)
PEOPLE = [
    (1, (0, 0, 230), 1, 12, 8, 6),
    (2, (230, 0, 0), 1, 12, 120, -5),
    (3, (0, 200, 0), 5, 10, 60, 2),
]
BOX_W, BOX_H, TOP = 16, 40, 40


def _box(person: tuple, frame: int) -> tuple[int, int, int, int]:
    _, _, start, _, x, speed = person
    return x + speed * (frame - start), TOP, BOX_W, BOX_H


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 12-frame MJPG video of coloured 'people' walking on grey, and its MOT file."""
    root = tmp_path_factory.mktemp("clip")
    video = root / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    lines = []
    for frame in range(1, FRAMES + 1):
        image = np.full((H, W, 3), 128, np.uint8)
        for p in PEOPLE:
            if p[2] <= frame <= p[3]:
                x, y, w, h = _box(p, frame)
                image[y : y + h, x : x + w] = p[1]
                cv2.circle(image, (x + w // 2, y - 5), 5, (60, 120, 200), -1)
                lines.append(f"{frame},{p[0]},{x},{y},{w},{h},1,1,1.0")
        writer.write(image)
    writer.release()
    lines.append(f"3,9,{W - 20},{TOP},10,20,0,1,1.0")  # conf 0: an ignored box
    (root / "gt.txt").write_text("\n".join(lines) + "\n")
    return video, root / "gt.txt"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_read_frames_range_and_stride(clip: tuple[Path, Path]) -> None:
    video, _ = clip
    got = [(n, im.shape) for n, im in read_frames(video, 3, 9, stride=3)]
    assert got == [(3, (H, W, 3)), (6, (H, W, 3)), (9, (H, W, 3))]
    assert [n for n, _ in read_frames(video, 10)] == [10, 11, 12]


def test_mot_to_labelled_market_dataset(clip: tuple[Path, Path], tmp_path: Path) -> None:
    video, mot = clip
    out = tmp_path / "ds"
    s = video_to_dataset(video, out, mot=mot, labelled=True, min_track=2, camera=2)
    # id 1 and 2: frames 1-12, query = frames 1-6 (camera 2N-1 = 3), gallery 7-12 (camera 4)
    # id 3: frames 5-10, query 5-7, gallery 8-10; _<n> numbers the crops of a frame
    expected_query = [f"0001_c3s1_{f:06d}_01.jpg" for f in range(1, 7)]
    expected_query += [f"0002_c3s1_{f:06d}_02.jpg" for f in range(1, 7)]
    expected_query += [f"0003_c3s1_{f:06d}_03.jpg" for f in range(5, 8)]
    assert _names(out / "query") == sorted(expected_query)
    assert len(_names(out / "bounding_box_test")) == 6 + 6 + 3
    assert "0003_c4s1_000010_03.jpg" in _names(out / "bounding_box_test")
    assert not (out / "bounding_box_train").exists()
    assert s["tracklets_kept"] == 3 and s["images"] == 30
    ds = load_dataset(out)
    assert ds.train == [] and {r.camid for r in ds.query} == {2}
    for pid, colour in ((1, (0, 0, 230)), (2, (230, 0, 0)), (3, (0, 200, 0))):
        crop = cv2.imread(str(out / "query" / next(n for n in expected_query if n[3] == str(pid))))
        assert crop.shape[:2] == (BOX_H, BOX_W)
        assert np.abs(crop[10:30, 3:13].mean((0, 1)) - colour).max() < 25  # the right person
    lines = (out / "tracks.txt").read_text().splitlines()
    assert len(lines) == 30 and lines[0].startswith("1,1,8.0,40.0,16.0,40.0")
    assert json.loads((out / "crops.json").read_text())["args"]["camera"] == 2


def test_split_frame_min_track_and_max_crops(clip: tuple[Path, Path], tmp_path: Path) -> None:
    video, mot = clip
    out = tmp_path / "ds"
    args = dict(mot=mot, labelled=True, min_track=3, max_crops_per_track=4)
    video_to_dataset(video, out, frames="2:11", split_frame=7, **args)
    # frames 2-6 -> train (ids 1, 2: 5 boxes thinned to 4; id 3: frames 5-6, too short)
    train = _names(out / "bounding_box_train")
    assert train == sorted(
        [f"0001_c1s1_{f:06d}_01.jpg" for f in (2, 3, 5, 6)]
        + [f"0002_c1s1_{f:06d}_02.jpg" for f in (2, 3, 5, 6)]
    )
    # frames 7-11 -> query / gallery; id 3 (frames 7-10) has 4 boxes: 2 query, 2 gallery
    query = _names(out / "query")
    assert [n for n in query if n.startswith("0003")] == [
        "0003_c1s1_000007_03.jpg",
        "0003_c1s1_000008_03.jpg",
    ]
    ds = load_dataset(out)
    assert ds.num_train_ids == 2 and len(ds.query) == 6 and len(ds.gallery) == 6
    with pytest.raises(DataError, match="--overwrite"):
        video_to_dataset(video, out, frames="2:11", split_frame=7, **args)
    video_to_dataset(video, out, frames="1:12", overwrite=True, **args)
    assert not (out / "bounding_box_train").exists()


def test_unlabeled_flat_folder_via_cli(clip: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    video, mot = clip
    out = tmp_path / "flat"
    cmd = ["crops", str(video), "--out", str(out), "--mot", str(mot), "--frames", "1:4"]
    assert main([*cmd, "--stride", "2", "--min-track", "1"]) == 0
    assert _names(out) == sorted(
        ["crops.json", "tracks.txt"] + [f"f{f:06d}_t{t:04d}.jpg" for f in (1, 3) for t in (1, 2)]
    )
    assert "2 of 3 tracklets kept" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("x")
    assert main(["crops", str(video), "--out", str(tmp_path / "other"), "--mot", str(mot)]) == 2
    assert "was not written by reidkit crops" in capsys.readouterr().err


def test_tracklet_linking_by_overlap() -> None:
    a = [Box(f, 10 + 2 * f, 10, 20, 40) for f in range(1, 9)]
    b = [Box(f, 100 - 2 * f, 12, 20, 40) for f in range(1, 9) if f not in (4, 5)]  # a gap
    far = [Box(6, 300, 300, 20, 40)]
    frames = [(f, [x for x in a + b + far if x.frame == f]) for f in range(1, 9)]
    tracks = link(frames, min_iou=0.3, max_gap=3)
    assert [(t.tid, len(t.boxes)) for t in tracks] == [(1, 8), (2, 6), (3, 1)]
    assert [(t.tid, len(t.boxes)) for t in link(frames, max_gap=1)] == [
        (1, 8),
        (2, 3),
        (3, 3),  # b after its gap: a new tracklet
        (4, 1),
    ]
    kept = select(tracks, first=2, last=7, min_height=30, min_track=2, max_crops=3)
    assert [[x.frame for x in t.boxes] for t in kept] == [[2, 4, 7], [2, 6, 7]]
    assert [x.frame for x in spread(a, 1)] == [5]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames": "5:2"}, "--frames '5:2'"),
        ({"frames": "x"}, "expected A:B"),
        ({"split_frame": 5}, "--split-frame needs --labelled"),
        ({"split_frame": 1, "labelled": True}, "must lie inside"),
        ({"camera": "other.avi=2"}, "no camera number for walk.avi"),
        ({"min_track": 50}, "no tracklet of at least 50"),
    ],
)
def test_bad_options(clip: tuple[Path, Path], tmp_path: Path, kwargs: dict, match: str) -> None:
    video, mot = clip
    with pytest.raises(DataError, match=match):
        video_to_dataset(video, tmp_path / "o", mot=mot, **kwargs)


def test_bad_inputs(clip: tuple[Path, Path], tmp_path: Path) -> None:
    video, _ = clip
    (tmp_path / "bad.txt").write_text("1,1,2,3\n")
    with pytest.raises(DataError, match=r"bad.txt:1: .* is not a MOT line"):
        read_mot(tmp_path / "bad.txt")
    (tmp_path / "not.avi").write_bytes(b"nothing")
    with pytest.raises(DataError, match="OpenCV cannot open this video"):
        list(read_frames(tmp_path / "not.avi"))
    assert parse_camera("walk.avi=3,x.avi=4", video) == 3 and parse_camera(None, video) == 1
    assert parse_frames("200:") == (200, None)


def test_missing_opencv_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)  # as if not installed
    with pytest.raises(DataError, match=r"pip install 'reidkit\[video\]'"):
        list(read_frames(tmp_path / "x.avi"))
