"""Batched training augmentation with independent random parameters per image.

The loader hands over a uint8 batch (already resized to the model's input size); this module
draws, per image, a mirror flip, a pad+random-crop offset and a random-erasing box, applies
them and normalises with the ImageNet mean / std. On a GPU everything is vectorised (one gather
for flip+crop, one mask for erasing); on the CPU the same parameters are applied with cheap
per-image slice copies (fused with the uint8 -> float normalisation when no optional extra
is on), which is much faster there. All paths give identical results.

Order and semantics follow the BoT / torchvision recipe: Resize -> RandomHorizontalFlip ->
Pad (zeros) -> RandomCrop -> ToTensor -> Normalize -> RandomErasing (Zhong et al.: area
0.02..0.4 of the image, aspect 0.3..1/0.3, up to 10 tries, filled with ``erase_value``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from reidkit.data.augment_extra import auto_augment, color_jitter, random_patch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ERASE_TRIES = 10


@dataclass
class AugmentParams:
    """Random parameters of one batch, one entry per image (tensors of shape ``(B,)``)."""

    flip: torch.Tensor  # bool
    oy: torch.Tensor  # crop offset in the padded image, 0..2*padding
    ox: torch.Tensor
    erase: torch.Tensor  # bool
    ey: torch.Tensor  # erased box: top, left, height, width
    ex: torch.Tensor
    eh: torch.Tensor
    ew: torch.Tensor


def normalize_uint8(
    images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD, pixel_range: float = 1.0
) -> torch.Tensor:
    """uint8 NCHW -> float32 NCHW ``(x / (255 / pixel_range) - mean) / std``.

    ``pixel_range`` 1 is torchvision's ToTensor + Normalize (mean / std in 0..1 units),
    255 normalises the raw 0..255 values (fast-reid's PIXEL_MEAN / PIXEL_STD). The float32
    operations are the ones those frameworks run, in their order, so the result is
    bit-identical to theirs. On the CPU this is numpy, one image at a time (no thread pool);
    elsewhere torch ops.
    """
    divisor = 255.0 / float(pixel_range)
    if images.device.type != "cpu":
        m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        return images.float().div_(divisor).sub_(m).div_(s)
    c = images.shape[1]
    m = np.asarray(mean, np.float32).reshape(c, 1, 1)
    s = np.asarray(std, np.float32).reshape(c, 1, 1)
    d = np.float32(divisor)
    src = images.numpy()
    out = np.empty(src.shape, dtype=np.float32)
    for b in range(src.shape[0]):
        out[b] = src[b]
        np.divide(out[b], d, out=out[b])
        np.subtract(out[b], m, out=out[b])
        np.divide(out[b], s, out=out[b])
    return torch.from_numpy(out)


def _affine(mean, std, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` of the normalisation on ``device``, made once per device (building a
    CUDA tensor from Python numbers is a blocking copy: it would wait for the GPU each batch)."""
    return _affine_cached(tuple(mean), tuple(std), torch.device(device))


@functools.lru_cache(maxsize=32)
def _affine_cached(mean: tuple, std: tuple, device: torch.device) -> tuple:
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * s), -m / s


