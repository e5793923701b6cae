"""The run report: gather what a run folder and an evaluation hold, then write the page.

``write_report_page`` is called by ``evaluate_target`` (``reidkit eval --report N``,
``reidkit report RUN``, and the trainer after its last epoch) with the features it just
evaluated: it reads ``config.json`` and ``metrics.jsonl`` from the run folder, computes every
query's AP (``evaluation.query_stats``), picks the worst queries, reads their thumbnails
through the dataset's image source and renders ``report/report.html`` (+ ``report.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from reidkit.data.images import decode_rgb
from reidkit.engine.runlog import read_records
from reidkit.evaluation.query_stats import (
    distance_blocks,
    per_camera,
    per_query_stats,
    ranked_lists,
    worst_queries,
)
from reidkit.evaluation.report_page import (
    QueryRow,
    RankedEntry,
    ReportData,
    Thumb,
)
from reidkit.evaluation.report_page import (
    write_report_page as write_page,
)
from reidkit.utils.errors import DataError
from reidkit.utils.html import image_data_uri

THUMB_H = 96


def read_run_folder(run_dir: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``(config.json as a dict, metrics.jsonl records)`` of a run folder (either may be
    missing; damaged lines are skipped: ``engine.runlog.read_records``)."""
    config = None
    if (run_dir / "config.json").is_file():
        try:
            config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # UnicodeDecodeError too
            raise DataError(f"{run_dir / 'config.json'}: not readable JSON ({e})") from None
        if not isinstance(config, dict):
            raise DataError(f"{run_dir / 'config.json'}: not a JSON object")
    return config, read_records(run_dir / "metrics.jsonl")


def best_epoch(records: Sequence[dict[str, Any]]) -> int | None:
    """The last epoch marked best that has evaluation results (what best.pth holds)."""
    marked = [int(r["epoch"]) for r in records if r.get("best") and r.get("eval")]
    return marked[-1] if marked else None


def placeholder(label: str) -> Image.Image:
    """A grey thumbnail with a label, for reports on features without images."""
    img = Image.new("RGB", (48, 96), (200, 200, 200))
    ImageDraw.Draw(img).text((4, 40), label, fill=(0, 0, 0))
    return img


def thumb_reader(records: Sequence[Any] | None, source: Any, prefix: str) -> Callable[[int], Thumb]:
    """``index -> Thumb`` of dataset records (or grey placeholders without a dataset)."""

    def read(i: int) -> Thumb:
        if records is None:
            return Thumb(f"{prefix} #{i}", image_data_uri(placeholder(f"#{i}"), THUMB_H))
        rec = records[i]
        label = f"id {rec.pid} cam {rec.camid}"
        try:
            pixels = decode_rgb(source.read(rec.path), rec.path)
        except DataError:
            return Thumb(rec.path, image_data_uri(placeholder("?"), THUMB_H), label)
        return Thumb(rec.path, image_data_uri(pixels, THUMB_H), label)

    return read


def retrieval_rows(
    tensors: dict[str, torch.Tensor],
    records: tuple[Sequence[Any], Sequence[Any]] | None,
    source: Any,
    *,
    distance: str,
    rerank: bool,
    query_expansion: int,
    queries: int,
    topk: int,
) -> tuple[list[dict[str, Any]], list[QueryRow]]:
    """Per-camera rank-1 / mAP and the ``queries`` worst ranked lists of the features;
    ``records``: the query and gallery records in feature-row order (None: no images)."""
    t = tensors
    ids = (t["q_pids"], t["g_pids"], t["q_camids"], t["g_camids"])
    blocks = distance_blocks(t["qf"], t["gf"], distance, rerank, query_expansion)
    stats = per_query_stats(blocks, len(t["qf"]), *ids)
    q_thumb = thumb_reader(records[0] if records else None, source, "query")
    g_thumb = thumb_reader(records[1] if records else None, source, "gallery")
    rows = []
    for r in ranked_lists(blocks, worst_queries(stats, queries), *ids, stats, topk=topk):
        top = [
            RankedEntry(g_thumb(g), j + 1, ok, d)
            for j, (g, ok, d) in enumerate(zip(r.gallery, r.correct, r.distances, strict=True))
        ]
        first = None
        if r.first_match is not None and r.first_hit and r.first_hit > len(top):
            first = RankedEntry(g_thumb(r.first_match), r.first_hit, True, float("nan"))
        rows.append(
            QueryRow(
                index=r.query,
                thumb=q_thumb(r.query),
                pid=int(t["q_pids"][r.query]),
                camid=int(t["q_camids"][r.query]),
                ap=float(r.ap or 0.0),
                first_hit=int(r.first_hit or 0),
                top=top,
                first_match=first,
            )
        )
    return per_camera(stats, t["q_camids"]), rows


def write_report_page(
    out_dir: str | Path,
    *,
    target: str | Path,
    metrics: dict[str, float],
    metrics_file: str | Path,
    cfg: Any = None,
    tensors: dict[str, torch.Tensor] | None = None,
    records: tuple[Sequence[Any], Sequence[Any]] | None = None,
    source: Any = None,
    distance: str = "euclidean",
    rerank: bool = False,
    query_expansion: int = 0,
    queries: int = 10,
    topk: int = 10,
) -> Path:
    """Write ``report.html`` + ``report.json`` under ``out_dir`` for an evaluated target
    (``tensors``: its query / gallery features and ids, for the retrieval sections; ``records``
    and ``source``: the images of their rows)."""
    target = Path(target)
    run_dir = target if target.is_dir() else target.parent
    config, epochs = read_run_folder(run_dir)
    if config is None and cfg is not None:
        config = cfg.to_dict()
    ev = getattr(cfg, "evaluation_params", None)
    data = ReportData(
        title=f"reidkit report: {run_dir.resolve().name}",
        metrics=dict(metrics),
        metrics_source=str(metrics_file),
        epochs=epochs,
        best_epoch=best_epoch(epochs),
        best_metric=getattr(ev, "metric", None),
        config=config,
        notes=[f"evaluated: {target}"],
    )
    if tensors is not None:
        if rerank or query_expansion:
            data.notes.append("ranked lists and per-camera figures use the same re-ranking")
        data.per_camera, data.worst = retrieval_rows(
            tensors,
            records,
            source,
            distance=distance,
            rerank=rerank,
            query_expansion=query_expansion,
            queries=queries,
            topk=topk,
        )
    return write_page(data, out_dir)
