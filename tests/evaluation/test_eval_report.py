"""Ranked-list report: ranks, colours of the frames, PNG / HTML files, TensorBoard image."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from reidkit.evaluation.report import (
    BORDER,
    GAP,
    GREEN,
    LABEL_W,
    RED,
    THUMB_W,
    image_to_tensor,
    pick_queries,
    rank_queries,
    render_ranked_lists,
    write_report,
)

# the hand-checked example of test_eval_metrics.py (1-D features on a line)
G_X, G_PID, G_CAM = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 2, 1, -1, 0, 1], [0, 1, 1, 1, 1, 2]
Q_X, Q_PID, Q_CAM = [0.0, 2.5, 2.0], [1, 1, 2], [0, 2, 1]


def _rows(topk: int = 10):
    return rank_queries(
        torch.tensor(Q_X)[:, None],
        torch.tensor(G_X)[:, None],
        Q_PID,
        G_PID,
        Q_CAM,
        G_CAM,
        [0, 2],
        topk=topk,
    )


def test_rank_queries_follow_the_protocol() -> None:
    q0, q2 = _rows()
    assert q0.gallery == [1, 2, 4, 5] and q0.correct == [False, True, False, True]
    assert q0.first_hit == 2 and q0.ap == 0.5
    assert q2.gallery == [0, 2, 4, 5] and not any(q2.correct)  # tie g0/g2 -> index order
    assert q2.first_hit is None and q2.ap is None
    assert [len(r.gallery) for r in _rows(topk=2)] == [2, 2]


def test_frames_are_green_and_red(tmp_path: Path) -> None:
    rows = _rows()
    grey = Image.new("RGB", (20, 40), (128, 128, 128))
    image = render_ranked_lists(rows, lambda i: grey, lambda i: grey)
    cell_w = THUMB_W + 2 * BORDER + GAP
    for j, ok in enumerate(rows[0].correct):
        x = LABEL_W + cell_w * (j + 1) + GAP
        assert image.getpixel((x + 1, GAP + 1)) == (GREEN if ok else RED)
        assert image.getpixel((x + BORDER + 5, GAP + BORDER + 5)) == (128, 128, 128)
    t = image_to_tensor(image)
    assert t.dtype == torch.uint8 and t.shape == (3, image.height, image.width)
    assert tuple(t[:, GAP + 1, LABEL_W + cell_w + GAP + 1].tolist()) == RED
    png = write_report(tmp_path, image)
    with Image.open(png) as back:
        assert back.size == image.size and back.getpixel((5, 5)) == image.getpixel((5, 5))


def test_pick_queries_spreads_evenly() -> None:
    assert pick_queries(10, 3) == [0, 4, 9]
    assert pick_queries(2, 5) == [0, 1] and pick_queries(0, 3) == []


def test_market_writer_logs_ranked_lists(eval_cfg, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from reidkit.data import build_dataset
    from reidkit.evaluation.builtins import log_ranked_lists

    ds = build_dataset(eval_cfg)
    torch.manual_seed(0)
    qf, gf = torch.randn(len(ds.query), 8), torch.randn(len(ds.gallery), 8)
    ids = tuple(
        torch.tensor([getattr(r, a) for r in recs])
        for a, recs in (
            ("pid", ds.query),
            ("pid", ds.gallery),
            ("camid", ds.query),
            ("camid", ds.gallery),
        )
    )
    with SummaryWriter(tmp_path / "tb") as writer:
        records = (ds.query, ds.gallery)
        log_ranked_lists(writer, ds.source, records, qf, gf, ids, eval_cfg.evaluation_params, 3)
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    images = acc.Images("eval/ranked_lists")
    assert len(images) == 1 and images[0].step == 3 and images[0].width > 8 * THUMB_W
