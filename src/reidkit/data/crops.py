"""``reidkit crops``: a video (and optionally a MOT file) -> a ReID dataset of person crops.

Where the boxes come from: a MOTChallenge file (``mot``: track id = identity), or OpenCV's
HOG people detector linked into tracklets by overlap (``reidkit.data.video``; tracklet =
identity, numbered 1.. in order of appearance). Boxes are kept inside ``frames`` (A:B, 1-based,
inclusive), every ``stride``-th frame, at least ``min_height`` pixels tall; tracklets with
fewer than ``min_track`` boxes are dropped and the rest thinned to ``max_crops`` boxes, evenly
spread in time.

What is written under ``out``:

* unlabeled (default): a flat folder of crops ``f<frame>_t<track>.jpg`` (names that do not
  parse as Market ids, so nothing treats them as labels);
* ``labelled``: a Market-1501 folder, ``<pid>_c<cam>s1_<frame>_<n>.jpg``. Each tracklet is
  split by time: its earlier half goes to ``query/``, its later half to ``bounding_box_test/``.
  One video is one camera, and the Market protocol never scores a query against gallery
  images of its own camera, so time stands in for a second camera: query crops of camera N
  (``camera``, default 1) are numbered ``c<2N-1>``, gallery crops ``c<2N>``. No train split:
  a test-only dataset for ``reidkit eval RUN --data OUT``.
* ``labelled`` with ``split_frame`` F: tracklets are cut at F; boxes of frames < F form
  ``bounding_box_train/`` (camera ``c<2N-1>``) and boxes of frames >= F the query / gallery
  as above, so one folder says "adapt / train on the early frames, test on the late ones".

Every output also has ``tracks.txt`` (the written boxes, MOT format) and ``crops.json`` (the
arguments and counts; it marks a folder this command wrote, which ``overwrite`` may replace).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidkit.data.tracklets import Box, Tracklet, read_mot, select, split_at
from reidkit.data.video import HogDetector, detect_tracklets, import_cv2, parse_frames, read_frames
from reidkit.utils.errors import DataError
from reidkit.utils.files import remove_stale_temp_files, temp_folder, undo_new_folders
from reidkit.utils.write_errors import write_guard

MARKER = "crops.json"
WRITTEN = ("bounding_box_train", "query", "bounding_box_test", "tracks.txt", MARKER)
# the unlabeled crop name ``f<frame>_t<track>`` (other ``_``-separated fields may surround it)
CROP_NAME = re.compile(r"(?:^|[_\-.])f(\d+)_t(\d+)(?=$|[_\-.])", re.IGNORECASE)


def crop_name(frame: int, track: int) -> str:
    """The file stem of an unlabeled crop of ``track`` in ``frame`` (what ``parse_crop_name``
    reads back)."""
    return f"f{frame:06d}_t{track:04d}"


def parse_crop_name(name: str) -> tuple[int, int] | None:
    """``(frame, track)`` of an unlabeled crop named by ``crop_name`` (the file name, with or
    without suffix), or None when the name carries no tracklet."""
    m = CROP_NAME.search(name.rsplit(".", 1)[0] if "." in name else name)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class Crop:
    """One crop to cut: its box, the folder (relative to the output) and the file name."""

    box: Box
    folder: str
    name: str
    pid: int


def parse_camera(text: str | int | None, video: str | Path) -> int:
    """The camera number of ``video``: ``N``, or a mapping ``name=N,name=N`` looked up by the
    video's file name (or its name without suffix)."""
    if text is None or str(text).strip() == "":
        return 1
    text = str(text)
    if "=" not in text:
        mapping = {"": text}
    else:
        mapping = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
    name = Path(video).name
    value = mapping.get("", mapping.get(name, mapping.get(Path(video).stem)))
    if value is None:
        raise DataError(f"--camera {text!r}: no camera number for {name} (use {name}=N)")
    try:
        cam = int(value)
    except ValueError:
        cam = 0
    if not 1 <= cam <= 4999:
        raise DataError(f"--camera {text!r}: camera numbers are integers 1..4999")
    return cam


