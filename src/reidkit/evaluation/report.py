"""Visual evaluation report: ranked lists of a few queries as a PNG grid, and as a CHW uint8
tensor for TensorBoard (``writer.add_image``).

Each row shows a query (blue frame) and its top-k gallery images after the protocol's
filtering (junk and same-identity-same-camera removed), framed green for the right identity
and red for a wrong one, with the rank of the first true match written beside the query.
Drawn with PIL only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from reidkit.data.images import decode_rgb
from reidkit.evaluation.ranking import GalleryDistance, GalleryIndex, market_stats, match_ranks
from reidkit.utils.errors import DataError
from reidkit.utils.files import atomic_path

THUMB_H, THUMB_W, BORDER, GAP, LABEL_W, TEXT_H = 96, 48, 3, 4, 64, 14
GREEN, RED, BLUE, GREY = (30, 170, 60), (210, 40, 40), (40, 90, 220), (245, 245, 245)


@dataclass
class RankedQuery:
    """One query's ranked list: its index, the top-k gallery indices and their correctness."""

    query: int
    gallery: list[int]
    correct: list[bool]
    first_hit: int | None  # 1-based rank of the first true match (None: no valid match)
    ap: float | None


def pick_queries(num_queries: int, n: int) -> list[int]:
    """``n`` query indices spread evenly over ``num_queries`` (deterministic)."""
    if n <= 0 or num_queries <= 0:
        return []
    n = min(n, num_queries)
    return sorted({round(i * (num_queries - 1) / max(1, n - 1)) for i in range(n)})


def rank_queries(
    qf: torch.Tensor,
    gf: torch.Tensor,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    queries: Sequence[int],
    topk: int = 10,
    distance: str = "euclidean",
) -> list[RankedQuery]:
    """Ranked lists of the chosen queries under the Market protocol (same tie rule as
    ``evaluate_reid``: distance, then gallery index)."""
    dev = gf.device
    ids = [torch.as_tensor(x, device=dev).long() for x in (q_pids, g_pids, q_camids, g_camids)]
    sel = torch.as_tensor(list(queries), dtype=torch.long, device=dev)
    qp, qc = ids[0][sel], ids[2][sel]
    dist = GalleryDistance(gf, distance)(torch.as_tensor(qf).to(dev)[sel])
    index = GalleryIndex(ids[1], ids[3])
    rows, cols = index.filter_block(dist, qp, qc)
    stats = market_stats(*match_ranks(dist, rows, cols, qp, ids[1]), len(sel))
    order = torch.sort(dist, dim=1, stable=True).indices[:, :topk]  # removed (+inf) sort last
    out = []
    valid = stats["valid"].tolist()
    firsts, aps = iter(stats["first"].tolist()), iter(stats["ap"].tolist())
    for i, q in enumerate(queries):
        top = [int(g) for g in order[i] if torch.isfinite(dist[i, g])]
        correct = [bool(ids[1][g] == qp[i]) for g in top]
        first, ap = (next(firsts), next(aps)) if valid[i] else (None, None)
        out.append(RankedQuery(int(q), top, correct, first, ap))
    return out


def _thumb(img: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    frame = Image.new("RGB", (THUMB_W + 2 * BORDER, THUMB_H + 2 * BORDER), colour)
    frame.paste(img.convert("RGB").resize((THUMB_W, THUMB_H), Image.BILINEAR), (BORDER, BORDER))
    return frame


def render_ranked_lists(
    rows: Sequence[RankedQuery],
    query_image: Callable[[int], Image.Image],
    gallery_image: Callable[[int], Image.Image],
) -> Image.Image:
    """The grid: one row per query (label, query, top-k gallery with coloured frames)."""
    if not rows:
        raise DataError("ranked-list report: no queries to draw")
    k = max(1, max(len(r.gallery) for r in rows))
    cell_w, cell_h = THUMB_W + 2 * BORDER + GAP, THUMB_H + 2 * BORDER + GAP + TEXT_H
    canvas = Image.new("RGB", (LABEL_W + cell_w * (k + 1) + GAP, cell_h * len(rows) + GAP), GREY)
    draw = ImageDraw.Draw(canvas)
    for y, r in enumerate(rows):
        top = GAP + y * cell_h
        first = "none" if r.first_hit is None else str(r.first_hit)
        draw.text((4, top + 4), f"query {r.query}", fill=(0, 0, 0))
        draw.text((4, top + 22), f"1st hit: {first}", fill=(0, 0, 0))
        if r.ap is not None:
            draw.text((4, top + 40), f"AP {r.ap:.2f}", fill=(0, 0, 0))
        canvas.paste(_thumb(query_image(r.query), BLUE), (LABEL_W, top))
        for j, (g, ok) in enumerate(zip(r.gallery, r.correct, strict=True)):
            x = LABEL_W + cell_w * (j + 1) + GAP
            canvas.paste(_thumb(gallery_image(g), GREEN if ok else RED), (x, top))
            draw.text((x + 2, top + THUMB_H + 2 * BORDER + 1), f"#{j + 1}", fill=(0, 0, 0))
    return canvas


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as a CHW uint8 tensor (what ``SummaryWriter.add_image`` takes)."""
    data = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
    return data.view(image.height, image.width, 3).permute(2, 0, 1).contiguous()


def record_reader(records: Sequence[Any], source: Any) -> Callable[[int], Image.Image]:
    """``index -> PIL image`` for dataset records read through an ``ImageSource``."""

    def read(i: int) -> Image.Image:
        path = records[i].path
        try:
            return Image.fromarray(decode_rgb(source.read(path), path))
        except (DataError, OSError):  # a picture must not stop training: draw a grey tile
            return Image.new("RGB", (THUMB_W, THUMB_H), (90, 90, 90))

    return read


def write_report(out_dir: str | Path, image: Image.Image) -> Path:
    """Save the grid as ``ranked_lists.png`` under ``out_dir``; returns its path. (The HTML
    page of an evaluation is ``report_page.render_report``.)"""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "ranked_lists.png"
    with atomic_path(png) as tmp:
        image.save(tmp, format="PNG")
    return png
