"""Drawing an articulated pedestrian: limbs at a walking phase, seen from the front, back or side.

Proportions are in units of the person's height ``ph``: head radius 0.065, shoulders at 0.17,
hips at 0.52, knees at 0.76, soles at 1. From the side, thighs and shins swing with the phase
(the far leg half a cycle behind, drawn darker) and arms swing against the legs; from the
front or back the feet spread and lift slightly. Clothes follow the view: a chest logo or an
open jacket only shows from the front, a backpack covers the back and shows as straps from the
front, long hair covers the head from behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Pose:
    """One image's pose: ``view`` front | back | left | right, walking ``phase`` (radians)."""

    view: str
    phase: float
    lean: float = 0.0


def _shade(c: RGB, f: float) -> RGB:
    return tuple(max(0, min(255, int(v * f))) for v in c)  # type: ignore[return-value]


def _limb(d: ImageDraw.ImageDraw, a: Point, b: Point, width: float, colour: RGB) -> None:
    """A thick segment with rounded ends."""
    w = max(1, int(round(width)))
    d.line([a, b], fill=colour, width=w)
    r = w / 2
    for x, y in (a, b):
        d.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def _leg_points(hip: Point, ph: float, pose: Pose, phase: float, stride: float) -> list[Point]:
    """Hip, knee and ankle of one leg."""
    thigh, shin = 0.245 * ph, 0.23 * ph
    if pose.view in ("left", "right"):
        forward = 1.0 if pose.view == "right" else -1.0
        a1 = 0.42 * stride * math.sin(phase)
        a2 = a1 - 0.55 * stride * max(0.0, math.sin(phase - 1.2))
        knee = (hip[0] + forward * thigh * math.sin(a1), hip[1] + thigh * math.cos(a1))
        ankle = (knee[0] + forward * shin * math.sin(a2), knee[1] + shin * math.cos(a2))
        return [hip, knee, ankle]
    lift = 0.03 * ph * max(0.0, math.sin(phase))
    spread = 0.012 * ph * math.cos(phase)
    knee = (hip[0] + spread / 2, hip[1] + thigh - lift / 2)
    return [hip, knee, (hip[0] + spread, hip[1] + thigh + shin - lift)]


def _legs(d: ImageDraw.ImageDraw, ident: Any, pose: Pose, hips: list[Point], ph: float) -> None:
    """Both legs with trousers / shorts / skirt and shoes (the far leg first and darker)."""
    side = pose.view in ("left", "right")
    forward = 1.0 if pose.view == "right" else -1.0
    order = [(1, 0.0), (0, math.pi)] if side else [(0, 0.0), (1, math.pi)]
    width = 0.085 * ph
    for i, offset in order:
        f = 0.78 if side and i == 1 else 1.0
        hip, knee, ankle = _leg_points(hips[i], ph, pose, pose.phase + offset, ident.stride)
        cloth = _shade(ident.bottom, f)
        lower = _shade(ident.skin, f) if ident.bottom_kind in (1, 2) else cloth
        _limb(d, hip, knee, width, cloth)
        _limb(d, knee, ankle, width * 0.85, lower)
        toe = forward * 0.05 * ph if side else 0.0
        shoe = [min(ankle[0], ankle[0] + toe) - width * 0.5, ankle[1] - 0.025 * ph]
        shoe += [max(ankle[0], ankle[0] + toe) + width * 0.5, ankle[1] + 0.015 * ph]
        d.rectangle(shoe, fill=_shade(ident.shoes, f))


