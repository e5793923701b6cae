"""Video layouts with many cameras: MARS and DukeMTMC-VideoReID.

MARS (Zheng et al. 2016)::

    bbox_train/<pid>/<name>.jpg  bbox_test/<pid>/<name>.jpg
    info/train_name.txt  info/test_name.txt          one image name per line
    info/tracks_train_info.mat  (track_train_info)   rows: start, end, pid, camera
    info/tracks_test_info.mat   (track_test_info)    (start / end: 1-based lines of *_name.txt,
    info/query_IDX.mat          (query_IDX)          inclusive; camera 1-based)

Names look like ``0065C1T0002F0016.jpg`` (pid, camera, tracklet, frame); the image lives in
the folder of its first four characters. ``query_IDX`` holds 1-based rows of the test tracks;
the gallery is every other test track (the standard protocol). Junk tracklets (pid ``-1``)
stay in the gallery (the evaluator ignores them) and out of training.

DukeMTMC-VideoReID (Wu et al. 2018)::

    train/<pid>/<tracklet>/<pid>_C<camera>_F<frame>_X<n>.jpg  query/...  gallery/...

pid = the identity folder, camera = the ``C<N>`` field (1-based) of the frame names, frames
ordered by name. Without ``train/`` (or ``bbox_train/`` for MARS) a dataset is test-only.
"""

from __future__ import annotations

import re
from pathlib import Path

from reidkit.data.layouts.common import SkipLog
from reidkit.data.layouts.video_common import load_mat_array, sequence_folder
from reidkit.data.sources import FolderSource
from reidkit.data.video_records import (
    TrackletRecord,
    VideoDataset,
    keep_long,
    relabel_tracklets,
    require_tracklets,
)
from reidkit.utils.errors import DataError

MARS_INFO = {
    "train": ("train_name.txt", "tracks_train_info.mat", "track_train_info"),
    "test": ("test_name.txt", "tracks_test_info.mat", "track_test_info"),
}
TRACKS_WHAT = "an N x 4 array of rows start, end, pid, camera (1-based, inclusive)"
DUKE_VIDEO_SPLITS = ("train", "query", "gallery")
DUKE_CAMERA = re.compile(r"_C(\d+)", re.IGNORECASE)


