"""What synthetic pedestrians and cameras look like: identity appearance and camera conditions.

An identity is a fixed outfit (clothing colours drawn from a street palette where dark and
neutral clothes dominate, as they do in real footage; patterns, logos, coat length), body
build, hair, and carried things (backpack, shoulder bag, handbag, a paper or bag in the hand).
A camera is a scene (``synthetic_scene``), a usual walking direction, and image conditions:
person scale in the box, resolution, blur, noise, colour balance and JPEG quality. Each image
adds a walking phase, a view (front / back / side), position jitter and sometimes an occluder
(``render``). The drawing itself is in ``synthetic_body`` and ``synthetic_scene``.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from reidkit.data.synthetic_body import Pose, draw_person
from reidkit.data.synthetic_scene import Scene, camera_effects, occlude, random_scene

RGB = tuple[int, int, int]
SKIN = [(255, 220, 190), (234, 192, 160), (198, 145, 110), (141, 96, 66), (92, 62, 44)]
HAIR = [(20, 18, 16), (45, 32, 22), (80, 55, 35), (130, 90, 50), (200, 170, 110), (140, 140, 140)]


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(1.0, s), min(1.0, v))
    return int(r * 255), int(g * 255), int(b * 255)


def street_colour(rng: np.random.Generator, kind: str = "top") -> RGB:
    """A clothing colour as worn in the street: mostly dark / neutral, sometimes vivid."""
    u = float(rng.random())
    denim = 0.35 if kind == "bottom" else 0.08
    if u < 0.38:  # black, charcoal, navy, dark brown
        return _hsv(
            rng.choice([0.0, 0.08, 0.6, 0.62]), rng.uniform(0, 0.45), rng.uniform(0.06, 0.3)
        )
    if u < 0.38 + denim:  # denim
        return _hsv(rng.uniform(0.57, 0.63), rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.65))
    if u < 0.62 + denim / 2:  # greys, beige, khaki, olive, white
        hue = float(rng.choice([0.0, 0.1, 0.13, 0.22]))
        return _hsv(hue, rng.uniform(0, 0.3), rng.uniform(0.4, 0.97))
    return _hsv(rng.random(), rng.uniform(0.5, 0.95), rng.uniform(0.45, 0.95))  # vivid


@dataclass(frozen=True)
class Identity:
    """Everything about a person that stays the same across images."""

    top: RGB
    top2: RGB
    pattern: int  # 0 solid, 1 h-stripes, 2 v-stripes, 3 checks, 4 two-tone, 5 logo, 6 open jacket
    stripe: float  # pattern period as a fraction of torso height
    logo: int  # logo shape on the front: 0 box, 1 disc, 2 text bars
    long_sleeves: bool
    coat: float  # how far the top reaches below the hip, fraction of leg length
    bottom: RGB
    bottom_kind: int  # 0 trousers, 1 shorts, 2 skirt
    shoes: RGB
    skin: RGB
    hair: RGB
    hair_style: int  # 0 short, 1 long, 2 ponytail, 3 bald
    height: float  # person height, fraction of the crop height
    build: float  # shoulder width relative to height
    hat: RGB | None
    backpack: RGB | None
    bag: RGB | None  # shoulder bag on a strap
    handbag: RGB | None  # carried in one hand
    bag_side: int
    stride: float  # step length
    swing: float  # arm swing


def random_identity(rng: np.random.Generator) -> Identity:
    """Draw one identity's appearance."""
    coat = float(rng.uniform(0.15, 0.55)) if rng.random() < 0.25 else 0.0
    return Identity(
        top=street_colour(rng),
        top2=street_colour(rng) if rng.random() < 0.6 else _hsv(rng.random(), 0.8, 0.9),
        pattern=int(rng.choice([0, 0, 0, 1, 2, 3, 4, 5, 5, 6])),
        stripe=float(rng.uniform(0.1, 0.25)),
        logo=int(rng.integers(0, 3)),
        long_sleeves=bool(rng.random() < 0.75),
        coat=coat,
        bottom=street_colour(rng, "bottom"),
        bottom_kind=int(rng.choice([0, 0, 0, 0, 1, 2])),
        shoes=street_colour(rng, "shoes"),
        skin=SKIN[int(rng.integers(0, len(SKIN)))],
        hair=HAIR[int(rng.integers(0, len(HAIR)))],
        hair_style=int(rng.choice([0, 0, 1, 2, 3])),
        height=float(rng.uniform(0.93, 1.07)),
        build=float(rng.uniform(0.2, 0.27)),
        hat=street_colour(rng) if rng.random() < 0.15 else None,
        backpack=street_colour(rng) if rng.random() < 0.25 else None,
        bag=street_colour(rng) if rng.random() < 0.2 else None,
        handbag=((235, 235, 230) if rng.random() < 0.4 else street_colour(rng))
        if rng.random() < 0.2
        else None,
        bag_side=int(rng.choice([-1, 1])),
        stride=float(rng.uniform(0.7, 1.1)),
        swing=float(rng.uniform(0.5, 1.0)),
    )