def _pattern_layer(size: tuple[int, int], ident: Any, box: list[float], view: str) -> Image.Image:
    """The top's fabric (colour, stripes, checks, logo ...) over the torso box."""
    layer = Image.new("RGB", size, ident.top)
    d = ImageDraw.Draw(layer)
    x0, y0, x1, y1 = box
    th, step = y1 - y0, max(2.0, ident.stripe * (y1 - y0))
    if ident.pattern == 1:
        for k, y in enumerate(np.arange(y0, y1, step)):
            if k % 2:
                d.rectangle([x0, y, x1, y + step - 1], fill=ident.top2)
    elif ident.pattern == 2:
        for k, x in enumerate(np.arange(x0, x1, step)):
            if k % 2:
                d.rectangle([x, y0, x + step - 1, y1], fill=ident.top2)
    elif ident.pattern == 3:
        for i, y in enumerate(np.arange(y0, y1, step)):
            for j, x in enumerate(np.arange(x0, x1, step)):
                if (i + j) % 2:
                    d.rectangle([x, y, x + step - 1, y + step - 1], fill=ident.top2)
    elif ident.pattern == 4:
        d.rectangle([x0, y0 + th * 0.45, x1, y1], fill=ident.top2)
    elif ident.pattern == 5 and view == "front":
        cx, cy, r = (x0 + x1) / 2, y0 + th * 0.3, (x1 - x0) * 0.22
        if ident.logo == 0:
            d.rectangle([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], fill=ident.top2)
        elif ident.logo == 1:
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=ident.top2)
        else:
            for k in range(3):
                d.rectangle(
                    [cx - r, cy - r + k * r * 0.7, cx + r, cy - r * 0.6 + k * r * 0.7],
                    fill=ident.top2,
                )
    elif ident.pattern == 6 and view == "front":
        cx = (x0 + x1) / 2
        d.rectangle([cx - (x1 - x0) * 0.14, y0, cx + (x1 - x0) * 0.14, y1], fill=ident.top2)
    return layer


def _torso(img: Image.Image, ident: Any, pose: Pose, joints: dict[str, Any], ph: float) -> None:
    """The top (and a coat's skirt) as a patterned polygon."""
    (sx0, sy), (sx1, _) = joints["shoulders"]
    (hx0, hy), (hx1, _) = joints["hips"]
    end = hy + ident.coat * 0.48 * ph + 0.03 * ph
    flare = ident.coat * 0.1 * ph
    poly = [(sx0, sy), (sx1, sy), (hx1 + flare, end), (hx0 - flare, end)]
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).polygon(poly, fill=255)
    box = [min(sx0, hx0 - flare), sy, max(sx1, hx1 + flare), end]
    img.paste(_pattern_layer(img.size, ident, box, pose.view), (0, 0), mask)


def _arm(
    d: ImageDraw.ImageDraw,
    ident: Any,
    shoulder: Point,
    pose: Pose,
    phase: float,
    ph: float,
    f: float,
) -> Point:
    """One arm (sleeve + hand); returns the hand position."""
    upper, fore = 0.16 * ph, 0.15 * ph
    if pose.view in ("left", "right"):
        forward = 1.0 if pose.view == "right" else -1.0
        a1 = -0.45 * ident.swing * math.sin(phase)
        a2 = a1 + 0.25 + 0.25 * max(0.0, -math.sin(phase))
        dx1, dx2 = forward * math.sin(a1), forward * math.sin(a2)
    else:  # from the front or back the swing is along the line of sight: arms hang
        a1 = a2 = dx1 = dx2 = 0.0
    elbow = (shoulder[0] + upper * dx1, shoulder[1] + upper * math.cos(a1))
    hand = (elbow[0] + fore * dx2, elbow[1] + fore * math.cos(a2))
    sleeve = _shade(ident.top, f)
    width = 0.06 * ph
    _limb(d, shoulder, elbow, width, sleeve)
    _limb(d, elbow, hand, width * 0.85, sleeve if ident.long_sleeves else _shade(ident.skin, f))
    r = width * 0.5
    d.ellipse([hand[0] - r, hand[1] - r, hand[0] + r, hand[1] + r], fill=_shade(ident.skin, f))
    return hand


def _head(d: ImageDraw.ImageDraw, ident: Any, pose: Pose, centre: Point, r: float) -> None:
    """Head, hair (by style and view) and a cap."""
    cx, cy = centre
    box = [cx - r * 0.85, cy - r, cx + r * 0.85, cy + r]
    if ident.hair_style == 1:  # long hair falls behind the head
        d.rectangle([cx - r * 0.95, cy - r * 0.2, cx + r * 0.95, cy + 2.3 * r], fill=ident.hair)
    d.ellipse(box, fill=ident.skin)
    if ident.hair_style != 3:
        if pose.view == "back":
            d.ellipse(box, fill=ident.hair)
        elif pose.view in ("left", "right"):
            back = -1 if pose.view == "right" else 1
            d.chord(box, 180, 360, fill=ident.hair)
            d.pieslice(box, 90 if back > 0 else -90, 270 if back > 0 else 90, fill=ident.hair)
        else:
            d.chord([box[0], box[1], box[2], cy + r * 0.2], 180, 360, fill=ident.hair)
        if ident.hair_style == 2 and pose.view != "front":
            px = cx + (0 if pose.view == "back" else (-1 if pose.view == "right" else 1) * r)
            d.ellipse([px - r * 0.35, cy, px + r * 0.35, cy + 1.3 * r], fill=ident.hair)
    if ident.hat is not None:
        d.chord(
            [cx - r * 0.95, cy - r * 1.15, cx + r * 0.95, cy + r * 0.5], 180, 360, fill=ident.hat
        )


