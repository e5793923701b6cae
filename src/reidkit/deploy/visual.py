"""Ranked-list pictures for searches whose identities are not all known.

(When every identity is known, ``reidkit.deploy.search`` draws with the evaluation report's
renderer.) Each query is followed by its top-k gallery images, one row per query: a green frame
marks the query's identity, red another identity, grey unknown; the distance is written under
each gallery thumbnail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from reidkit.deploy.preprocess import load_image
from reidkit.utils.errors import DataError
from reidkit.utils.files import atomic_path

THUMB_H, THUMB_W, PAD, TEXT_H = 128, 64, 6, 14
COLOURS = {True: (40, 170, 60), False: (210, 40, 40), None: (150, 150, 150)}


@dataclass
class RankedRow:
    """One query and its ranked gallery: image paths (or arrays), distances and matches."""

    query: Union[str, np.ndarray]
    gallery: Sequence[Union[str, np.ndarray]]
    distances: Sequence[float]
    matches: Sequence[bool | None]


def thumbnail_source(image: Union[str, np.ndarray]):  # noqa: ANN201  (a PIL image)
    """The image as PIL, or a grey tile when the file is gone (galleries outlive folders)."""
    from PIL import Image

    try:
        arr = load_image(image, min_side=1)
    except DataError:
        arr = np.full((THUMB_H, THUMB_W, 3), 90, dtype=np.uint8)
    return Image.fromarray(arr)


def _thumb(image: Union[str, np.ndarray]):  # noqa: ANN202  (a PIL image)
    from PIL import Image

    return thumbnail_source(image).resize((THUMB_W, THUMB_H), Image.BILINEAR)


def ranked_list_png(rows: Sequence[RankedRow], out: Union[str, Path]) -> Path:
    """Draw ``rows`` into one PNG at ``out`` (written atomically); returns the path."""
    from PIL import Image, ImageDraw

    if not rows:
        raise DataError("ranked list picture: no queries to draw")
    k = max(len(r.gallery) for r in rows)
    cell_w, cell_h = THUMB_W + 2 * PAD, THUMB_H + 2 * PAD + TEXT_H
    canvas = Image.new("RGB", ((k + 1) * cell_w + PAD, len(rows) * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        y = r * cell_h + PAD
        canvas.paste(_thumb(row.query), (PAD, y))
        draw.text((PAD, y + THUMB_H + 2), "query", fill=(0, 0, 0))
        for c, (image, dist, match) in enumerate(
            zip(row.gallery, row.distances, row.matches, strict=True)
        ):
            x = (c + 1) * cell_w + PAD
            colour = COLOURS[match]
            draw.rectangle((x - 3, y - 3, x + THUMB_W + 2, y + THUMB_H + 2), fill=colour)
            canvas.paste(_thumb(image), (x, y))
            draw.text((x, y + THUMB_H + 4), f"{c + 1}: {dist:.3f}", fill=(0, 0, 0))
    out = Path(out)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG")
    return out
