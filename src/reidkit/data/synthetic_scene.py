"""Procedural scenes behind synthetic pedestrians, things in front of them, and camera effects.

A ``Scene`` is one camera's view of a street: a building wall (brick, concrete or render, with
rows of windows) or a lawn above the horizon, and below it pavement, asphalt or grass in
perspective (joints and painted lines converging to a vanishing point, rows closer together
towards the horizon), plus poles, signs and cones; both surfaces carry blotchy and fine
texture. It is drawn once per crop size as a wide panorama, and each image takes a window of
it at a random place, so backgrounds vary from image to image but stay the camera's own.
``occlude`` puts a passer-by, a pole or a bin in front; ``camera_effects`` adds the camera's
resolution loss, blur, uneven light (a top-to-bottom slope and soft blotches, like shade and
folds), colour, contrast and noise (the writer applies its JPEG quality).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
WALLS = [(150, 85, 65), (120, 70, 55), (175, 170, 160), (125, 125, 120), (200, 190, 165)]
GROUNDS = [(120, 120, 118), (95, 95, 98), (150, 145, 135), (80, 110, 55), (170, 160, 145)]


def _texture(rng: np.random.Generator, w: int, h: int, cell: int, amount: float) -> np.ndarray:
    """Blotchy (cell-sized) plus fine multiplicative texture, shape (h, w, 1)."""
    low = rng.normal(0, amount, size=(max(2, h // cell), max(2, w // cell))).astype(np.float32)
    blotch = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BILINEAR))
    fine = rng.normal(0, amount * 0.5, size=(h, w)).astype(np.float32)
    return (1.0 + blotch + fine)[..., None]


@dataclass
class Scene:
    """One camera's street scene (see the module docstring); ``seed`` fixes every detail."""

    seed: int
    wall: RGB
    ground: RGB
    horizon: float  # fraction of the panorama height
    building: bool  # a building wall (else a lawn) above the horizon
    lines: RGB | None  # painted lines on the ground
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def panorama(self, w: int, h: int) -> Image.Image:
        """The scene drawn ``4w`` x ``1.3h`` (cached per size)."""
        key = (w, h)
        if key not in self._cache:
            self._cache[key] = self._draw(4 * w, int(1.3 * h), h)
        return self._cache[key]

    def _draw(self, pw: int, ph: int, h: int) -> Image.Image:
        rng = np.random.default_rng(self.seed)
        y = int(self.horizon * ph)
        base = np.empty((ph, pw, 3), np.float32)
        base[:y] = self.wall if self.building else (70, 105, 50)
        base[y:] = self.ground
        base *= _texture(rng, pw, ph, max(4, h // 12), 0.08)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(img)
        if self.building:
            win = (int(rng.uniform(20, 60)),) * 3
            ww, wh = h * rng.uniform(0.12, 0.25), h * rng.uniform(0.1, 0.2)
            for wy in np.arange(y * 0.1, y - wh, wh * 1.8):
                for wx in np.arange(rng.uniform(0, ww), pw, ww * 1.7):
                    d.rectangle([wx, wy, wx + ww, wy + wh], fill=win, outline=(210, 210, 205))
        d.line([(0, y), (pw, y)], fill=(175, 175, 170), width=max(1, h // 40))  # kerb
        vx = pw * rng.uniform(0.2, 0.8)  # vanishing point, on the horizon
        joint = tuple(int(v * 0.8) for v in self.ground)
        for bx in np.linspace(
            -pw, 2 * pw, int(rng.integers(8, 20))
        ):  # lines to the vanishing point
            d.line([(vx + (bx - vx) * 0.02, y), (bx, ph)], fill=joint, width=1)
        gap = (ph - y) * rng.uniform(0.04, 0.12)
        row = y + gap * 0.3
        while row < ph:  # rows closer together towards the horizon
            d.line([(0, row), (pw, row)], fill=joint, width=1)
            gap *= 1.35
            row += gap
        if self.lines is not None:
            for bx in rng.uniform(0, pw, size=2):
                d.line(
                    [(vx + (bx - vx) * 0.05, y), (bx, ph)], fill=self.lines, width=max(1, h // 30)
                )
        for _ in range(int(rng.integers(1, 5))):  # poles, signs, cones
            px = float(rng.uniform(0, pw))
            if rng.random() < 0.65:
                d.rectangle([px, 0, px + h * 0.03, y + h * 0.1], fill=(140, 140, 135))
                if rng.random() < 0.5:
                    sign = tuple(int(v) for v in rng.integers(0, 255, size=3))
                    d.rectangle(
                        [px - h * 0.06, y - h * 0.4, px + h * 0.09, y - h * 0.25], fill=sign
                    )
            else:
                cy = y + rng.uniform(0.05, 0.6) * (ph - y)
                size = h * 0.035 * (1 + (cy - y) / (ph - y))
                d.polygon(
                    [(px, cy - size * 2), (px - size, cy), (px + size, cy)], fill=(235, 110, 20)
                )
        return img

    def crop(self, w: int, h: int, rng: np.random.Generator) -> Image.Image:
        """A ``w`` x ``h`` window of the panorama at a random place."""
        pano = self.panorama(w, h)
        x = int(rng.integers(0, pano.width - w))
        y = int(rng.integers(0, pano.height - h + 1))
        return pano.crop((x, y, x + w, y + h))


def random_scene(rng: np.random.Generator) -> Scene:
    """Draw one camera's scene parameters."""
    paint = [(235, 235, 230), (230, 195, 40)]
    return Scene(
        seed=int(rng.integers(0, 2**31)),
        wall=WALLS[int(rng.integers(0, len(WALLS)))],
        ground=GROUNDS[int(rng.integers(0, len(GROUNDS)))],
        horizon=float(rng.uniform(0.05, 0.5)),
        building=bool(rng.random() < 0.6),
        lines=paint[int(rng.integers(0, 2))] if rng.random() < 0.5 else None,
    )


def occlude(
    img: Image.Image,
    rng: np.random.Generator,
    person: Callable[[Image.Image, tuple[float, float, float]], None],
) -> None:
    """Put a passer-by (drawn by ``person``), a pole or a bin in front of part of ``img``."""
    w, h = img.size
    u = float(rng.random())
    if u < 0.5:
        side = float(rng.choice([-1, 1]))
        cx = w / 2 + side * w * float(rng.uniform(0.45, 0.75))
        ph = h * float(rng.uniform(0.65, 0.95))
        person(img, (cx, float(rng.uniform(0, h - ph)), ph))
        return
    d = ImageDraw.Draw(img)
    grey = tuple(int(v) for v in rng.integers(40, 200, size=3))
    if u < 0.8:
        x = float(rng.uniform(0, w))
        d.rectangle([x, 0, x + w * float(rng.uniform(0.05, 0.12)), h], fill=grey)
    else:
        x = float(rng.uniform(-0.2, 0.8)) * w
        d.rectangle([x, h * float(rng.uniform(0.6, 0.8)), x + w * 0.4, h], fill=grey)


def camera_effects(img: Image.Image, cam: Any, rng: np.random.Generator) -> Image.Image:
    """The camera's resolution loss, blur, colour balance, contrast and noise (its JPEG
    quality is applied when the image is written)."""
    w, h = img.size
    res = cam.resolution * float(rng.uniform(0.85, 1.15))
    if res < 0.95:
        small = img.resize((max(4, int(w * res)), max(8, int(h * res))), Image.Resampling.BILINEAR)
        img = small.resize((w, h), Image.Resampling.BILINEAR)
    if cam.blur > 0.25:
        img = img.filter(ImageFilter.GaussianBlur(cam.blur))
    arr = np.asarray(img, dtype=np.float32)
    slope = cam.light * float(rng.uniform(0.5, 1.5))
    ramp = 1.0 + slope * (np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None])
    arr = arr * ramp * _texture(rng, w, h, max(2, h // 6), cam.shading)
    mean = float(arr.mean())
    gain = cam.gain * float(rng.uniform(0.9, 1.1))
    scale = np.asarray(cam.balance, dtype=np.float32) * (gain * cam.contrast)
    arr = arr * scale + (mean * (1 - cam.contrast) * gain)
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * cam.noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
