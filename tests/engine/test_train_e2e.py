"""End-to-end training through the CLI and the seed's train.py: the run folder it leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reidkit.cli import main
from reidkit.models.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def test_one_epoch_run_writes_best_last_events_and_metrics(
    tiny_market: Path, tmp_path: Path, tiny_params, write_params
):
    params = tiny_params(tiny_market, tmp_path / "work", epoch=1)
    cfg = write_params(tmp_path / "params.json", params)
    assert main(["train", "-c", str(cfg), "--sub-working-dir", "e2e"]) == 0
    run = tmp_path / "work" / "e2e"
    for name in ("config.json", "train.log", "best.pth", "last.pth", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert 0.0 <= record["eval"][key] <= 1.0
    assert {"ce", "triplet", "total"} <= set(record["train"])
    best = load_checkpoint(run / "best.pth")
    assert best["epoch"] == 1 and best["best_metric"] == record["eval"]["mAP"]
    saved = json.loads((run / "config.json").read_text())
    assert saved["sub_working_dir"] == "e2e" and saved["model_params"]["backbone"] == "resnet18"
    assert "epoch 1/1" in (run / "train.log").read_text()


def test_best_is_replaced_only_by_a_better_model(
    tiny_market: Path, tmp_path: Path, tiny_params, write_params
):
    # min mode on mAP: the first epoch is best by definition; later ones only if mAP drops.
    params = tiny_params(tiny_market, tmp_path / "w", epoch=2)
    params["evaluation_params"]["mode"] = "min"
    cfg = write_params(tmp_path / "p.json", params)
    assert main(["train", "-c", str(cfg), "--sub-working-dir", "r"]) == 0
    run = tmp_path / "w" / "r"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    maps = [r["eval"]["mAP"] for r in records]
    best_epoch = load_checkpoint(run / "best.pth")["epoch"]
    assert best_epoch == 1 + maps.index(min(maps))
    assert records[0]["best"] is True
    assert records[1]["best"] is (maps[1] < maps[0])


def test_no_evaluation_keeps_the_last_model(
    tiny_market: Path, tmp_path: Path, tiny_params, write_params
):
    params = tiny_params(tiny_market, tmp_path / "w", epoch=1)
    params["evaluation_params"] = {"type": "None"}
    cfg = write_params(tmp_path / "p.json", params)
    assert main(["train", "-c", str(cfg), "--sub-working-dir", "noeval"]) == 0
    run = tmp_path / "w" / "noeval"
    best, last = load_checkpoint(run / "best.pth"), load_checkpoint(run / "last.pth")
    for k in best["model"]:
        torch.testing.assert_close(best["model"][k], last["model"][k])


def test_seed_command_runs_unchanged(tiny_market: Path, tmp_path: Path, tiny_params, write_params):
    params = tiny_params(tiny_market, tmp_path / "work", epoch=1)
    params["parallels"] = [0]
    params.pop("device")
    write_params(tmp_path / "params.json", params)
    cmd = [sys.executable, str(REPO / "train.py"), "--operation", "start_train"]
    cmd += ["--config_path", "params.json", "--sub_working_dir", "SUB_WORKING_DIR_NAME"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "work" / "SUB_WORKING_DIR_NAME" / "best.pth").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=10", "batch_size: 10 is not divisible by batch_sampling_params.K=4"),
        ("model_params.backbone=resnet5O", "resnet50"),
        ("evaluation_params.type=lfw_evaluat", "lfw_evaluat"),
    ],
)
def test_cli_errors_are_one_line(
    tiny_market, tmp_path, capsys, override, message, tiny_params, write_params
):
    cfg = write_params(tmp_path / "p.json", tiny_params(tiny_market, tmp_path / "w"))
    assert main(["train", "-c", str(cfg), override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert len(err.splitlines()) == 1