@dataclass(frozen=True)
class Camera:
    """What a camera does to every image it takes."""

    scene: Scene
    side_view: float  # probability that a person is seen from the side
    facing: float  # probability of a front (vs back) view when not from the side
    fill: float  # person height / crop height (detector boxes leave a margin)
    gain: float
    balance: tuple[float, float, float]
    contrast: float
    resolution: float  # the person was this fraction of the crop's pixels, then upscaled
    blur: float
    noise: float
    quality: int  # JPEG quality of the camera's stream
    light: float  # brightness slope from top to bottom (sun, shade)
    shading: float  # strength of uneven light over the image (folds, shadows)


def random_camera(rng: np.random.Generator) -> Camera:
    """Draw one camera's scene and image conditions."""
    return Camera(
        scene=random_scene(rng),
        side_view=float(rng.uniform(0.2, 0.8)),
        facing=float(rng.uniform(0.2, 0.8)),
        fill=float(rng.uniform(0.68, 0.86)),
        gain=float(rng.uniform(0.75, 1.15)),
        balance=tuple(float(x) for x in rng.uniform(0.9, 1.1, size=3)),
        contrast=float(rng.uniform(0.75, 1.1)),
        resolution=float(rng.uniform(0.5, 0.95)),
        blur=float(rng.uniform(0.0, 0.7)),
        noise=float(rng.uniform(1.0, 4.5)),
        quality=int(rng.integers(45, 90)),
        light=float(rng.uniform(-0.2, 0.2)),
        shading=float(rng.uniform(0.03, 0.1)),
    )


def _pose(cam: Camera, rng: np.random.Generator) -> Pose:
    """A walking phase and a view, as this camera tends to see people."""
    if rng.random() < cam.side_view:
        view = "left" if rng.random() < 0.5 else "right"
    else:
        view = "front" if rng.random() < cam.facing else "back"
    return Pose(view=view, phase=float(rng.uniform(0, 2 * np.pi)), lean=float(rng.normal(0, 0.03)))


def render(
    ident: Identity | None,
    cam: Camera,
    h: int,
    w: int,
    rng: np.random.Generator,
    junk: bool = False,
) -> Image.Image:
    """One camera image of ``ident`` (a bad detection of the scene when ``junk``).

    Drawn at twice the size and reduced, so edges are smooth; then the camera's resolution
    loss, blur, colour and noise (its JPEG quality is applied when the image is saved).
    """
    s = 2
    img = cam.scene.crop(2 * w, 2 * h, rng)
    if ident is not None:
        ph = 2 * h * cam.fill * ident.height * float(rng.uniform(0.94, 1.06))
        cx = w * (1 + float(rng.uniform(-0.08, 0.08)))
        top = h * 2 * (1 - cam.fill) / 2 + float(rng.uniform(-0.05, 0.05)) * 2 * h
        if junk:  # a bad detection: a piece of a person, off-centre
            cx += float(rng.choice([-1, 1])) * w * float(rng.uniform(0.5, 0.9))
            top += float(rng.uniform(-0.4, 0.4)) * 2 * h
        draw_person(img, ident, _pose(cam, rng), (cx, top, ph), rng)
    if rng.random() < 0.25:  # a passer-by, a pole or a sign partly in front
        occlude(
            img,
            rng,
            lambda im, box: draw_person(im, random_identity(rng), _pose(cam, rng), box, rng),
        )
    img = img.reduce(s)  # 2x2 box average: anti-aliased edges
    return camera_effects(img, cam, rng)
