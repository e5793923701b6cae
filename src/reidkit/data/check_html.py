"""The HTML page of ``reidkit data check``: counts, the findings table and thumbnails.

One self-contained file (thumbnails embedded as data URIs, no scripts). Every figure that
comes from ``check.json`` sits in an element with ``data-key="<dotted path in check.json>"``
so a test (or a person) can compare the page with the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reidkit.data.check import KINDS, LEAK_KINDS
from reidkit.data.images import decode_rgb
from reidkit.utils.errors import DataError
from reidkit.utils.files import atomic_write_text
from reidkit.utils.html import esc, figure, image_data_uri, page

THUMB_H = 96


def _td(value: Any, key: str | None = None, text: bool = False) -> str:
    attr = f' data-key="{esc(key)}"' if key else ""
    cls = ' class="t"' if text else ""
    return f"<td{cls}{attr}>{esc(value)}</td>"


def _num(x: Any) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _splits_table(splits: dict[str, Any]) -> str:
    rows = [
        "<tr><th class='t'>split</th><th>images</th><th>ids</th><th>cameras</th>"
        "<th>images/id min</th><th>median</th><th>max</th></tr>"
    ]
    for split, s in splits.items():
        per, k = s["images_per_id"], f"splits.{split}"
        rows.append(
            "<tr>"
            + _td(split, text=True)
            + _td(s["images"], f"{k}.images")
            + _td(s["ids"], f"{k}.ids")
            + _td(s["cameras"], f"{k}.cameras")
            + _td(per["min"], f"{k}.images_per_id.min")
            + _td(_num(per["median"]), f"{k}.images_per_id.median")
            + _td(per["max"], f"{k}.images_per_id.max")
            + "</tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _cameras_table(splits: dict[str, Any]) -> str:
    cams = sorted({int(c) for s in splits.values() for c in s["per_camera"]})
    head = "<tr><th class='t'>split</th>" + "".join(f"<th>camid {c}</th>" for c in cams) + "</tr>"
    rows = []
    for split, s in splits.items():
        cells = [
            _td(s["per_camera"][str(c)], f"splits.{split}.per_camera.{c}")
            if str(c) in s["per_camera"]
            else "<td>0</td>"
            for c in cams
        ]
        rows.append("<tr>" + _td(split, text=True) + "".join(cells) + "</tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _histogram_table(splits: dict[str, Any]) -> str:
    rows = ["<tr><th class='t'>split</th><th class='t'>images per id: number of ids</th></tr>"]
    for split, s in splits.items():
        hist = s["images_per_id"]["histogram"]
        text = ", ".join(f"{n}: {c}" for n, c in hist.items())
        rows.append("<tr>" + _td(split, text=True) + _td(text, text=True) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _summary_table(result: dict[str, Any]) -> str:
    rows = ["<tr><th class='t'>finding</th><th>count</th><th class='t'>what</th></tr>"]
    for kind, what in KINDS.items():
        skipped = kind == "label_suspect" and not result["label_check"]
        count = "not run" if skipped else result["summary"][kind]
        link = f"<a href='#{kind}'>{esc(kind)}</a>" if result["summary"][kind] else esc(kind)
        rows.append(
            f"<tr><td class='t'>{link}</td>"
            + _td(count, None if skipped else f"summary.{kind}")
            + _td(what, text=True)
            + "</tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _thumb(read: Callable[[str], bytes], image: dict[str, Any], css: str) -> str:
    try:
        uri = image_data_uri(decode_rgb(read(image["path"]), image["path"]), THUMB_H)
    except DataError:
        uri = None  # shown as "unreadable" with its caption
    caption = f"{image['split']} id {image['pid']} cam {image['camid']}: {image['path']}"
    return figure(uri, caption, css, title=image["path"])


def _findings_section(
    kind: str, findings: list[dict[str, Any]], read: Callable[[str], bytes], max_shown: int
) -> str:
    parts = [f"<h2 id='{kind}'>{esc(kind)}: {esc(KINDS[kind])} ({len(findings)})</h2>"]
    for f in findings[:max_shown]:
        thumbs = "".join(
            _thumb(read, im, "query" if (kind == "label_suspect" and j == 0) else "")
            for j, im in enumerate(f["images"])
        )
        parts.append(
            f"<div class='finding' data-kind='{esc(kind)}'><div>{esc(f['message'])}</div>"
            f"<div class='thumbs'>{thumbs}</div></div>"
        )
    if len(findings) > max_shown:
        parts.append(f"<p class='muted'>{len(findings) - max_shown} more in check.json</p>")
    return "\n".join(parts)


def render_check_html(
    result: dict[str, Any], read: Callable[[str], bytes], max_shown: int = 50
) -> str:
    """The page for a ``check_dataset`` result; ``read(path)`` gives an image's bytes."""
    verdict = "LEAKAGE found" if result["leakage"] else "no leakage found"
    opts = ", ".join(f"{k} = {v}" for k, v in result["options"].items())
    body = [
        f"<p id='verdict' data-leakage='{str(result['leakage']).lower()}'><b>{verdict}</b> "
        f"&mdash; {esc(result['root'])} ({esc(result['name'])})</p>",
        f"<p class='muted'>thresholds: {esc(opts)}; train ids are relabelled 0..N-1, "
        "query / gallery keep their own ids</p>",
        "<h2>Splits</h2>",
        _splits_table(result["splits"]),
        "<h2>Images per camera</h2>",
        _cameras_table(result["splits"]),
        "<h2>Images per identity</h2>",
        _histogram_table(result["splits"]),
        "<h2>Findings</h2>",
        _summary_table(result),
    ]
    if result.get("listing_problems"):
        items = "".join(f"<li>{esc(p)}</li>" for p in result["listing_problems"])
        body.append(f"<p>Files left out while listing:</p><ul>{items}</ul>")
    order = list(LEAK_KINDS) + [k for k in KINDS if k not in LEAK_KINDS]
    for kind in order:
        found = [f for f in result["findings"] if f["kind"] == kind]
        if found:
            body.append(_findings_section(kind, found, read, max_shown))
    return page("reidkit data check", "\n".join(body))


def write_check(
    result: dict[str, Any],
    out_dir: str | Path,
    read: Callable[[str], bytes],
    max_shown: int = 50,
) -> tuple[Path, Path]:
    """Write ``check.json`` and ``check.html`` under ``out_dir`` (atomically); their paths."""
    out = Path(out_dir)
    json_path, html_path = out / "check.json", out / "check.html"
    atomic_write_text(json_path, json.dumps(result, indent=1) + "\n")
    atomic_write_text(html_path, render_check_html(result, read, max_shown))
    return json_path, html_path