def draw_person(
    img: Image.Image,
    ident: Any,
    pose: Pose,
    box: tuple[float, float, float],
    rng: np.random.Generator,
) -> None:
    """Draw ``ident`` in ``pose`` onto ``img``; ``box`` = (centre x, head top y, height px)."""
    cx, top, ph = box
    d = ImageDraw.Draw(img)
    side = pose.view in ("left", "right")
    forward = 1.0 if pose.view == "right" else -1.0
    half = ident.build * ph / 2 * (0.62 if side else 1.0)
    cx += pose.lean * ph
    sy, hy = top + 0.165 * ph, top + 0.52 * ph
    shoulders = [(cx - half, sy), (cx + half, sy)]
    hips = [(cx - half * 0.8, hy), (cx + half * 0.8, hy)]
    leg_hips = [(cx - half * 0.42, hy), (cx + half * 0.42, hy)] if not side else [(cx, hy)] * 2
    ground = top + ph
    d.ellipse(
        [cx - half * 1.6, ground - 0.015 * ph, cx + half * 1.6, ground + 0.02 * ph],
        fill=_shade(
            img.getpixel(
                (int(min(max(cx, 0), img.width - 1)), int(min(max(ground, 0), img.height - 1)))
            ),
            0.7,
        ),
    )
    pack_x = cx - forward * half * 1.25
    if ident.backpack is not None and side:  # the pack behind the back
        d.rounded_rectangle(
            [
                min(pack_x, cx) - half * 0.2,
                sy + 0.01 * ph,
                max(pack_x, cx) + half * 0.2,
                hy - 0.04 * ph,
            ],
            3,
            ident.backpack,
        )
    if side:  # the far arm behind the body
        _arm(d, ident, (cx, sy + 0.01 * ph), pose, pose.phase + math.pi, ph, 0.75)
    _legs(d, ident, pose, leg_hips, ph)
    if ident.bottom_kind == 2:  # a skirt over the thighs
        d.polygon(
            [
                hips[0],
                hips[1],
                (cx + half * 1.15, hy + 0.17 * ph),
                (cx - half * 1.15, hy + 0.17 * ph),
            ],
            fill=ident.bottom,
        )
    _torso(img, ident, pose, {"shoulders": shoulders, "hips": hips}, ph)
    if ident.backpack is not None and pose.view == "back":
        d.rounded_rectangle(
            [cx - half * 0.8, sy + 0.02 * ph, cx + half * 0.8, hy - 0.03 * ph], 4, ident.backpack
        )
    elif ident.backpack is not None and pose.view == "front":
        for x in (cx - half * 0.55, cx + half * 0.55):
            d.line([(x, sy), (x, sy + 0.2 * ph)], fill=ident.backpack, width=max(1, int(0.02 * ph)))
    if ident.bag is not None:
        bx = cx + ident.bag_side * half * 1.1
        d.line(
            [(cx - ident.bag_side * half * 0.7, sy), (bx, hy - 0.02 * ph)],
            fill=ident.bag,
            width=max(1, int(0.015 * ph)),
        )
        d.rectangle(
            [bx - 0.05 * ph, hy - 0.05 * ph, bx + 0.05 * ph, hy + 0.05 * ph], fill=ident.bag
        )
    arms = [(cx, sy + 0.01 * ph)] if side else shoulders
    hands = [_arm(d, ident, s, pose, pose.phase, ph, 1.0) for s in arms]
    if ident.handbag is not None:
        hx, hy2 = hands[0] if side or ident.bag_side < 0 else hands[-1]
        d.rectangle([hx - 0.04 * ph, hy2, hx + 0.04 * ph, hy2 + 0.09 * ph], fill=ident.handbag)
    r = 0.065 * ph
    _head(d, ident, pose, (cx + (forward * 0.01 * ph if side else 0), top + r), r)
