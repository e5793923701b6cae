"""Helpers shared by the video layouts: MATLAB split files, JSON split lists, tracklet folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.data.layouts.common import SkipLog, list_images
from reidkit.data.video_records import TrackletRecord
from reidkit.utils.errors import DataError

SCIPY_HINT = "pip install 'reidkit[adapt]' (scipy comes with it)"


def load_mat_array(path: Path, key: str, what: str) -> np.ndarray:
    """The array ``key`` of the MATLAB file ``path`` (scipy.io.loadmat), as int64.

    ``what`` says what the file should hold, for the one-line errors.
    """
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"{path}: reading .mat split files needs scipy: {SCIPY_HINT}") from None
    if not path.is_file():
        raise DataError(f"{path}: split file not found (expected {what})")
    try:
        data = loadmat(str(path))
    except Exception as e:  # scipy raises ValueError, MatReadError, OSError ...
        raise DataError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
    if key not in data:
        keys = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise DataError(f"{path}: has no {key!r} array (has: {keys}); expected {what}")
    try:
        arr = np.asarray(data[key])
        as_int = arr.astype(np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {key!r} is not a numeric array; expected {what}") from None
    if arr.size and not np.array_equal(as_int, arr):
        raise DataError(f"{path}: {key!r} holds non-integer values; expected {what}")
    return as_int


def read_json_splits(path: Path) -> list[dict[str, list[str]]]:
    """A JSON split list ``[{"train": [names], "test": [names]}, ...]`` (torchreid's and the
    DeepReID repository's format for iLIDS-VID and PRID2011)."""
    expected = 'a list of {"train": [person folder names], "test": [...]} objects'
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(
            f"{path}: not a readable JSON split file ({e}); expected {expected}"
        ) from None
    if isinstance(data, dict):
        data = [data]
    ok = isinstance(data, list) and data and all(isinstance(s, dict) for s in data)
    if ok:
        ok = all(
            isinstance(s.get(k), list) and all(isinstance(n, str) for n in s[k])
            for s in data
            for k in ("train", "test")
        )
    if not ok:
        raise DataError(f"{path}: expected {expected}")
    return data


def pick_split(splits: list[Any], index: int, path: Path) -> Any:
    """Split ``index`` of a split file, or a ``DataError`` naming ``video.split``'s range."""
    if index >= len(splits):
        raise DataError(
            f"video.split = {index}: {path} holds {len(splits)} split(s) "
            f"(valid 0..{len(splits) - 1})"
        )
    return splits[index]


def find_file(root: Path, names: list[str]) -> Path | None:
    """The first of ``names`` (relative paths) found under ``root`` or its parent folder."""
    for base in (root, root.parent):
        for name in names:
            if (base / name).is_file():
                return base / name
    return None


def sequence_folder(
    folder: Path, root: Path, pid: int, camid: int, min_frames: int, skips: SkipLog
) -> TrackletRecord | None:
    """The tracklet of one folder of frames (sorted by name); ``None`` (counted in ``skips``)
    when shorter than ``min_frames``; ``DataError`` when it holds no image at all."""
    frames = []
    for p in list_images(folder):
        if p.stat().st_size == 0:
            skips.add("empty file (0 bytes)", p)
        else:
            frames.append(p)
    if not frames:
        raise DataError(
            f"{folder}: tracklet folder holds no images (expected its frames as *.jpg / *.png)"
        )
    if len(frames) < min_frames:
        skips.add(f"tracklet shorter than video.min_frames={min_frames}", folder)
        return None
    return TrackletRecord(tuple(p.relative_to(root).as_posix() for p in frames), pid, camid)
