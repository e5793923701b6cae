"""Helpers of the data tests: tiny image files written in real naming conventions."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def jpeg_bytes(
    h: int = 32, w: int = 16, seed: int = 0, mode: str = "RGB", fmt: str = "JPEG"
) -> bytes:
    """Encoded bytes of a small random image."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def write_images(folder: Path, names: list[str], h: int = 32, w: int = 16) -> None:
    """Write a small random JPEG for each file name into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / name).write_bytes(jpeg_bytes(h, w, seed=i))