@functools.lru_cache(maxsize=32)
def _fill_value(value: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The erasing fill ``(1, C, 1, 1)`` on ``device``, made once (see ``_affine``)."""
    return torch.tensor(value, dtype=dtype, device=device).view(1, -1, 1, 1)


class BatchAugment:
    """Flip / pad-crop / random-erasing / normalise a uint8 batch, per-image parameters.

    ``mirror`` with ``flip_prob``; ``padding`` pixels of zero padding then a random crop back
    to the input size (0 = off); ``random_erasing`` = probability of erasing one box per image
    (0 = off); ``color_jitter`` / ``random_patch`` probabilities and ``auto_augment`` policy as in
    ``augment_extra``. Call it with a uint8 tensor ``(B, 3, H, W)`` and a ``torch.Generator``
    on the batch's device.
    """

    def __init__(
        self,
        mirror: bool = True,
        flip_prob: float = 0.5,
        padding: int = 10,
        random_erasing: float = 0.0,
        color_jitter: float = 0.0,
        random_patch: float = 0.0,
        auto_augment: str = "none",
        erase_area: tuple[float, float] = (0.02, 0.4),
        erase_ratio: float = 0.3,
        erase_value: tuple[float, float, float] = IMAGENET_MEAN,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        self.flip_prob = flip_prob if mirror else 0.0
        self.padding = int(padding)
        self.erase_prob = float(random_erasing)
        self.jitter_prob = float(color_jitter)
        self.patch_prob = float(random_patch)
        if auto_augment not in ("none", "autoaugment", "randaugment"):
            raise ValueError(f"auto_augment = {auto_augment!r}: none | autoaugment | randaugment")
        self.auto_augment = auto_augment
        self.erase_area = erase_area
        self.erase_ratio = erase_ratio
        self.erase_value = erase_value
        self.mean, self.std = mean, std

    def draw(self, n: int, h: int, w: int, gen: torch.Generator) -> AugmentParams:
        """Independent random parameters for ``n`` images of size ``h x w``."""
        dev = gen.device
        u = torch.rand(n, 3, generator=gen, device=dev)
        flip = u[:, 0] < self.flip_prob
        span = 2 * self.padding + 1
        oy = (u[:, 1] * span).long().clamp_(max=span - 1)
        ox = (u[:, 2] * span).long().clamp_(max=span - 1)
        return AugmentParams(flip, oy, ox, *self._draw_erase(n, h, w, gen))

    def _draw_erase(self, n: int, h: int, w: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        dev = gen.device
        u = torch.rand(n, ERASE_TRIES, 4, generator=gen, device=dev)
        lo, hi = self.erase_area
        area = (lo + (hi - lo) * u[..., 0]) * (h * w)
        r = self.erase_ratio
        ratio = r + (1.0 / r - r) * u[..., 1]
        eh = torch.sqrt(area * ratio).round().long()
        ew = torch.sqrt(area / ratio).round().long()
        ok = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
        first = torch.argmax(ok.int(), dim=1, keepdim=True)  # first try that fits
        pick = lambda t: t.gather(1, first).squeeze(1)  # noqa: E731
        eh, ew = pick(eh), pick(ew)
        ey = (pick(u[..., 2]) * (h - eh + 1).float()).long().clamp_(min=0)
        ex = (pick(u[..., 3]) * (w - ew + 1).float()).long().clamp_(min=0)
        coin = torch.rand(n, generator=gen, device=dev) < self.erase_prob
        erase = coin & ok.any(dim=1)
        return erase, ey, ex, eh, ew

    def __call__(
        self, images: torch.Tensor, gen: torch.Generator, index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Augmented float32 batch of ``images[index]`` (all of ``images`` when index is None)."""
        n = images.shape[0] if index is None else index.numel()
        params = self.draw(n, images.shape[-2], images.shape[-1], gen)
        return self.apply(images, params, index, gen)

    def apply(
        self,
        images: torch.Tensor,
        params: AugmentParams,
        index: torch.Tensor | None = None,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Apply given parameters (vectorised on GPU, slice copies on CPU).

        ``gen`` draws the parameters of the optional extras (jitter, patch, auto-augment).
        """
        if images.device.type != "cpu":
            return self._apply_vectorised(images, params, index, gen)
        if self.has_extras:
            return self._apply_slices(images, params, index, gen)
        return self._apply_fused(images, params, index)

    @property
    def has_extras(self) -> bool:
        """Whether colour jitter, random patch or auto-augment is on."""
        return self.jitter_prob > 0 or self.patch_prob > 0 or self.auto_augment != "none"

    def _to_float(self, staged: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """uint8 geometric output -> normalised float, with the optional extras."""
        if gen is None and self.has_extras:
            raise ValueError("BatchAugment.apply needs a generator when extras are on")
        if self.auto_augment != "none":
            staged = auto_augment(staged, gen, self.auto_augment)
        out = staged.float()
        if self.jitter_prob > 0:
            out = color_jitter(out, gen, self.jitter_prob)
        scale, shift = _affine(self.mean, self.std, out.device)
        out.mul_(scale).add_(shift)
        if self.patch_prob > 0:
            out = random_patch(out, gen, self.patch_prob)
        return out

    def _apply_vectorised(
        self,
        images: torch.Tensor,
        p: AugmentParams,
        index: torch.Tensor | None,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        x = images if index is None else images[index.to(images.device, non_blocking=True)]
        n, c, h, w = x.shape
        dev, pad = x.device, self.padding
        rows = torch.arange(h, device=dev)[None] + p.oy[:, None] - pad  # (B, H)
        cols = torch.arange(w, device=dev)[None] + p.ox[:, None] - pad  # (B, W)
        valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        cols = torch.where(p.flip[:, None], w - 1 - cols, cols)
        flat = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]
        out = torch.gather(x.reshape(n, c, h * w), 2, flat.reshape(n, 1, h * w).expand(n, c, -1))
        staged = torch.where(valid[:, None], out.reshape(n, c, h, w), 0)
        out = self._to_float(staged, gen)
        if self.erase_prob > 0:
            r = torch.arange(h, device=dev)[None, :, None]
            q = torch.arange(w, device=dev)[None, None, :]
            in_rows = (r >= p.ey[:, None, None]) & (r < (p.ey + p.eh)[:, None, None])
            in_cols = (q >= p.ex[:, None, None]) & (q < (p.ex + p.ew)[:, None, None])
            box = in_rows & in_cols
            box &= p.erase[:, None, None]
            value = _fill_value(tuple(self.erase_value), out.dtype, dev)
            out = torch.where(box[:, None], value, out)
        return out

    def _apply_fused(
        self, images: torch.Tensor, p: AugmentParams, index: torch.Tensor | None
    ) -> torch.Tensor:
        """CPU path without extras: per image, one cache-sized pass converts, normalises,
        flips, shifts and erases (numpy, no thread pool: robust on a busy 2-core machine)."""
        rows = range(images.shape[0]) if index is None else index.tolist()
        n, (c, h, w) = len(rows), images.shape[1:]
        out = np.empty((n, c, h, w), dtype=np.float32)
        src_np, pad = images.numpy(), self.padding
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        scale = (1.0 / (255.0 * std)).reshape(c, 1, 1)
        shift = (-mean / std).reshape(c, 1, 1)
        value = np.asarray(self.erase_value, np.float32).reshape(c, 1, 1)
        flip, oy, ox = p.flip.tolist(), p.oy.tolist(), p.ox.tolist()
        boxes = torch.stack([p.erase.long(), p.ey, p.ex, p.eh, p.ew], dim=1).tolist()
        for b, i in enumerate(rows):
            src = src_np[i, :, :, ::-1] if flip[b] else src_np[i]
            dy, dx = pad - oy[b], pad - ox[b]
            y0, y1, x0, x1 = max(0, -dy), min(h, h - dy), max(0, -dx), min(w, w - dx)
            if dy or dx:
                out[b] = shift  # zero padding, normalised
            dst = out[b, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx]
            np.multiply(src[:, y0:y1, x0:x1], scale, out=dst)
            dst += shift
            on, ey, ex, eh, ew = boxes[b]
            if on and self.erase_prob > 0:
                out[b, :, ey : ey + eh, ex : ex + ew] = value
        return torch.from_numpy(out)

    def _apply_slices(
        self,
        images: torch.Tensor,
        p: AugmentParams,
        index: torch.Tensor | None,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        rows = range(images.shape[0]) if index is None else index.tolist()
        n, (c, h, w) = len(rows), images.shape[1:]
        dst_np = np.zeros((n, c, h, w), dtype=np.uint8)  # calloc: no explicit memset
        src_np = images.numpy()  # numpy copies reversed (flipped) views fast
        pad = self.padding
        flip, oy, ox = p.flip.tolist(), p.oy.tolist(), p.ox.tolist()
        for b, i in enumerate(rows):
            src = src_np[i, :, :, ::-1] if flip[b] else src_np[i]
            dy, dx = pad - oy[b], pad - ox[b]
            y0, y1, x0, x1 = max(0, -dy), min(h, h - dy), max(0, -dx), min(w, w - dx)
            dst_np[b, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx] = src[:, y0:y1, x0:x1]
        out = self._to_float(torch.from_numpy(dst_np), gen)
        if self.erase_prob > 0:
            value = torch.tensor(self.erase_value, dtype=out.dtype).view(c, 1, 1)
            boxes = torch.stack([p.erase.long(), p.ey, p.ex, p.eh, p.ew], dim=1).tolist()
            for b, (on, ey, ex, eh, ew) in enumerate(boxes):
                if on:
                    out[b, :, ey : ey + eh, ex : ex + ew] = value
        return out
