"""Line plots as inline SVG text: the per-epoch curves of the run report, with no plotting
library and no script. Each point carries a ``<title>`` (shown when hovered)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from reidkit.utils.html import esc

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, PLOT_H = 380, 150
LEFT, RIGHT, TOP = 56, 12, 26


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """About ``count`` round tick values covering ``[lo, hi]`` (whole numbers if ``integer``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    first = math.floor(lo / step + 1e-9)
    ticks = [round(first * step, 12)]
    while ticks[-1] < hi - 1e-9 * step:
        ticks.append(round((first + len(ticks)) * step, 12))
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.1e}"
    return f"{v:.3g}"


def line_plot(
    title: str,
    series: dict[str, Sequence[tuple[float, float]]],
    mark_x: float | None = None,
    x_label: str = "epoch",
) -> str:
    """An SVG with one line per series (``name -> [(x, y), ...]``); ``mark_x`` draws a dashed
    vertical line (the best epoch). Non-finite points are left out."""
    pts = {
        k: [(float(x), float(y)) for x, y in v if math.isfinite(x) and math.isfinite(y)]
        for k, v in series.items()
    }
    pts = {k: v for k, v in pts.items() if v}
    xs = [x for v in pts.values() for x, _ in v] or [0.0, 1.0]
    ys = [y for v in pts.values() for _, y in v] or [0.0, 1.0]
    xt, yt = nice_ticks(min(xs), max(xs), 6, integer=True), nice_ticks(min(ys), max(ys), 5)
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    pw, ph = W - LEFT - RIGHT, PLOT_H
    legend_y = TOP + ph + 46
    height = legend_y + 13 * ((len(pts) + 2) // 3)

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return TOP + ph - (y - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" role="img" aria-label="{esc(title)}">',
        f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{esc(title)}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for t in yt:
        y = sy(t)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{_fmt(t)}</text>"
        )
    for t in xt:
        x = sx(t)
        out.append(
            f'<text x="{x:.1f}" y="{TOP + ph + 14}" text-anchor="middle" font-size="10">'
            f"{_fmt(t)}</text>"
        )
    out.append(
        f'<text x="{LEFT + pw / 2}" y="{TOP + ph + 28}" text-anchor="middle" font-size="11">'
        f"{esc(x_label)}</text>"
    )
    if mark_x is not None and x0 <= mark_x <= x1:
        x = sx(mark_x)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#555" '
            f'stroke-dasharray="4 3"><title>best epoch {mark_x:g}</title></line>'
        )
    for i, (name, v) in enumerate(pts.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in v)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        for x, y in v:
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}">'
                f"<title>{esc(name)}: {x_label} {x:g}: {y:.6g}</title></circle>"
            )
        lx, ly = LEFT + (i % 3) * (pw / 3), legend_y + 13 * (i // 3)
        out.append(f'<rect x="{lx:.1f}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>')
        out.append(f'<text x="{lx + 13:.1f}" y="{ly - 4}" font-size="10">{esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)
