"""Image preparation shared by export, parity checks and the embedder.

The same arithmetic runs in three places and must agree: the PyTorch path of the embedder, the
reference of every parity check, and (optionally) inside the exported ONNX graph. The recipe is
the test pipeline's (``reidkit.data.decode`` + ``normalize_uint8``): uint8 image -> bilinear
resize to (img_h, img_w) with ``align_corners=False`` and antialiasing (on by default, as in the
test pipeline; it only matters when shrinking) -> / (255 / pixel_range) -> subtract mean, divide
by std (``pixel_range`` 1: mean / std in 0..1 units, torchvision's; 255: in 0..255 units,
fast-reid's).

``ExportWrapper`` puts that recipe (and optional L2 normalisation / fp16 compute) around an
eval-mode model that maps float NCHW images to (B, D) embeddings, so ``torch.onnx.export`` traces
one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reidkit.data.decode import single_threaded
from reidkit.data.images import read_rgb, to_rgb_array
from reidkit.utils.choices import INPUT_FORMATS
from reidkit.utils.errors import DataError, ExportError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# The input formats an exported graph can take. ``float-nchw`` expects already-normalised
# images of exactly (img_h, img_w); the uint8 formats take raw crops of any size.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MIN_SIDE = 8  # smaller crops carry no identity information; refuse them

ImageLike = Union[str, Path, np.ndarray, Any]  # Any: a PIL.Image.Image


def check_input_format(value: str) -> str:
    """Return ``value`` if it is a known input format, else raise ``ExportError``."""
    if value not in INPUT_FORMATS:
        raise ExportError(f"preprocess = {value!r} is not valid: expected one of {INPUT_FORMATS}")
    return value


def load_image(image: ImageLike, min_side: int = MIN_SIDE, name: str = "image") -> np.ndarray:
    """A PIL image, HWC uint8 array (RGB, or HW greyscale) or image file path -> HWC uint8 RGB.

    Raises ``DataError`` naming the file for unreadable files and images smaller than
    ``min_side`` pixels on a side.
    """
    if isinstance(image, (str, Path)):
        name = str(image)
        arr = _read_file(Path(image))
    elif isinstance(image, np.ndarray):
        arr = image
    elif hasattr(image, "convert") and hasattr(image, "size"):
        arr = to_rgb_array(image)
    else:
        raise DataError(
            f"cannot embed a {type(image).__name__}: pass a PIL image, an HWC uint8 numpy "
            "array or an image file path"
        )
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise DataError(
            f"{name}: array of shape {arr.shape} and dtype {arr.dtype} is not an image; "
            "expected HxWx3 uint8 (RGB)"
        )
    if arr.shape[0] < min_side or arr.shape[1] < min_side:
        raise DataError(
            f"{name}: image of {arr.shape[1]}x{arr.shape[0]} pixels is too small "
            f"(each side must be at least {min_side})"
        )
    arr = np.ascontiguousarray(arr[:, :, :3])
    return arr if arr.flags.writeable else arr.copy()


def _read_file(path: Path) -> np.ndarray:
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an image file")
    return read_rgb(path)


def normalize_resize(
    x: torch.Tensor,
    img_h: int,
    img_w: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    antialias: bool = True,
    always_resize: bool = False,
    pixel_range: float = 1.0,
) -> torch.Tensor:
    """uint8 (or float 0..255) NCHW -> resized, normalised float32 NCHW (the recipe above).

    The test pipeline (``reidkit.data.decode``) resizes uint8 images, so its resized pixels are
    rounded to the 0..255 grid; here they stay float (a rounding step would turn onnxruntime's
    1e-5 resize differences into whole grey levels and break parity). ``always_resize``
    keeps the resize in a traced graph even when the example input already has the target
    size.
    """
    x = x.float()
    if always_resize or tuple(x.shape[-2:]) != (img_h, img_w):
        x = F.interpolate(
            x, size=(img_h, img_w), mode="bilinear", align_corners=False, antialias=antialias
        )
    x = x / (255.0 / pixel_range)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def preprocess_images(
    images: Sequence[np.ndarray],
    img_h: int,
    img_w: int,
    mean: Union[Sequence[float], torch.Tensor] = IMAGENET_MEAN,
    std: Union[Sequence[float], torch.Tensor] = IMAGENET_STD,
    device: Union[str, torch.device] = "cpu",
    antialias: bool = True,
    pixel_range: float = 1.0,
) -> torch.Tensor:
    """HWC uint8 RGB arrays of any sizes -> one float32 NCHW batch of (img_h, img_w).

    On the CPU each image is prepared on one intra-op thread: these are a few small ops per
    image, and waking torch's thread pool for each cost 70-140 ms per crop on a busy 2-core
    machine against ~2 ms single-threaded. Antialiasing is only asked for when a side shrinks:
    when both grow it is the plain bilinear filter (same values to 1e-6), at 2/3 of the cost.
    """
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device)
    out = []
    with single_threaded(torch.device(device).type == "cpu"):
        for arr in images:
            t = torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(2, 0, 1)[None]
            shrinks = arr.shape[0] > img_h or arr.shape[1] > img_w
            aa = antialias and shrinks
            out.append(
                normalize_resize(
                    t, img_h, img_w, mean_t, std_t, antialias=aa, pixel_range=pixel_range
                )
            )
        return torch.cat(out) if out else torch.empty(0, 3, img_h, img_w, device=device)


class ExportWrapper(nn.Module):
    """What gets traced: optional in-graph pre-processing, the model, optional L2 norm.

    ``model`` must be in eval mode and map float NCHW (B, 3, img_h, img_w) to (B, D).
    With ``fp16`` the model runs in half precision while the graph's inputs and outputs stay
    as documented (uint8 or float32 in, float32 out), so deployers never handle fp16 arrays.
    """

    def __init__(
        self,
        model: nn.Module,
        img_h: int,
        img_w: int,
        *,
        input_format: str = "float-nchw",
        l2norm: bool = False,
        fp16: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        antialias: bool = True,
        pixel_range: float = 1.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.pixel_range = float(pixel_range)
        self.img_h, self.img_w = int(img_h), int(img_w)
        self.input_format = check_input_format(input_format)
        self.l2norm = bool(l2norm)
        self.fp16 = bool(fp16)
        self.antialias = bool(antialias)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images in ``input_format`` -> float32 (B, D) embeddings."""
        x = images
        if self.input_format == "uint8-nhwc":
            x = x.permute(0, 3, 1, 2)
        if self.input_format != "float-nchw":
            x = normalize_resize(
                x,
                self.img_h,
                self.img_w,
                self.mean,
                self.std,
                antialias=self.antialias,
                always_resize=True,
                pixel_range=self.pixel_range,
            )
        if self.fp16:
            x = x.half()
        emb = self.model(x)
        if not isinstance(emb, torch.Tensor) or emb.ndim != 2:
            raise ExportError(
                f"the model returned {_describe(emb)} for images {tuple(x.shape)}; export "
                "needs an eval-mode model returning (B, D) embeddings"
            )
        if emb.dtype != torch.float32:
            emb = emb.float()
        if self.l2norm:
            emb = F.normalize(emb, dim=1)
        return emb

    @property
    def needs_dynamo(self) -> bool:
        """Antialiased resize inside the graph: only the dynamo exporter can express it."""
        return self.input_format != "float-nchw" and self.antialias

    def example_input(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """A random input of this format (raw crops 1.5x the model size for uint8 formats)."""
        if self.input_format == "float-nchw":
            x = torch.rand(batch, 3, self.img_h, self.img_w, generator=generator)
            x = x * self.pixel_range
            return (x - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)
        h, w = self.img_h * 3 // 2, self.img_w * 3 // 2
        x = torch.randint(0, 256, (batch, 3, h, w), generator=generator, dtype=torch.uint8)
        return x.permute(0, 2, 3, 1).contiguous() if self.input_format == "uint8-nhwc" else x

    def from_hwc(self, arr: np.ndarray) -> torch.Tensor:
        """One HWC uint8 image -> a batch-of-one input of this format (for real-image checks)."""
        if self.input_format == "float-nchw":
            return preprocess_images(
                [arr],
                self.img_h,
                self.img_w,
                self.mean,
                self.std,
                antialias=self.antialias,
                pixel_range=self.pixel_range,
            )
        t = torch.from_numpy(np.ascontiguousarray(arr))[None]
        return t if self.input_format == "uint8-nhwc" else t.permute(0, 3, 1, 2).contiguous()


def _describe(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, dict):
        return f"a dict with keys {sorted(out)} (is the model in training mode?)"
    return f"a {type(out).__name__}"


def list_images(folder: Union[str, Path]) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted; ``DataError`` if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    return files