def _names(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: MARS name list not found (expected one image name per line)")
    return [n.strip() for n in path.read_text(encoding="utf-8").splitlines() if n.strip()]


def _mars_tracks(root: Path, which: str, skips: SkipLog, min_frames: int) -> list[TrackletRecord]:
    """Tracklets of one MARS info file, in row order (rows shorter than ``min_frames`` are
    dropped and counted)."""
    names_file, mat_file, key = MARS_INFO[which]
    names = _names(root / "info" / names_file)
    mat = root / "info" / mat_file
    rows = load_mat_array(mat, key, TRACKS_WHAT)
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise DataError(f"{mat}: {key!r} has shape {rows.shape}; expected {TRACKS_WHAT}")
    folder = f"bbox_{which}"
    out = []
    for n, (start, end, pid, cam) in enumerate(rows.tolist(), 1):
        if start < 1 or end < start or end > len(names):
            raise DataError(
                f"{mat}: row {n} names frames {start}..{end}: an empty or out-of-range tracklet "
                f"({names_file} has {len(names)} names; expected 1 <= start <= end)"
            )
        if cam < 1:
            raise DataError(f"{mat}: row {n} has camera {cam}; cameras are 1-based")
        frames = tuple(f"{folder}/{name[:4]}/{name}" for name in names[start - 1 : end])
        out.append(TrackletRecord(frames, int(pid), int(cam) - 1))
    kept, short = keep_long(out, min_frames)
    if short:
        skips.counts[f"tracklet shorter than video.min_frames={min_frames}"] = short
        skips.first.setdefault(f"tracklet shorter than video.min_frames={min_frames}", str(mat))
    return kept


def _query_rows(root: Path, num_tracks: int) -> set[int]:
    """0-based rows of the test tracks that are queries."""
    path = root / "info" / "query_IDX.mat"
    idx = load_mat_array(path, "query_IDX", "1-based row numbers of the test tracks").reshape(-1)
    if idx.size == 0 or idx.min() < 1 or idx.max() > num_tracks:
        raise DataError(
            f"{path}: query_IDX must hold 1-based rows of tracks_test_info.mat (1..{num_tracks})"
        )
    return set((idx - 1).tolist())


def load_mars(root: str | Path, min_frames: int = 1) -> VideoDataset:
    """Read a MARS folder (see the module docstring)."""
    root = Path(root)
    skips = SkipLog()
    for folder in ("bbox_test", "info"):
        if not (root / folder).is_dir():
            raise DataError(
                f"{root / folder}: folder not found (MARS layout: bbox_train/, bbox_test/, info/)"
            )
    train: list[TrackletRecord] = []
    if (root / "bbox_train").is_dir():
        train = [t for t in _mars_tracks(root, "train", skips, min_frames) if t.pid > 0]
        require_tracklets(train, root / "info" / "tracks_train_info.mat", "train")
    # query rows index the full test list, so filter by length only after picking them
    test = _mars_tracks(root, "test", skips, 1)
    q_rows = _query_rows(root, len(test))
    query = [t for i, t in enumerate(test) if i in q_rows and len(t) >= min_frames]
    gallery = [t for i, t in enumerate(test) if i not in q_rows and len(t) >= min_frames]
    for split, tracks in (("query", query), ("gallery", gallery)):
        require_tracklets(tracks, root / "info" / "query_IDX.mat", split)
    skips.warn()
    train, mapping = relabel_tracklets(train)
    return VideoDataset(
        "mars",
        train,
        query,
        gallery,
        len(mapping),
        FolderSource(root),
        skipped=skips.total,
        problems=skips.lines(),
    )


def _duke_camera(tracklet: TrackletRecord, folder: Path) -> int:
    m = DUKE_CAMERA.search(tracklet.frames[0].rsplit("/", 1)[-1])
    if m is None or int(m.group(1)) < 1:
        raise DataError(
            f"{folder}: frame {tracklet.frames[0]!r} has no camera field; expected names like "
            "0001_C6_F0007_X00001.jpg (C<camera>, 1-based)"
        )
    return int(m.group(1)) - 1


def _duke_split(root: Path, split: str, skips: SkipLog, min_frames: int) -> list[TrackletRecord]:
    out = []
    base = root / split
    for pid_dir in sorted(d for d in base.iterdir() if d.is_dir()):
        if not pid_dir.name.lstrip("-").isdigit():
            skips.add("identity folder name is not a number", pid_dir)
            continue
        for tdir in sorted(d for d in pid_dir.iterdir() if d.is_dir()):
            t = sequence_folder(tdir, root, int(pid_dir.name), 0, min_frames, skips)
            if t is not None:
                out.append(TrackletRecord(t.frames, t.pid, _duke_camera(t, tdir)))
    return out


def is_duke_video(root: Path) -> bool:
    """Whether ``root`` holds DukeMTMC-VideoReID folders (``query/<pid>/<tracklet>/``): its
    first identity folders hold tracklet folders rather than images."""
    if not all((root / s).is_dir() for s in ("query", "gallery")):
        return False
    pids = sorted(d for d in (root / "query").iterdir() if d.is_dir())[:3]
    return bool(pids) and all(any(sub.is_dir() for sub in p.iterdir()) for p in pids)


def load_duke_video(root: str | Path, min_frames: int = 1) -> VideoDataset:
    """Read a DukeMTMC-VideoReID folder (see the module docstring)."""
    root = Path(root)
    skips = SkipLog()
    splits: dict[str, list[TrackletRecord]] = {}
    for split in DUKE_VIDEO_SPLITS:
        if not (root / split).is_dir():
            if split == "train":
                splits[split] = []  # a test-only dataset
                continue
            raise DataError(
                f"{root / split}: folder not found (DukeMTMC-VideoReID layout: "
                "train/, query/, gallery/ of <pid>/<tracklet>/*.jpg)"
            )
        splits[split] = _duke_split(root, split, skips, min_frames)
        if split != "train" or any((root / split).iterdir()):
            require_tracklets(splits[split], root / split, split)
    skips.warn()
    train, mapping = relabel_tracklets([t for t in splits["train"] if t.pid > 0])
    return VideoDataset(
        "dukemtmc_video",
        train,
        splits["query"],
        splits["gallery"],
        len(mapping),
        FolderSource(root),
        skipped=skips.total,
        problems=skips.lines(),
    )
