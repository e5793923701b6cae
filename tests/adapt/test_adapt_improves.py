"""``reidkit adapt`` on a target whose camera the source never saw beats the source model."""

from __future__ import annotations

import json
from pathlib import Path

from adapt_helpers import write_json

from reidkit.app.cli import main
from reidkit.app.evaluate import evaluate_target
from reidkit.models.checkpoint import restore


def test_adapt_improves_target_map(domains: dict[str, Path], adapt_params, tmp_path) -> None:
    before = evaluate_target(
        domains["run"], data=domains["target"], device="cpu", output=tmp_path / "before.json"
    )
    params = write_json(tmp_path / "p.json", adapt_params(tmp_path / "work"))
    assert main(["adapt", "-c", str(params), "--sub-working-dir", "adapted"]) == 0
    run = tmp_path / "work" / "adapted"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:  # clusters and outliers of every epoch are in its record
        assert r["train"]["clusters"] >= 4 and 0 <= r["train"]["outliers"] < 155
    log = (run / "train.log").read_text()
    assert "before adapting: rank1" in log and "clusters of" in log
    after = evaluate_target(
        run, data=domains["target"], device="cpu", output=tmp_path / "after.json"
    )
    best = max(r["eval"]["mAP"] for r in records)
    assert after["mAP"] == best  # best.pth is the best epoch, restored like any run
    assert after["mAP"] > before["mAP"] + 0.04, (before["mAP"], after["mAP"])
    model, cfg = restore(run)
    assert cfg.adapt.unlabeled and model.num_classes == 1
