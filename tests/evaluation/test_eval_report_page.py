"""The run report's parts: per-query figures agree with the metrics, ranked lists follow the
protocol, and the page renders plain data with every name escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from reidkit.evaluation.builtins import evaluate_features
from reidkit.evaluation.query_stats import (
    distance_blocks,
    per_camera,
    per_query_stats,
    ranked_lists,
    worst_queries,
)
from reidkit.evaluation.report import rank_queries
from reidkit.evaluation.report_page import (
    QueryRow,
    RankedEntry,
    ReportData,
    Thumb,
    render_report,
    write_report_page,
)
from reidkit.evaluation.svg_plot import line_plot, nice_ticks


def _features(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, 16, generator=g)
    q_pids, g_pids = torch.arange(30) % 8 + 1, torch.arange(90) % 8 + 1
    g_pids[:5] = -1  # junk
    return {
        "qf": centres[q_pids - 1] + 0.9 * torch.randn(30, 16, generator=g),
        "gf": centres[g_pids.abs() - 1] + 0.9 * torch.randn(90, 16, generator=g),
        "q_pids": q_pids,
        "g_pids": g_pids,
        "q_camids": torch.arange(30) % 3,
        "g_camids": torch.arange(90) % 4,
    }


@pytest.mark.parametrize(
    ("distance", "rerank", "qe"),
    [("euclidean", False, 0), ("cosine", False, 2), ("euclidean", True, 0)],
)
def test_per_query_figures_average_to_the_metrics(distance: str, rerank: bool, qe: int) -> None:
    t = _features()
    want = evaluate_features(**t, distance=distance, rerank=rerank, query_expansion=qe)
    blocks = distance_blocks(t["qf"], t["gf"], distance, rerank, qe)
    ids = (t["q_pids"], t["g_pids"], t["q_camids"], t["g_camids"])
    stats = per_query_stats(blocks, 30, *ids, chunk=7)
    assert int(stats.valid.sum()) == want["num_valid_queries"]
    assert np.nanmean(stats.ap) == pytest.approx(want["mAP"])
    assert (stats.first[stats.valid] == 1).mean() == pytest.approx(want["rank1"])
    cams = per_camera(stats, t["q_camids"])
    assert [c["camid"] for c in cams] == [0, 1, 2] and sum(c["queries"] for c in cams) == 30
    n = sum(c["valid_queries"] for c in cams)
    assert sum(c["mAP"] * c["valid_queries"] for c in cams) / n == pytest.approx(want["mAP"])
    assert sum(c["rank1"] * c["valid_queries"] for c in cams) / n == pytest.approx(want["rank1"])


def test_worst_queries_and_their_ranked_lists() -> None:
    t = _features(1)
    ids = (t["q_pids"], t["g_pids"], t["q_camids"], t["g_camids"])
    blocks = distance_blocks(t["qf"], t["gf"])
    stats = per_query_stats(blocks, 30, *ids)
    worst = worst_queries(stats, 5)
    assert len(worst) == 5 and list(stats.ap[worst]) == sorted(stats.ap[stats.valid])[:5]
    rows = ranked_lists(blocks, worst, *ids, stats, topk=4)
    plain = rank_queries(t["qf"], t["gf"], *ids, worst, topk=4)  # the PNG grid's ranking
    for r, p in zip(rows, plain, strict=True):
        assert r.gallery == p.gallery and r.correct == p.correct and r.first_hit == p.first_hit
        assert r.ap == pytest.approx(p.ap) and r.distances == sorted(r.distances)
        g = r.first_match
        assert int(t["g_pids"][g]) == int(t["q_pids"][r.query])
        assert int(t["g_camids"][g]) != int(t["q_camids"][r.query])  # same camera is removed
        assert (r.first_hit <= 4) == any(r.correct)


MARKUP = "0001_c1s1_<b class=injected>&amp;'x'.jpg"


def _data() -> ReportData:
    uri = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
    entry = RankedEntry(Thumb("gallery/<i>g</i>.jpg", uri, "id 2 cam 1"), 1, False, 0.5)
    hit = RankedEntry(Thumb("gallery/0001_c2.jpg", uri, "id 1 cam 2"), 7, True, 0.9)
    return ReportData(
        title="run <script>",
        metrics={"rank1": 0.25, "mAP": 0.3125, "num_queries": 4.0},
        metrics_source="eval.json",
        epochs=[
            {"epoch": 1, "train": {"total": 2.0, "ce": 1.5, "lr": 1e-3}, "eval": {"mAP": 0.2}},
            {"epoch": 2, "train": {"total": 1.0, "ce": 0.5, "lr": 1e-4}, "eval": {"mAP": 0.3125}},
        ],
        best_epoch=2,
        per_camera=[{"camid": 0, "queries": 4, "valid_queries": 4, "rank1": 0.25, "mAP": 0.3125}],
        worst=[QueryRow(3, Thumb(MARKUP, uri, "id 1 cam 0"), 1, 0, 0.125, 7, [entry], hit)],
        config={"batches_dir": "</pre><b>data"},
    )


def test_page_escapes_every_name_and_shows_the_figures(tmp_path: Path) -> None:
    page = render_report(_data())
    assert "<b class=injected>" not in page and "<i>g</i>" not in page and "</pre><b>" not in page
    assert "&lt;b class=injected&gt;&amp;amp;&#x27;x&#x27;.jpg" in page
    assert "<script>" not in page
    assert page.count("<svg") == 3 and "best epoch" in page
    keys = dict(re.findall(r"data-key='([^']+)'>([^<]*)<", page))
    assert keys["metrics.mAP"] == "0.3125" and keys["metrics.num_queries"] == "4"
    assert keys["best_epoch"] == "2" and keys["per_camera.0.rank1"] == "0.2500"
    assert keys["worst.0.first_hit"] == "7" and keys["worst.0.ap"] == "0.1250"
    path = write_report_page(_data(), tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert path.read_text() == page and saved["worst"][0]["name"] == MARKUP
    assert saved["worst"][0]["first_match"] == {"name": "gallery/0001_c2.jpg", "rank": 7}


def test_plots_skip_non_finite_points_and_use_round_ticks() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(1, 2, 6, integer=True) == [1.0, 2.0]
    assert nice_ticks(0.375, 0.875) == [0.2, 0.4, 0.6, 0.8, 1.0]  # the top value inside
    svg = line_plot("loss <x>", {"a": [(1, 1.0), (2, float("nan")), (3, 0.5)], "b": []}, 2)
    assert svg.count("<circle") == 2 and "loss &lt;x&gt;" in svg and "best epoch 2" in svg
