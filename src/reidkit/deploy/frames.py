"""Crops of detector boxes in video frames, for ``Embedder.embed_frames``.

Boxes are ``(x1, y1, x2, y2)`` in pixels of their frame (x2 / y2 exclusive, floats allowed).
Each box is clipped to its frame, then widened to whole pixels (``floor`` of the top-left,
``ceil`` of the bottom-right), and the crop is ``frame[y1:y2, x1:x2]`` — the same pixels a user
would cut with numpy. A box is **invalid** when a coordinate is not finite, or when its clipped
crop is smaller than ``MIN_SIDE`` pixels on a side (empty, zero-area, inverted, or entirely
outside the frame): its embedding row is all zeros and its ``valid`` flag is false. Zero rows
have cosine similarity 0 with everything and ``Embedder.same_identity`` is false for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reidkit.deploy.preprocess import MIN_SIDE
from reidkit.utils.errors import DataError


@dataclass
class FrameEmbeddings:
    """What ``embed_frames`` returns: per frame, one row per box and its validity.

    ``embeddings[i]`` is (len(boxes[i]), D) float32, L2-normalised rows for valid boxes and
    zero rows for invalid ones; ``valid[i]`` is the matching bool array. ``boxes[i]`` holds the
    integer crop rectangles actually used (clipped), -1 for invalid boxes.
    """

    embeddings: list[np.ndarray]
    valid: list[np.ndarray]
    boxes: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.embeddings)

    def concatenated(self) -> tuple[np.ndarray, np.ndarray]:
        """All frames' rows stacked: ``(N, D)`` embeddings and ``(N,)`` validity."""
        return np.concatenate(self.embeddings), np.concatenate(self.valid)


def check_frame(frame: Any, index: int) -> np.ndarray:
    """A frame as an HxWx3 uint8 array; ``DataError`` naming the frame otherwise."""
    if (
        not isinstance(frame, np.ndarray)
        or frame.dtype != np.uint8
        or frame.ndim != 3
        or frame.shape[2] != 3
    ):
        what = (
            f"{frame.dtype} array of shape {frame.shape}"
            if isinstance(frame, np.ndarray)
            else type(frame).__name__
        )
        raise DataError(f"frames[{index}]: a {what} is not a frame; expected HxWx3 uint8")
    return frame


def check_boxes(boxes: Any, index: int) -> np.ndarray:
    """One frame's boxes as an (n, 4) float64 array; ``DataError`` naming the frame otherwise."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"boxes[{index}]: not numbers; expected an (n, 4) array of xyxy") from None
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise DataError(f"boxes[{index}]: shape {arr.shape} is not (n, 4) xyxy")
    return arr


def clip_box(box: np.ndarray, height: int, width: int, min_side: int = MIN_SIDE) -> tuple | None:
    """``(x1, y1, x2, y2)`` integer crop of ``box`` in a ``height`` x ``width`` frame, or
    ``None`` when the box is invalid (see the module docstring)."""
    if not np.all(np.isfinite(box)):
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    ix1, iy1, ix2, iy2 = math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)
    if ix2 - ix1 < min_side or iy2 - iy1 < min_side:
        return None
    return ix1, iy1, ix2, iy2


def frame_crops(
    frames: Sequence[np.ndarray], boxes: Sequence[Any], bgr: bool = False
) -> tuple[list[np.ndarray], list[tuple[int, int]], list[np.ndarray]]:
    """Valid crops (RGB, contiguous), their ``(frame, box)`` positions and each frame's
    clipped integer boxes (-1 rows for invalid boxes)."""
    if len(frames) != len(boxes):
        raise DataError(f"{len(frames)} frames but {len(boxes)} box lists: give one per frame")
    crops, where, used = [], [], []
    for i, (frame, frame_boxes) in enumerate(zip(frames, boxes, strict=True)):
        frame = check_frame(frame, i)
        arr = check_boxes(frame_boxes, i)
        rects = np.full((len(arr), 4), -1, dtype=np.int64)
        for j, box in enumerate(arr):
            rect = clip_box(box, frame.shape[0], frame.shape[1])
            if rect is None:
                continue
            x1, y1, x2, y2 = rect
            rects[j] = rect
            crop = frame[y1:y2, x1:x2]
            crops.append(np.ascontiguousarray(crop[:, :, ::-1] if bgr else crop))
            where.append((i, j))
        used.append(rects)
    return crops, where, used
