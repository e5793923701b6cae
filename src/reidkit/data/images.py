"""The one image decoder of the package: encoded bytes or a file -> HWC uint8 RGB.

Every reader of images (the training cache, evaluation, reports, the embedder, extract, data
info) goes through ``decode_rgb`` / ``read_rgb``, so every PIL mode is handled the same way
everywhere: palette, greyscale, LA / RGBA (alpha dropped), CMYK and YCbCr are converted to RGB;
16-bit and 32-bit greyscale (``I;16``, ``I``, ``F``) are scaled to 8 bits rather than clipped.
Images larger than ``MAX_PIXELS`` are refused from their header, before any pixel is decoded
(a 15000x15000 JPEG would need 675 MB), and count as undecodable like a corrupt file.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from reidkit.utils.errors import DataError, first_line


def _why(error: BaseException) -> str:
    """Why PIL could not read an image, in words (its own message names a BytesIO object)."""
    if isinstance(error, Image.UnidentifiedImageError):
        return "not a known image format"
    if isinstance(error, Image.DecompressionBombError):
        return "over the pixel limit: a decompression bomb?"
    return first_line(error)


# 40 megapixels: far above any person crop or camera frame we expect, far below a bomb.
MAX_PIXELS = 40_000_000
# Everything PIL may raise on a truncated, foreign or hostile file.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def check_size(width: int, height: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``DataError`` naming ``name`` when the image is empty or over ``max_pixels``."""
    if width < 1 or height < 1:
        raise DataError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise DataError(
            f"{name}: image of {width}x{height} pixels is over the limit of {max_pixels:,} "
            "pixels (a decompression bomb or a wrong file?); skipped"
        )


def image_size(data: bytes, name: str = "image") -> tuple[int, int]:
    """``(width, height)`` from the header only; ``DataError`` when it is not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return int(im.width), int(im.height)
    except DECODE_ERRORS as e:
        raise DataError(f"{name}: not a readable image ({_why(e)})") from None


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """HWC uint8 RGB array of an opened PIL image, whatever its mode."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if im.mode in ("P", "PA"):  # palette: through RGBA so a transparent index is honoured
        im = im.convert("RGBA")
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.array(im, dtype=np.uint8)  # a writable copy


def decode_rgb(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HWC uint8 RGB array of encoded ``data``; ``DataError`` naming ``name`` if unusable."""
    if not data:
        raise DataError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                check_size(im.width, im.height, name, max_pixels)
                return to_rgb_array(im)
    except DECODE_ERRORS as e:
        raise DataError(f"{name}: not a readable image ({_why(e)})") from None


def read_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HWC uint8 RGB array of an image file; ``DataError`` naming the file if unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read image file ({e.strerror or first_line(e)})") from None
    return decode_rgb(data, str(path), max_pixels)
