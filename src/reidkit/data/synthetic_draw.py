"""Drawing synthetic pedestrians: identity appearance, camera conditions, per-image pose.

An identity is a fixed set of clothing colours / patterns, body proportions, hair and
accessories; a camera is a background scene plus illumination, colour balance, scale and
blur; each image adds pose and position jitter. Identity cues are strong (colours and
patterns differ between identities far more than a camera shifts them), so a small CNN can
learn them, while camera changes keep the task from being trivial.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
SKIN = [(255, 220, 190), (234, 192, 160), (198, 145, 110), (141, 96, 66), (92, 62, 44)]
HAIR = [(20, 20, 20), (70, 45, 25), (130, 90, 50), (215, 185, 120), (150, 150, 150), (140, 50, 25)]


def _colour(rng: np.random.Generator, dull: float = 0.0) -> RGB:
    """A random clothing colour: vivid most of the time, sometimes black / white / grey."""
    if rng.random() < 0.2:
        v = float(rng.choice([0.12, 0.35, 0.6, 0.92]))
        return _hsv(0.0, 0.0, v)
    h = float(rng.random())
    s = float(rng.uniform(0.45, 1.0)) * (1 - dull)
    v = float(rng.uniform(0.45, 1.0))
    return _hsv(h, s, v)


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass(frozen=True)
class Identity:
    """Everything about a person that stays the same across images."""

    top: RGB
    top2: RGB
    pattern: int  # 0 solid, 1 h-stripes, 2 v-stripes, 3 checks, 4 two-tone, 5 chest logo
    stripe: float  # pattern period as a fraction of torso height
    long_sleeves: bool
    bottom: RGB
    bottom_kind: int  # 0 trousers, 1 shorts, 2 skirt
    shoes: RGB
    skin: RGB
    hair: RGB
    long_hair: bool
    height: float  # fraction of the image height
    width: float  # torso width, fraction of the image width
    hat: RGB | None
    backpack: RGB | None
    bag: RGB | None
    bag_side: int


def random_identity(rng: np.random.Generator) -> Identity:
    """Draw one identity's appearance."""
    return Identity(
        top=_colour(rng),
        top2=_colour(rng),
        pattern=int(rng.integers(0, 6)),
        stripe=float(rng.uniform(0.12, 0.3)),
        long_sleeves=bool(rng.random() < 0.5),
        bottom=_colour(rng, dull=0.3),
        bottom_kind=int(rng.choice([0, 0, 0, 1, 2])),
        shoes=_colour(rng, dull=0.6),
        skin=SKIN[int(rng.integers(0, len(SKIN)))],
        hair=HAIR[int(rng.integers(0, len(HAIR)))],
        long_hair=bool(rng.random() < 0.35),
        height=float(rng.uniform(0.8, 0.94)),
        width=float(rng.uniform(0.36, 0.48)),
        hat=_colour(rng) if rng.random() < 0.25 else None,
        backpack=_colour(rng, dull=0.3) if rng.random() < 0.3 else None,
        bag=_colour(rng) if rng.random() < 0.25 else None,
        bag_side=int(rng.choice([-1, 1])),
    )


@dataclass(frozen=True)
class Camera:
    """What a camera does to every image it takes."""

    wall: RGB
    floor: RGB
    horizon: float  # floor line, fraction of height
    posts: tuple[tuple[float, float, RGB], ...]  # (x, width, colour) of background objects
    gain: float
    balance: tuple[float, float, float]
    scale: float
    blur: float
    noise: float


def random_camera(rng: np.random.Generator) -> Camera:
    """Draw one camera's scene and image conditions."""
    posts = tuple(
        (float(rng.uniform(-0.1, 1.0)), float(rng.uniform(0.05, 0.25)), _colour(rng, dull=0.8))
        for _ in range(int(rng.integers(1, 4)))
    )
    return Camera(
        wall=_colour(rng, dull=0.85),
        floor=_colour(rng, dull=0.9),
        horizon=float(rng.uniform(0.55, 0.8)),
        posts=posts,
        gain=float(rng.uniform(0.8, 1.15)),
        balance=tuple(float(x) for x in rng.uniform(0.92, 1.08, size=3)),
        scale=float(rng.uniform(0.86, 1.0)),
        blur=float(rng.uniform(0.0, 0.9)),
        noise=float(rng.uniform(1.5, 6.0)),
    )


