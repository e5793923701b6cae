"""Helpers of the video tests: tiny tracklet datasets written in each real layout.

Every frame is a 32x16 image whose colour says its identity (plus a little per-frame noise and
a camera tint), so a tiny model can tell identities apart and a wrong grouping shows.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 32, 16


def frame_bytes(pid: int, cam: int, frame: int, fmt: str = "JPEG") -> bytes:
    """An encoded 32x16 frame of identity ``pid`` seen by camera ``cam``."""
    rng = np.random.default_rng([pid + 1, cam, frame])
    base = np.array([(pid * 67) % 256, (pid * 131 + 40) % 256, (pid * 29 + 90) % 256], float)
    img = base[None, None, :] + rng.normal(0, 12, (H, W, 3)) + cam * 6
    img[H // 2 :, :, :] = 255 - img[H // 2 :, :, :]  # legs: another colour
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_mars(root: Path, train_ids=(1, 2, 3, 4), test_ids=(5, 6, 7), frames: int = 4) -> Path:
    """A MARS folder: two cameras per identity, one tracklet each; one junk test tracklet;
    the queries are the camera-1 tracklets of the test identities."""
    from scipy.io import savemat

    for split, ids in (("train", train_ids), ("test", test_ids)):
        names, rows = [], []
        tracks = [(pid, cam) for pid in ids for cam in (1, 2)]
        if split == "test":
            tracks.append((-1, 1))
        for t, (pid, cam) in enumerate(tracks, 1):
            start = len(names) + 1
            folder = "00-1" if pid == -1 else f"{pid:04d}"
            for f in range(1, frames + 1):
                name = f"{folder}C{cam}T{t:04d}F{f:03d}.jpg"
                write(root / f"bbox_{split}" / folder / name, frame_bytes(pid, cam, f))
                names.append(name)
            rows.append([start, len(names), pid, cam])
        (root / "info").mkdir(parents=True, exist_ok=True)
        (root / "info" / f"{split}_name.txt").write_text("\n".join(names) + "\n")
        key = f"track_{split}_info"
        savemat(str(root / "info" / f"tracks_{split}_info.mat"), {key: np.array(rows, float)})
    query = [i + 1 for i in range(0, 2 * len(test_ids), 2)]  # camera-1 rows
    savemat(str(root / "info" / "query_IDX.mat"), {"query_IDX": np.array([query], float)})
    return root


def make_ilids(root: Path, persons: int = 6, frames: int = 4, split_file: bool = True) -> Path:
    """An iLIDS-VID folder (``i-LIDS-VID/sequences/cam1|cam2/personXXX/*.png``) with, when
    ``split_file``, a ``train_test_splits_ilidsvid.mat`` of two splits."""
    base = root / "i-LIDS-VID" / "sequences"
    for p in range(1, persons + 1):
        for cam in (1, 2):
            for f in range(1, frames + 1):
                name = f"cam{cam}_person{p:03d}_{f:05d}.png"
                write(base / f"cam{cam}" / f"person{p:03d}" / name, frame_bytes(p, cam, f, "PNG"))
    if split_file:
        from scipy.io import savemat

        rng = np.random.default_rng(0)
        rows = np.stack([rng.permutation(persons) + 1 for _ in range(2)]).astype(float)
        folder = root / "train-test people splits"
        folder.mkdir(parents=True, exist_ok=True)
        savemat(str(folder / "train_test_splits_ilidsvid.mat"), {"ls_set": rows})
    return root


def make_prid(root: Path, persons: int = 6, frames: int = 4, split_file: bool = True) -> Path:
    """A PRID2011 folder (``prid_2011/multi_shot/cam_a|cam_b/person_XXXX/*.png``); camera B
    also has a person seen only there; ``split_file`` writes ``splits_prid2011.json``."""
    base = root / "prid_2011" / "multi_shot"
    for cam, ids in (("cam_a", range(1, persons + 1)), ("cam_b", range(1, persons + 2))):
        for p in ids:
            for f in range(1, frames + 1):
                data = frame_bytes(p, 1 if cam == "cam_a" else 2, f, "PNG")
                write(base / cam / f"person_{p:04d}" / f"{f:04d}.png", data)
    if split_file:
        names = [f"person_{p:04d}" for p in range(1, persons + 1)]
        split = {"train": names[: persons // 2], "test": names[persons // 2 :]}
        (root / "splits_prid2011.json").write_text(json.dumps([split, split]))
    return root


def make_duke_video(
    root: Path, train_ids=(1, 2, 3, 4), test_ids=(5, 6, 7), frames: int = 4
) -> Path:
    """A DukeMTMC-VideoReID folder: ``train|query|gallery/<pid>/<tracklet>/*.jpg``; every
    identity one tracklet per camera (query camera 1, gallery cameras 2 and 3)."""
    layout = [("train", pid, cam) for pid in train_ids for cam in (1, 2)]
    layout += [("query", pid, 1) for pid in test_ids]
    layout += [("gallery", pid, cam) for pid in test_ids for cam in (2, 3)]
    for t, (split, pid, cam) in enumerate(layout, 1):
        for f in range(1, frames + 1):
            name = f"{pid:04d}_C{cam}_F{f:04d}_X{t:05d}.jpg"
            write(root / split / f"{pid:04d}" / f"{t:04d}" / name, frame_bytes(pid, cam, f))
    return root


def make_crops_folder(root: Path, ids=(1, 2, 3, 4), frames: int = 6, train: bool = True) -> Path:
    """A folder as ``reidkit crops --labelled [--split-frame]`` writes it: Market names
    ``<pid>_c<cam>s1_<frame>_<n>.jpg``, each identity's earlier frames in ``query/``
    (camera c1), later ones in ``bounding_box_test/`` (c2); ``train`` adds
    ``bounding_box_train/`` (c1, earlier frames of other identities)."""
    for pid in ids:
        for f in range(1, frames + 1):
            folder, cam = ("query", 1) if f <= frames // 2 else ("bounding_box_test", 2)
            name = f"{pid:04d}_c{cam}s1_{100 + 7 * f:06d}_01.jpg"
            write(root / folder / name, frame_bytes(pid, cam, f))
    if train:
        for pid in (11, 12, 13, 14):
            for f in range(1, frames + 1):
                write(
                    root / "bounding_box_train" / f"{pid:04d}_c1s1_{f:06d}_01.jpg",
                    frame_bytes(pid, 1, f),
                )
    (root / "crops.json").write_text(json.dumps({"args": {"labelled": True}}))
    return root
