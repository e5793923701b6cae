"""Two-camera video layouts with split files: iLIDS-VID and PRID2011.

iLIDS-VID (Wang et al. 2014): ``sequences/cam1/personXXX/*.png`` and ``sequences/cam2/...``
(optionally below ``i-LIDS-VID/``); the splits are ``train-test people splits/
train_test_splits_ilidsvid.mat``, whose ``ls_set`` array has one row per split: a permutation
of 1-based positions in the sorted list of ``cam1`` person folders, the first half test
persons, the second half train persons.

PRID2011 (Hirzer et al. 2011): ``multi_shot/cam_a/person_XXXX/*.png`` and ``cam_b``
(optionally below ``prid_2011/``); the splits are ``splits_prid2011.json``: a list of
``{"train": [folder names], "test": [folder names]}``.

Either layout also takes a ``splits.json`` in that format. ``video.split`` picks the split
(default 0). **Without a split file** the persons present in both cameras, sorted by folder
name, alternate: even positions (1st, 3rd, ...) train, odd positions test; the log says so.
Split files are looked for in the dataset folder, its parent and the folder holding the
cameras. Train = both cameras' sequences of the train persons (pids relabelled); query = the
first camera's sequences of the test persons (camid 0), gallery = the second camera's
(camid 1); test pids are the numbers in the folder names.
"""

from __future__ import annotations

import re
from pathlib import Path

from reidkit.data.layouts.common import SkipLog
from reidkit.data.layouts.video_common import (
    find_file,
    load_mat_array,
    pick_split,
    read_json_splits,
    sequence_folder,
)
from reidkit.data.sources import FolderSource
from reidkit.data.video_records import (
    TrackletRecord,
    VideoDataset,
    relabel_tracklets,
    require_tracklets,
)
from reidkit.utils.errors import DataError
from reidkit.utils.logging import get_logger

ILIDS = {"cams": ("cam1", "cam2"), "mat": "train_test_splits_ilidsvid.mat"}
PRID = {"cams": ("cam_a", "cam_b"), "json": "splits_prid2011.json"}
NUMBER = re.compile(r"(\d+)")


def ilids_base(root: Path) -> Path | None:
    """The ``sequences/`` folder of an iLIDS-VID dataset under ``root``, if any."""
    for base in (root / "sequences", root / "i-LIDS-VID" / "sequences"):
        if (base / "cam1").is_dir() and (base / "cam2").is_dir():
            return base
    return None


def prid_base(root: Path) -> Path | None:
    """The ``multi_shot/`` folder of a PRID2011 dataset under ``root``, if any."""
    for base in (root / "multi_shot", root / "prid_2011" / "multi_shot"):
        if (base / "cam_a").is_dir() and (base / "cam_b").is_dir():
            return base
    return None


def _persons(cam: Path) -> list[str]:
    return sorted(d.name for d in cam.iterdir() if d.is_dir())


def _default_split(both: list[str], what: str) -> tuple[list[str], list[str]]:
    get_logger().info(
        f"{what}: no split file; default split of docs/datasets.md (persons in both cameras, "
        "sorted, alternate train / test)"
    )
    return both[0::2], both[1::2]


def _ilids_split(root: Path, base: Path, index: int) -> tuple[list[str], list[str]]:
    cam1 = _persons(base / "cam1")
    both = [p for p in cam1 if (base / "cam2" / p).is_dir()]
    names = [f"train-test people splits/{ILIDS['mat']}", ILIDS["mat"], "splits.json"]
    path = find_file(root, names) or find_file(base.parent, names)
    if path is None:
        return _default_split(both, f"{root} (iLIDS-VID)")
    if path.suffix == ".json":
        split = pick_split(read_json_splits(path), index, path)
        return split["train"], split["test"]
    what = "ls_set: one row per split, a permutation of 1-based cam1 person positions"
    rows = load_mat_array(path, "ls_set", what)
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise DataError(f"{path}: 'ls_set' has shape {rows.shape}; expected {what}")
    row = pick_split(list(rows), index, path)
    if row.min() < 1 or row.max() > len(cam1):
        raise DataError(
            f"{path}: ls_set row {index} holds positions outside 1..{len(cam1)} "
            f"(the {len(cam1)} person folders of {base / 'cam1'})"
        )
    half = len(row) // 2
    return [cam1[i - 1] for i in sorted(row[half:])], [cam1[i - 1] for i in sorted(row[:half])]