def _prepare(out: Path, overwrite: bool) -> None:
    """Refuse a folder holding other files, or an earlier ``crops`` output without
    ``overwrite``."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / MARKER).is_file():
        raise DataError(f"{out}: folder is not empty and was not written by reidkit crops")
    if not overwrite:
        raise DataError(f"{out}: holds an earlier reidkit crops output; pass --overwrite")


def _ours(entry: Path) -> bool:
    """Whether ``entry`` of an output folder was written by ``crops``."""
    return entry.name in WRITTEN or (entry.name.startswith("f") and entry.suffix == ".jpg")


def _move_into(stage: Path, out: Path) -> None:
    """Replace the earlier output in ``out`` with the finished one in ``stage`` (the marker
    last: a folder with a marker is complete)."""
    for entry in out.iterdir():
        if _ours(entry) and entry.is_dir():
            shutil.rmtree(entry)
        elif _ours(entry):
            entry.unlink()
    for entry in sorted(stage.iterdir(), key=lambda e: e.name == MARKER):
        os.replace(entry, out / entry.name)


def _write_staged(out: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(stage)`` into a work folder beside ``out`` (not inside: a folder of crops
    is read at any depth), then move the result into place: a failed or interrupted run
    (disk full ...) leaves ``out`` as it was."""
    with undo_new_folders(out):
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out.parent)  # work folders of killed runs
        stage = temp_folder(out)
        try:
            with write_guard(out, stage):
                write(stage)
                _move_into(stage, out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _halves(tracks: list[Tracklet], cam: int) -> list[Crop]:
    """Query (earlier half, camera 2N-1) and gallery (later half, camera 2N) of each tracklet."""
    crops = []
    for t in tracks:
        n_query = len(t.boxes) // 2
        for i, b in enumerate(t.boxes):
            folder, c = ("query", 2 * cam - 1) if i < n_query else ("bounding_box_test", 2 * cam)
            crops.append(Crop(b, folder, f"{t.tid:04d}_c{c}s1_{b.frame:06d}", t.tid))
    return crops


def plan_crops(
    tracks: list[Tracklet],
    labelled: bool,
    cam: int = 1,
    split_frame: int | None = None,
    min_track: int = 1,
    max_crops: int = 0,
) -> list[Crop]:
    """Which box goes to which folder under which name (see the module docstring)."""
    if not labelled:
        tracks = select(tracks, min_track=min_track, max_crops=max_crops)
        return [Crop(b, "", crop_name(b.frame, t.tid), t.tid) for t in tracks for b in t.boxes]
    if max((t.tid for t in tracks), default=0) > 9999:
        raise DataError(
            f"{max(t.tid for t in tracks)} tracklets: Market names hold 4-digit ids; "
            "use fewer frames (--frames) or a larger --min-track"
        )
    if split_frame is None:
        return _halves(select(tracks, min_track=min_track, max_crops=max_crops), cam)
    before, after = split_at(tracks, split_frame)
    train = [
        Crop(b, "bounding_box_train", f"{t.tid:04d}_c{2 * cam - 1}s1_{b.frame:06d}", t.tid)
        for t in select(before, min_track=min_track, max_crops=max_crops)
        for b in t.boxes
    ]
    return train + _halves(select(after, min_track=min_track, max_crops=max_crops), cam)


def cut_crops(video: str | Path, out: Path, crops: list[Crop], quality: int = 95) -> int:
    """Cut every crop from its frame and write it as JPEG; returns the number written.

    Boxes are clipped to the frame; a box left with no pixels is skipped. The per-frame
    number ``_<n>`` (1-based) tells crops of one frame apart.
    """
    cv2 = import_cv2()
    by_frame: dict[int, list[Crop]] = {}
    for c in crops:
        by_frame.setdefault(c.box.frame, []).append(c)
    if not by_frame:
        return 0
    for folder in {c.folder for c in crops}:
        (out / folder).mkdir(parents=True, exist_ok=True)
    written = 0
    first, last = min(by_frame), max(by_frame)
    for frame, image in read_frames(video, first, last, only=set(by_frame)):
        h, w = image.shape[:2]
        for n, c in enumerate(by_frame.pop(frame), 1):
            b = c.box
            x0, y0 = max(0, int(round(b.x))), max(0, int(round(b.y)))
            x1, y1 = min(w, int(round(b.x + b.w))), min(h, int(round(b.y + b.h)))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            params = [cv2.IMWRITE_JPEG_QUALITY, quality]
            ok, data = cv2.imencode(".jpg", image[y0:y1, x0:x1], params)
            if ok:
                suffix = f"_{n:02d}.jpg" if c.folder else ".jpg"
                (out / c.folder / f"{c.name}{suffix}").write_bytes(data.tobytes())
                written += 1
    if by_frame:
        raise DataError(f"{video}: ends before frame {min(by_frame)} named by the boxes")
    return written


def _tracks_text(crops: list[Crop]) -> str:
    """The crops' boxes as MOTChallenge lines (frame,id,x,y,w,h,score,-1,-1,-1)."""
    rows = sorted({(c.box.frame, c.pid, c.box) for c in crops}, key=lambda r: (r[0], r[1]))
    return "".join(
        f"{f},{pid},{b.x:.1f},{b.y:.1f},{b.w:.1f},{b.h:.1f},{b.score:.3f},-1,-1,-1\n"
        for f, pid, b in rows
    )


def video_to_dataset(
    video: str | Path,
    out: str | Path,
    *,
    mot: str | Path | None = None,
    labelled: bool = False,
    frames: str | None = None,
    stride: int = 1,
    min_height: float = 0,
    min_track: int = 5,
    max_crops_per_track: int = 0,
    split_frame: int | None = None,
    camera: str | int | None = None,
    overwrite: bool = False,
    detector: HogDetector | None = None,
    min_iou: float = 0.3,
    max_gap: int = 5,
) -> dict[str, Any]:
    """Write the crops of ``video`` under ``out`` (see the module docstring); returns counts."""
    first, last = parse_frames(frames)
    cam = parse_camera(camera, video)
    if split_frame is not None:
        if not labelled:
            raise DataError("--split-frame needs --labelled (for unlabeled crops use --frames)")
        if split_frame <= first or (last is not None and split_frame > last):
            raise DataError(f"--split-frame {split_frame}: must lie inside --frames {frames}")
    if stride < 1 or min_track < 1 or max_crops_per_track < 0 or min_height < 0:
        raise DataError(
            "--stride and --min-track must be >= 1, --max-crops-per-track and --min-height >= 0"
        )
    out = Path(out)
    if mot is not None:
        found = read_mot(mot)
        found = [
            Tracklet(t.tid, [b for b in t.boxes if (b.frame - first) % stride == 0]) for t in found
        ]
    else:
        found = detect_tracklets(video, first, last, stride, detector, min_iou, max_gap)
    kept = select(found, first, last, min_height, min_track)
    if mot is None:  # detected tracklets: number the kept ones 1.. in order of appearance
        kept = [Tracklet(i, t.boxes) for i, t in enumerate(kept, 1)]
    crops = plan_crops(kept, labelled, cam, split_frame, min_track, max_crops_per_track)
    if not crops:
        raise DataError(
            f"{video}: no tracklet of at least {min_track} boxes in frames {first}:{last or ''} "
            "(try a lower --min-track / --min-height, or more frames)"
        )
    _prepare(out, overwrite)
    summary = {
        "video": str(video),
        "out": str(out),
        "source": "mot" if mot is not None else "hog",
        "frames": [first, last],
        "tracklets_found": len(found),
        "tracklets_kept": len({c.pid for c in crops}),
        "images": 0,
        "splits": {
            folder or "crops": sum(1 for c in crops if c.folder == folder)
            for folder in sorted({c.folder for c in crops})
        },
    }
    args = {
        "mot": str(mot) if mot else None,
        "labelled": labelled,
        "stride": stride,
        "min_height": min_height,
        "min_track": min_track,
        "max_crops_per_track": max_crops_per_track,
        "split_frame": split_frame,
        "camera": cam,
    }

    def write(stage: Path) -> None:
        summary["images"] = cut_crops(video, stage, crops)
        (stage / "tracks.txt").write_text(_tracks_text(crops), encoding="utf-8")
        marker = json.dumps({"args": args, "summary": summary}, indent=2) + "\n"
        (stage / MARKER).write_text(marker, encoding="utf-8")

    _write_staged(out, write)
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines of a ``video_to_dataset`` summary."""
    first, last = summary["frames"]
    lines = [
        f"{summary['video']} frames {first}:{last or 'end'} ({summary['source']}): "
        f"{summary['tracklets_kept']} of {summary['tracklets_found']} tracklets kept, "
        f"{summary['images']} crops written to {summary['out']}"
    ]
    lines += [f"  {split}: {n} images" for split, n in summary["splits"].items()]
    return lines
