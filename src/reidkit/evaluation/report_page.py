"""The run report: one self-contained HTML page built from plain data.

``render_report(ReportData) -> str`` shows the evaluation metrics, the per-epoch curves
(loss terms, learning rate, evaluation metrics; inline SVG) with the best epoch, rank-1 and
mAP per query camera, the worst queries with their top-k gallery images (green frame: same
identity, red: another) and their first true match, and the run's config. Images are
embedded as data URIs and every file name is HTML-escaped, so the page opens from disk.
Figures taken from ``eval.json`` / ``report.json`` sit in elements with
``data-key="<dotted key>"`` so tests can compare the page with the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reidkit.evaluation.svg_plot import line_plot
from reidkit.utils.files import atomic_write_text
from reidkit.utils.html import esc, figure, page

TRAIN_SKIP = ("lr", "images_per_s", "epoch_s", "gpu_mem_gb")  # not loss terms


@dataclass
class Thumb:
    """One image on the page: its name (file name / store key), a data URI, a short label."""

    name: str
    uri: str
    label: str = ""


@dataclass
class RankedEntry:
    """One gallery item of a ranked list."""

    thumb: Thumb
    rank: int
    correct: bool
    distance: float


@dataclass
class QueryRow:
    """A query with its ranked list (top-k) and its first true match."""

    index: int
    thumb: Thumb
    pid: int
    camid: int
    ap: float
    first_hit: int
    top: list[RankedEntry]
    first_match: RankedEntry | None = None


@dataclass
class ReportData:
    """Everything the page shows; every part is optional except the title."""

    title: str
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_source: str = ""
    epochs: list[dict[str, Any]] = field(default_factory=list)  # metrics.jsonl records
    best_epoch: int | None = None
    best_metric: str | None = None
    per_camera: list[dict[str, Any]] = field(default_factory=list)
    worst: list[QueryRow] = field(default_factory=list)
    config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def fmt_metric(key: str, value: float) -> str:
    """Counts as integers, everything else with 4 decimals (as ``reidkit eval`` prints)."""
    return str(int(value)) if key.startswith("num_") else f"{value:.4f}"


def _metrics_table(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td class='t'>{esc(k)}</td><td data-key='metrics.{esc(k)}'>"
        f"{esc(fmt_metric(k, v))}</td></tr>"
        for k, v in data.metrics.items()
    )
    src = f"<p class='muted'>from {esc(data.metrics_source)}</p>" if data.metrics_source else ""
    head = "<tr><th class='t'>metric</th><th>value</th></tr>"
    return f"<h2>Evaluation</h2>{src}<table>{head}{rows}</table>"


def _curves(data: ReportData) -> str:
    if not data.epochs:
        return ""
    train: dict[str, list[tuple[float, float]]] = {}
    lr: dict[str, list[tuple[float, float]]] = {"lr": []}
    ev: dict[str, list[tuple[float, float]]] = {}
    for rec in data.epochs:
        e = float(rec.get("epoch", 0))
        for k, v in (rec.get("train") or {}).items():
            if k == "lr":
                lr["lr"].append((e, float(v)))
            elif k not in TRAIN_SKIP:
                train.setdefault(k, []).append((e, float(v)))
        for k, v in (rec.get("eval") or {}).items():
            if not k.startswith("num_"):
                ev.setdefault(k, []).append((e, float(v)))
    plots = [line_plot("loss (epoch mean)", train, data.best_epoch)]
    plots.append(line_plot("learning rate (end of epoch)", lr, data.best_epoch))
    if ev:
        plots.append(line_plot("evaluation", ev, data.best_epoch))
    best = ""
    if data.best_epoch is not None:
        what = f" (by {esc(data.best_metric)})" if data.best_metric else ""
        best = f"<p>best epoch: <b data-key='best_epoch'>{data.best_epoch}</b>{what}</p>"
    return f"<h2>Training curves</h2>{best}<div class='plots'>{''.join(plots)}</div>"


def _per_camera(data: ReportData) -> str:
    if not data.per_camera:
        return ""
    rows = []
    for r in data.per_camera:
        k = f"per_camera.{r['camid']}"
        rows.append(
            f"<tr><td class='t'>{r['camid']}</td><td data-key='{k}.queries'>{r['queries']}</td>"
            f"<td data-key='{k}.valid_queries'>{r['valid_queries']}</td>"
            f"<td data-key='{k}.rank1'>{r['rank1']:.4f}</td>"
            f"<td data-key='{k}.mAP'>{r['mAP']:.4f}</td></tr>"
        )
    head = (
        "<tr><th class='t'>query camid</th><th>queries</th><th>with a match</th>"
        "<th>rank-1</th><th>mAP</th></tr>"
    )
    return f"<h2>Per camera</h2><table>{head}{''.join(rows)}</table>"


def _entry(e: RankedEntry, css: str) -> str:
    caption = f"#{e.rank} {e.thumb.label} {e.thumb.name}"
    return figure(e.thumb.uri, caption, css, title=f"{e.thumb.name} (distance {e.distance:.4g})")


def _worst(data: ReportData) -> str:
    if not data.worst:
        return ""
    parts = [
        "<h2>Worst queries</h2><p class='muted'>lowest AP first; blue: query, green frame: "
        "same identity, red: another identity, dashed green: first true match</p>"
    ]
    for i, q in enumerate(data.worst):
        k = f"worst.{i}"
        thumbs = [figure(q.thumb.uri, f"{q.thumb.label} {q.thumb.name}", "query", q.thumb.name)]
        thumbs += [_entry(e, "ok" if e.correct else "bad") for e in q.top]
        if q.first_match is not None:
            thumbs.append("<div class='muted'>&hellip;</div>" + _entry(q.first_match, "hit"))
        parts.append(
            f"<div class='finding'><div>query <span data-key='{k}.name'>{esc(q.thumb.name)}"
            f"</span> (id {q.pid}, camid {q.camid}): AP <span data-key='{k}.ap'>{q.ap:.4f}"
            f"</span>, first true match at rank <span data-key='{k}.first_hit'>{q.first_hit}"
            f"</span></div><div class='thumbs'>{''.join(thumbs)}</div></div>"
        )
    return "\n".join(parts)


def render_report(data: ReportData) -> str:
    """The complete HTML page."""
    body = [f"<p class='muted'>{esc(n)}</p>" for n in data.notes]
    if data.metrics:
        body.append(_metrics_table(data))
    body += [_curves(data), _per_camera(data), _worst(data)]
    if data.config is not None:
        text = json.dumps(data.config, indent=2, sort_keys=True)
        body.append(f"<h2>Config</h2><pre>{esc(text)}</pre>")
    return page(data.title, "\n".join(b for b in body if b))


def report_json(data: ReportData) -> dict[str, Any]:
    """The page's figures as JSON (``report.json``), without the thumbnails."""
    worst = []
    for q in data.worst:
        fm = q.first_match
        worst.append(
            {
                "index": q.index,
                "name": q.thumb.name,
                "pid": q.pid,
                "camid": q.camid,
                "ap": q.ap,
                "first_hit": q.first_hit,
                "top": [
                    {"name": e.thumb.name, "rank": e.rank, "correct": e.correct} for e in q.top
                ],
                "first_match": None if fm is None else {"name": fm.thumb.name, "rank": fm.rank},
            }
        )
    return {
        "metrics": data.metrics,
        "best_epoch": data.best_epoch,
        "per_camera": {str(r["camid"]): r for r in data.per_camera},
        "worst": worst,
    }


def write_report_page(data: ReportData, out_dir: str | Path) -> Path:
    """Write ``report.html`` and ``report.json`` under ``out_dir``; returns the page's path."""
    out = Path(out_dir)
    atomic_write_text(out / "report.json", json.dumps(report_json(data), indent=1) + "\n")
    atomic_write_text(out / "report.html", render_report(data))
    return out / "report.html"