def _background(draw: ImageDraw.ImageDraw, cam: Camera, w: int, h: int, shift: float) -> None:
    y = int(cam.horizon * h)
    draw.rectangle([0, 0, w, y], fill=cam.wall)
    draw.rectangle([0, y, w, h], fill=cam.floor)
    for x, pw, colour in cam.posts:
        x0 = int((x + shift) * w)
        draw.rectangle([x0, 0, x0 + int(pw * w), y], fill=colour)


def _torso_pattern(
    draw: ImageDraw.ImageDraw, ident: Identity, box: tuple[int, int, int, int]
) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=ident.top)
    th, tw = y1 - y0, x1 - x0
    step = max(2, int(ident.stripe * th))
    if ident.pattern == 1:
        for y in range(y0, y1, 2 * step):
            draw.rectangle([x0, y, x1, min(y1, y + step - 1)], fill=ident.top2)
    elif ident.pattern == 2:
        for x in range(x0, x1, 2 * step):
            draw.rectangle([x, y0, min(x1, x + step - 1), y1], fill=ident.top2)
    elif ident.pattern == 3:
        for i, y in enumerate(range(y0, y1, step)):
            for j, x in enumerate(range(x0, x1, step)):
                if (i + j) % 2:
                    draw.rectangle(
                        [x, y, min(x1, x + step - 1), min(y1, y + step - 1)], fill=ident.top2
                    )
    elif ident.pattern == 4:
        draw.rectangle([x0, y0 + th // 2, x1, y1], fill=ident.top2)
    elif ident.pattern == 5:
        draw.rectangle([x0 + tw // 4, y0 + th // 5, x1 - tw // 4, y0 + th // 2], fill=ident.top2)


def _legs(
    draw: ImageDraw.ImageDraw,
    ident: Identity,
    cx: float,
    hip: float,
    feet: float,
    tw: float,
    swing: float,
) -> None:
    """Two legs with a walking spread, shoes, and shorts / trousers / skirt."""
    hr = (feet - hip) * 0.135
    leg_w = tw * 0.38
    short = ident.bottom_kind == 1
    for side in (-1, 1):
        knee = hip + 0.55 * (feet - hip)
        fx = cx + side * (leg_w * 0.55 + swing * side * tw * 0.35)
        hx = cx + side * leg_w * 0.55
        leg = [
            (hx - leg_w / 2, hip),
            (hx + leg_w / 2, hip),
            (fx + leg_w / 2, feet),
            (fx - leg_w / 2, feet),
        ]
        draw.polygon(leg, fill=ident.skin if short else ident.bottom)
        if short:
            draw.rectangle([hx - leg_w / 2, hip, hx + leg_w / 2, knee - hr], fill=ident.bottom)
        shoe = [fx - leg_w * 0.6, feet - hr * 0.6, fx + leg_w * 0.6, feet]
        draw.rectangle(shoe, fill=ident.shoes)
    if ident.bottom_kind == 2:
        skirt_end = hip + 0.6 * (feet - hip)
        skirt = [
            (cx - tw / 2, hip - hr),
            (cx + tw / 2, hip - hr),
            (cx + tw * 0.7, skirt_end),
            (cx - tw * 0.7, skirt_end),
        ]
        draw.polygon(skirt, fill=ident.bottom)


def _head(draw: ImageDraw.ImageDraw, ident: Identity, cx: float, top: float, hr: float) -> None:
    """Head, hair (short or long) and an optional hat."""
    if ident.long_hair:
        draw.rectangle([cx - hr * 1.05, top + hr, cx + hr * 1.05, top + 3.2 * hr], fill=ident.hair)
    draw.ellipse([cx - hr, top, cx + hr, top + 2 * hr], fill=ident.skin)
    draw.chord([cx - hr, top, cx + hr, top + 2 * hr], 180, 360, fill=ident.hair)
    if ident.hat is not None:
        hat = [cx - hr * 1.15, top - hr * 0.25, cx + hr * 1.15, top + hr * 0.55]
        draw.rectangle(hat, fill=ident.hat)


def _person(
    draw: ImageDraw.ImageDraw,
    ident: Identity,
    box: tuple[float, float, float, int, int],
    rng: np.random.Generator,
) -> None:
    """Draw a pedestrian: ``box`` = (centre x, head top, height in pixels, image w, h)."""
    cx, top, ph, w, h = box
    hr = 0.065 * ph
    tw = ident.width * w * (ph / (ident.height * h))
    neck, hip, feet = top + 2 * hr, top + 0.52 * ph, top + ph
    swing = float(rng.uniform(-0.5, 0.5))
    if ident.backpack is not None:
        bx = cx - ident.bag_side * tw * 0.35
        pack = [bx - tw * 0.35, neck + hr * 0.3, bx + tw * 0.35, hip - hr]
        draw.rectangle(pack, fill=ident.backpack)
    _legs(draw, ident, cx, hip, feet, tw, swing)
    for side in (-1, 1):  # arms
        ax = cx + side * (tw / 2 + tw * 0.1)
        reach = hip + hr * 0.5 + swing * side * hr
        draw.rectangle([ax - tw * 0.1, neck + 1, ax + tw * 0.1, reach], fill=ident.skin)
        sleeve_end = reach if ident.long_sleeves else neck + 0.4 * (hip - neck)
        draw.rectangle([ax - tw * 0.1, neck + 1, ax + tw * 0.1, sleeve_end], fill=ident.top)
    _torso_pattern(draw, ident, (int(cx - tw / 2), int(neck), int(cx + tw / 2), int(hip)))
    if ident.bag is not None:
        bx = cx + ident.bag_side * (tw / 2 + tw * 0.22)
        draw.rectangle([bx - tw * 0.16, hip - hr, bx + tw * 0.16, hip + 1.6 * hr], fill=ident.bag)
    _head(draw, ident, cx, top, hr)


def render(
    ident: Identity | None,
    cam: Camera,
    h: int,
    w: int,
    rng: np.random.Generator,
    junk: bool = False,
) -> Image.Image:
    """One camera image of ``ident`` (a random crop of a person or scene when ``junk``)."""
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    _background(draw, cam, w, h, float(rng.uniform(-0.15, 0.15)))
    if ident is not None:
        ph = ident.height * h * cam.scale * float(rng.uniform(0.95, 1.05))
        cx = w / 2 + float(rng.uniform(-0.1, 0.1)) * w
        top = (h - ph) / 2 + float(rng.uniform(-0.04, 0.04)) * h
        _person(draw, ident, (cx, top, ph, w, h), rng)
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if junk:  # a bad detection: a small part of the frame blown up
        fw, fh = int(w * rng.uniform(0.3, 0.6)), int(h * rng.uniform(0.2, 0.5))
        x0, y0 = int(rng.integers(0, w - fw + 1)), int(rng.integers(0, h - fh + 1))
        img = img.crop((x0, y0, x0 + fw, y0 + fh)).resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < 0.1:  # a passer-by or object partly in front
        d = ImageDraw.Draw(img)
        x0 = int(rng.choice([0, w * 0.7]))
        d.rectangle([x0, int(h * 0.55), x0 + int(w * 0.3), h], fill=_colour(rng, dull=0.5))
    return _camera_effects(img, cam, rng)


def _camera_effects(img: Image.Image, cam: Camera, rng: np.random.Generator) -> Image.Image:
    if cam.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(cam.blur))
    arr = np.asarray(img, dtype=np.float32)
    gain = cam.gain * float(rng.uniform(0.93, 1.07))
    arr = arr * (gain * np.asarray(cam.balance, dtype=np.float32))
    arr += rng.normal(0.0, cam.noise, size=arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
