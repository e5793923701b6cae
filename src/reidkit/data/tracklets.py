"""Tracklets: boxes of one person over consecutive frames, from a MOT file or linked detections.

A ``Box`` is one person in one frame (frames are 1-based, as in MOTChallenge files); a
``Tracklet`` is the boxes of one track id in frame order. Two sources:

* ``read_mot(path)``: a MOTChallenge text file, one box per line
  ``frame,id,x,y,w,h,conf,...`` (extra columns ignored). Lines with ``conf`` 0 (ground truth's
  "ignore this box") or a non-positive size are left out.
* ``IouLinker``: detections arrive frame by frame and are linked to the track whose last box
  overlaps them most (intersection over union at least ``min_iou``, greedy, best pairs first);
  a track not seen for more than ``max_gap`` frames is closed. Nothing here needs OpenCV.

``select`` then keeps what a dataset is made of: boxes inside a frame range, tall enough,
tracklets long enough, at most N boxes each (spread evenly in time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reidkit.utils.errors import DataError


@dataclass(frozen=True)
class Box:
    """One person box in one frame: top-left ``x, y``, size ``w, h`` in pixels; 1-based frame."""

    frame: int
    x: float
    y: float
    w: float
    h: float
    score: float = 1.0


@dataclass
class Tracklet:
    """The boxes of one track id, in frame order."""

    tid: int
    boxes: list[Box] = field(default_factory=list)

    @property
    def start(self) -> int:
        """First frame of the tracklet."""
        return self.boxes[0].frame

    @property
    def end(self) -> int:
        """Last frame of the tracklet."""
        return self.boxes[-1].frame


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def read_mot(path: str | Path) -> list[Tracklet]:
    """The tracklets of a MOTChallenge file (see the module docstring), sorted by id."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MOT file not found")
    tracks: dict[int, list[Box]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.replace(" ", ",").split(",") if p.strip()]
        try:
            frame, tid = int(float(parts[0])), int(float(parts[1]))
            x, y, w, h = (float(v) for v in parts[2:6])
            conf = float(parts[6]) if len(parts) > 6 else 1.0
        except (IndexError, ValueError):
            raise DataError(
                f"{path}:{number}: {line.strip()[:60]!r} is not a MOT line "
                "'frame,id,x,y,w,h,conf,...' (numbers, frames 1-based)"
            ) from None
        if frame < 1 or tid < 1:
            raise DataError(f"{path}:{number}: frame {frame} / id {tid}: both must be >= 1")
        if conf == 0 or w <= 0 or h <= 0:
            continue
        tracks.setdefault(tid, []).append(Box(frame, x, y, w, h, conf))
    if not tracks:
        raise DataError(f"{path}: no usable boxes (expected lines 'frame,id,x,y,w,h,conf,...')")
    out = []
    for tid in sorted(tracks):
        boxes = sorted(tracks[tid], key=lambda b: b.frame)
        if len({b.frame for b in boxes}) != len(boxes):
            raise DataError(f"{path}: id {tid} has two boxes in one frame; ids must be tracks")
        out.append(Tracklet(tid, boxes))
    return out


class IouLinker:
    """Links per-frame detections into tracklets by box overlap (see the module docstring)."""

    def __init__(self, min_iou: float = 0.3, max_gap: int = 5) -> None:
        if not 0 < min_iou <= 1:
            raise DataError(f"min_iou = {min_iou}: expected a value in (0, 1]")
        if max_gap < 1:
            raise DataError(f"max_gap = {max_gap}: expected at least 1 frame")
        self.min_iou, self.max_gap = min_iou, max_gap
        self.tracks: list[Tracklet] = []
        self._active: list[Tracklet] = []

    def update(self, frame: int, detections: Sequence[Box]) -> None:
        """Add the detections of ``frame`` (frames must come in increasing order)."""
        self._active = [t for t in self._active if frame - t.end <= self.max_gap]
        pairs = sorted(
            (
                (iou(t.boxes[-1], d), ti, di)
                for ti, t in enumerate(self._active)
                for di, d in enumerate(detections)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_d: set[int] = set()
        for overlap, ti, di in pairs:
            if overlap < self.min_iou:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            self._active[ti].boxes.append(detections[di])
        for di, d in enumerate(detections):
            if di not in used_d:
                track = Tracklet(len(self.tracks) + 1, [d])
                self.tracks.append(track)
                self._active.append(track)


def link(frames: Iterable[tuple[int, Sequence[Box]]], min_iou: float = 0.3, max_gap: int = 5):
    """Tracklets of ``(frame, detections)`` pairs in frame order (an ``IouLinker`` run)."""
    linker = IouLinker(min_iou, max_gap)
    for frame, dets in frames:
        linker.update(frame, dets)
    return linker.tracks


def spread(boxes: Sequence[Box], limit: int) -> list[Box]:
    """At most ``limit`` of ``boxes`` (0: all), evenly spaced in time, first and last kept."""
    if limit <= 0 or len(boxes) <= limit:
        return list(boxes)
    if limit == 1:
        return [boxes[len(boxes) // 2]]
    picks = np.linspace(0, len(boxes) - 1, limit).round().astype(int)
    return [boxes[i] for i in sorted(set(picks.tolist()))]


def select(
    tracklets: Iterable[Tracklet],
    first: int = 1,
    last: int | None = None,
    min_height: float = 0,
    min_track: int = 1,
    max_crops: int = 0,
) -> list[Tracklet]:
    """Tracklets cut to frames ``first..last`` (inclusive) and boxes at least ``min_height``
    tall; those left with fewer than ``min_track`` boxes are dropped, the others thinned to
    ``max_crops`` boxes (0: all)."""
    out = []
    for t in tracklets:
        boxes = [
            b
            for b in t.boxes
            if b.frame >= first and (last is None or b.frame <= last) and b.h >= min_height
        ]
        if len(boxes) >= max(1, min_track):
            out.append(Tracklet(t.tid, spread(boxes, max_crops)))
    return out


def split_at(tracklets: Iterable[Tracklet], frame: int) -> tuple[list[Tracklet], list[Tracklet]]:
    """``(before, from)``: each tracklet's boxes of frames ``< frame`` and ``>= frame``."""
    before, after = [], []
    for t in tracklets:
        early = [b for b in t.boxes if b.frame < frame]
        late = [b for b in t.boxes if b.frame >= frame]
        if early:
            before.append(Tracklet(t.tid, early))
        if late:
            after.append(Tracklet(t.tid, late))
    return before, after