def _prid_split(root: Path, base: Path, index: int) -> tuple[list[str], list[str]]:
    both = [p for p in _persons(base / "cam_a") if (base / "cam_b" / p).is_dir()]
    names = [PRID["json"], "splits.json"]
    path = find_file(root, names) or find_file(base.parent, names)
    if path is None:
        return _default_split(both, f"{root} (PRID2011)")
    split = pick_split(read_json_splits(path), index, path)
    return split["train"], split["test"]


def _pid(name: str, fallback: int) -> int:
    m = NUMBER.search(name)
    return int(m.group(1)) if m and int(m.group(1)) > 0 else fallback


def _sequences(
    root: Path,
    base: Path,
    cams: tuple[str, str],
    names: list[str],
    which: tuple[int, ...],
    min_frames: int,
    skips: SkipLog,
) -> list[TrackletRecord]:
    out = []
    for pos, name in enumerate(names, 1):
        for camid in which:
            folder = base / cams[camid]
            if not (folder / name).is_dir():
                raise DataError(
                    f"{folder / name}: person folder named by the split not found (expected "
                    f"{cams[camid]}/<person>/ frames for every person of the split)"
                )
            t = sequence_folder(folder / name, root, _pid(name, pos), camid, min_frames, skips)
            if t is not None:
                out.append(t)
    return out


def _load_pairs(
    root: Path,
    base: Path,
    name: str,
    cams: tuple[str, str],
    split: tuple[list[str], list[str]],
    min_frames: int,
) -> VideoDataset:
    skips = SkipLog()
    train_names, test_names = split
    overlap = sorted(set(train_names) & set(test_names))
    if overlap:
        raise DataError(f"{root}: person {overlap[0]} is in both the train and the test split")
    train = _sequences(root, base, cams, train_names, (0, 1), min_frames, skips)
    query = _sequences(root, base, cams, test_names, (0,), min_frames, skips)
    gallery = _sequences(root, base, cams, test_names, (1,), min_frames, skips)
    if train_names:
        require_tracklets(train, base, "train")
    require_tracklets(query, base / cams[0], "query")
    require_tracklets(gallery, base / cams[1], "gallery")
    skips.warn()
    train, mapping = relabel_tracklets(train)
    return VideoDataset(
        name,
        train,
        query,
        gallery,
        len(mapping),
        FolderSource(root),
        class_names=list(train_names),
        skipped=skips.total,
        problems=skips.lines(),
    )


def load_ilidsvid(root: str | Path, split: int = 0, min_frames: int = 1) -> VideoDataset:
    """Read iLIDS-VID (see the module docstring)."""
    root = Path(root)
    base = ilids_base(root)
    if base is None:
        raise DataError(
            f"{root}: no sequences/cam1/ and sequences/cam2/ folders (iLIDS-VID "
            "layout: [i-LIDS-VID/]sequences/cam1|cam2/personXXX/*.png)"
        )
    names = _ilids_split(root, base, split)
    return _load_pairs(root, base, "ilidsvid", ILIDS["cams"], names, min_frames)


def load_prid2011(root: str | Path, split: int = 0, min_frames: int = 1) -> VideoDataset:
    """Read PRID2011 (see the module docstring)."""
    root = Path(root)
    base = prid_base(root)
    if base is None:
        raise DataError(
            f"{root}: no multi_shot/cam_a/ and multi_shot/cam_b/ folders (PRID2011 "
            "layout: [prid_2011/]multi_shot/cam_a|cam_b/person_XXXX/*.png)"
        )
    names = _prid_split(root, base, split)
    return _load_pairs(root, base, "prid2011", PRID["cams"], names, min_frames)
