"""The one image decoder of the package: encoded bytes or a file -> uint8 RGB pixels.

Every reader of images (the training cache, the test loader, evaluation, reports, the
embedder, extract, crops, ``data check`` / ``data info``, adaptation) goes through this module;
``tests/data/test_data_one_decoder.py`` fails when any other module of ``src/`` calls an image
decoder. Every file therefore gives the same pixels everywhere:

* every PIL mode is handled the same way: palette, greyscale, LA / RGBA (alpha dropped), CMYK
  and YCbCr are converted to RGB; 16-bit and 32-bit greyscale (``I;16``, ``I``, ``F``) are
  scaled to 8 bits rather than clipped;
* a multi-frame file (animated GIF / PNG / WebP, multi-page TIFF, MPO) gives its first frame,
  whatever its file name says;
* images larger than ``MAX_PIXELS`` are refused from their header, before any pixel is decoded
  (a 15000x15000 JPEG would need 675 MB), and count as undecodable like a corrupt file;
* EXIF orientation is not applied (as in torchvision's and PIL's decoders by default).

Speed: a file whose header proves it a single-frame 8-bit RGB / greyscale JPEG or PNG is
decoded by torchvision's libjpeg-turbo / libpng decoder (about twice as fast as going through
PIL), which gives the same pixels as PIL for these files (``tests/data/test_data_one_decoder.py``
compares them); anything else, and any file torchvision refuses, goes through PIL.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg, decode_png

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
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: size, PIL mode and format, frames (1 = a still)."""

    width: int
    height: int
    mode: str
    format: str
    frames: int


def check_size(width: int, height: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``DataError`` naming ``name`` when the image is empty or over ``max_pixels``."""
    if width < 1 or height < 1:
        raise DataError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise DataError(
            f"{name}: image of {width}x{height} pixels is over the limit of {max_pixels:,} "
            "pixels (a decompression bomb or a wrong file?); skipped"
        )


def _frames(im: Image.Image) -> int:
    """Frames in an opened image; 1 unless its format says it is animated / multi-page."""
    return int(getattr(im, "n_frames", 1)) if getattr(im, "is_animated", False) else 1


def image_header(data: bytes, name: str = "image") -> ImageHeader:
    """The header of encoded ``data`` (no pixel decoded); ``DataError`` when not an image."""
    if not data:
        raise DataError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return ImageHeader(im.width, im.height, im.mode, im.format or "", _frames(im))
    except DECODE_ERRORS as e:
        raise DataError(f"{name}: not a readable image ({_why(e)})") from None


def image_size(data: bytes, name: str = "image") -> tuple[int, int]:
    """``(width, height)`` from the header only; ``DataError`` when it is not an image."""
    header = image_header(data, name)
    return header.width, header.height


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """HWC uint8 RGB array of an opened PIL image (its current frame), whatever its mode."""
    if im.mode in _HIGH_DEPTH:
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if im.mode in ("P", "PA"):  # palette: through RGBA so a transparent index is honoured
        im = im.convert("RGBA")
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.array(im, dtype=np.uint8)  # a writable copy


def _fast_decoder(im: Image.Image, data: bytes):  # noqa: ANN202 - a torchvision function
    """torchvision's decoder when the header proves a single-frame 8-bit RGB / grey JPEG or
    PNG without a transparent colour (files where it gives PIL's pixels), else None."""
    if im.mode not in ("RGB", "L") or "transparency" in im.info or _frames(im) != 1:
        return None
    if im.format == "JPEG":  # PIL names MPO (multi-picture) files "MPO"
        return decode_jpeg
    if im.format == "PNG" and data[24:25] == b"\x08":  # IHDR bit depth 8 (16-bit is "RGB" too)
        return decode_png
    return None


def _decode(data: bytes, name: str, max_pixels: int, chw: bool) -> np.ndarray | torch.Tensor:
    """The decoder behind ``decode_rgb`` / ``decode_chw``: header check, then one path."""
    if not data:
        raise DataError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                check_size(im.width, im.height, name, max_pixels)
                fast = _fast_decoder(im, data)
                if fast is not None:
                    try:
                        raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
                        img = fast(raw, ImageReadMode.RGB)
                        if img.dtype == torch.uint8 and img.shape[0] == 3:
                            return img if chw else img.permute(1, 2, 0).contiguous().numpy()
                    except (RuntimeError, ValueError):
                        pass  # PIL decides: it decodes the file or names what is wrong
                arr = to_rgb_array(im)  # frame 0: the first frame of a multi-frame file
    except DECODE_ERRORS as e:
        raise DataError(f"{name}: not a readable image ({_why(e)})") from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous() if chw else arr


def decode_rgb(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HWC uint8 RGB array of encoded ``data``; ``DataError`` naming ``name`` if unusable."""
    return _decode(data, name, max_pixels, chw=False)


def decode_chw(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """``(3, H, W)`` uint8 RGB tensor of encoded ``data`` (the same pixels as ``decode_rgb``);
    ``DataError`` naming ``name`` if unusable."""
    return _decode(data, name, max_pixels, chw=True)


def read_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """HWC uint8 RGB array of an image file; ``DataError`` naming the file if unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read image file ({e.strerror or first_line(e)})") from None
    return decode_rgb(data, str(path), max_pixels)
