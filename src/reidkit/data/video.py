"""Reading video frames and finding people in them with OpenCV (the ``reidkit[video]`` extra).

* ``open_video`` / ``read_frames``: frames ``first..last`` (1-based, inclusive) of a video file,
  every ``stride``-th one, read in order and never past ``last``.
* ``HogDetector``: OpenCV's HOG + linear SVM people detector (Dalal & Triggs), run on a
  frame scaled by ``upscale`` (people shorter than ~128 / upscale pixels are missed
  otherwise), detections below ``min_score`` dropped, overlaps merged by non-maximum
  suppression, boxes returned in the frame's own pixels.
* ``detect_tracklets``: both of the above plus ``tracklets.IouLinker``.

OpenCV is imported here only, when first needed. OpenCV 5 moved the HOG detector out of the
main package, so the extra pins ``opencv-python-headless<5``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.data.tracklets import Box, IouLinker, Tracklet
from reidkit.utils.errors import DataError

EXTRA_HINT = "pip install 'reidkit[video]' (opencv-python-headless<5)"


def import_cv2() -> Any:
    """The ``cv2`` module, or a one-line ``DataError`` naming the extra to install."""
    try:
        import cv2
    except ImportError:
        raise DataError(f"reading video needs OpenCV: {EXTRA_HINT}") from None
    return cv2


def parse_frames(text: str | None) -> tuple[int, int | None]:
    """``"A:B"`` -> ``(A, B)``: frames A to B inclusive, 1-based; ``"A:"`` to the end."""
    if not text:
        return 1, None
    first, sep, last = text.partition(":")
    try:
        a = int(first) if first.strip() else 1
        b = int(last) if last.strip() else None
    except ValueError:
        a, b, sep = 0, None, ""
    if not sep or a < 1 or (b is not None and b < a):
        raise DataError(
            f"--frames {text!r}: expected A:B, frames A to B inclusive, 1-based (e.g. 1:199, "
            "200:399, or 200: to the end)"
        )
    return a, b


def open_video(path: str | Path) -> Any:
    """An opened ``cv2.VideoCapture`` of ``path``; ``DataError`` if it cannot be read."""
    cv2 = import_cv2()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"{path}: OpenCV cannot open this video (unknown codec or not a video)")
    return cap


def read_frames(
    path: str | Path,
    first: int = 1,
    last: int | None = None,
    stride: int = 1,
    only: set[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame number, BGR image)`` for frames ``first, first + stride, ...`` up to ``last``
    (only those in ``only`` when given).

    Frames not wanted are skipped with ``grab()`` (not decoded); nothing after ``last`` is read.
    """
    if stride < 1:
        raise DataError(f"--stride {stride}: expected at least 1")
    cap = open_video(path)
    try:
        frame = 0
        while last is None or frame < last:
            frame += 1
            wanted = frame >= first and (frame - first) % stride == 0
            wanted = wanted and (only is None or frame in only)
            if not wanted:
                if not cap.grab():
                    return
                continue
            ok, image = cap.read()
            if not ok:
                return
            yield frame, image
    finally:
        cap.release()


@dataclass
class HogDetector:
    """OpenCV's HOG people detector with the settings of the module docstring."""

    upscale: float = 1.5
    min_score: float = 0.5
    nms: float = 0.4
    win_stride: int = 8
    scale_step: float = 1.05

    def __post_init__(self) -> None:
        cv2 = import_cv2()
        if not hasattr(cv2, "HOGDescriptor"):
            raise DataError(
                f"OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it out "
                f"of the main package): {EXTRA_HINT}"
            )
        self._cv2 = cv2
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, frame: int, image: np.ndarray) -> list[Box]:
        """People boxes of one BGR image (pixels of ``image``), best score first."""
        cv2 = self._cv2
        scaled = image
        if self.upscale != 1:
            scaled = cv2.resize(image, None, fx=self.upscale, fy=self.upscale)
        step = (self.win_stride, self.win_stride)
        rects, weights = self._hog.detectMultiScale(
            scaled, winStride=step, padding=step, scale=self.scale_step
        )
        if len(rects) == 0:
            return []
        scores = np.asarray(weights, dtype=np.float32).reshape(-1)
        boxes = [[float(v) / self.upscale for v in r] for r in np.asarray(rects)]
        keep = cv2.dnn.NMSBoxes(boxes, scores.tolist(), self.min_score, self.nms)
        order = sorted(np.asarray(keep).reshape(-1).tolist(), key=lambda i: -scores[i])
        return [Box(frame, *boxes[i], score=float(scores[i])) for i in order]


def detect_tracklets(
    path: str | Path,
    first: int = 1,
    last: int | None = None,
    stride: int = 1,
    detector: HogDetector | None = None,
    min_iou: float = 0.3,
    max_gap: int = 5,
) -> list[Tracklet]:
    """Tracklets of the people HOG finds in frames ``first..last`` of a video.

    ``max_gap`` (frames) is raised to ``stride`` so striding alone never breaks a track.
    """
    detector = detector or HogDetector()
    linker = IouLinker(min_iou, max(max_gap, stride))
    for frame, image in read_frames(path, first, last, stride):
        linker.update(frame, detector(frame, image))
    return linker.tracks
