"""Engine behaviours: user evaluators, NaN stop, classification, AMP, `reidkit runs`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidkit.app.launch import prepare
from reidkit.cli import main
from reidkit.config import validate_config
from reidkit.engine.trainer import TrainingError
from reidkit.models.checkpoint import load_checkpoint


def test_user_evaluator_found_by_name_seed_way(
    tiny_market, tmp_path, monkeypatch, tiny_params, write_params
):
    (tmp_path / "evaluate").mkdir()
    (tmp_path / "evaluate" / "norm_evaluate.py").write_text(
        "import torch\n"
        "def run_eval(config, model):\n"
        "    x = torch.zeros(2, 3, config.img_h, config.img_w)\n"
        "    return {'mean_norm': float(model(x).norm(dim=1).mean()), 'score': 1.0}\n"
    )
    monkeypatch.chdir(tmp_path)
    params = tiny_params(tiny_market, tmp_path / "w", epoch=1)
    params["evaluation_params"] = {"type": "norm_evaluate", "metric": "score"}
    cfg = write_params(tmp_path / "p.json", params)
    assert main(["train", "-c", str(cfg), "--sub-working-dir", "u"]) == 0
    record = json.loads((tmp_path / "w" / "u" / "metrics.jsonl").read_text())
    assert record["eval"]["score"] == 1.0 and record["eval"]["mean_norm"] > 0


def test_broken_evaluator_is_reported_and_last_checkpoint_kept(
    tiny_market, tmp_path, monkeypatch, capsys, tiny_params, write_params
):
    (tmp_path / "evaluate").mkdir()
    (tmp_path / "evaluate" / "broken_evaluate.py").write_text(
        "def run_eval(config, model):\n    raise ValueError('boom')\n"
    )
    monkeypatch.chdir(tmp_path)
    params = tiny_params(tiny_market, tmp_path / "w", epoch=2)
    params["evaluation_params"] = {"type": "broken_evaluate", "metric": "score"}
    cfg = write_params(tmp_path / "p.json", params)
    assert main(["train", "-c", str(cfg), "--sub-working-dir", "b"]) == 2
    err = capsys.readouterr().err
    assert "broken_evaluate" in err and "boom" in err
    assert load_checkpoint(tmp_path / "w" / "b" / "last.pth")["epoch"] == 1


def test_nan_loss_stops_with_step_and_checkpoint(tiny_market, tmp_path, tiny_params):
    cfg = validate_config(tiny_params(tiny_market, tmp_path / "w", sub_working_dir="nan"))
    trainer = prepare(cfg)
    images = torch.full((8, 3, 64, 32), float("nan"))
    pids = torch.arange(2).repeat_interleave(4)
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 1 iteration 0; no checkpoint"):
        trainer.train_step(images, pids)
    trainer.runlog.close()


def test_bf16_autocast_trains_on_cpu(tiny_market, tmp_path, tiny_params, write_params):
    params = tiny_params(tiny_market, tmp_path / "w", epoch=1, amp="bf16")
    params["evaluation_params"] = {"type": "None"}
    cfg = write_params(tmp_path / "p.json", params)
    assert main(["train", "-c", str(cfg), "--sub-working-dir", "amp"]) == 0
    rec = json.loads((tmp_path / "w" / "amp" / "metrics.jsonl").read_text())
    assert np.isfinite(rec["train"]["total"])


def _imagefolder(root: Path) -> None:
    """Three colour classes, 12 train / 4 val images each, 32x32."""
    rng = np.random.default_rng(0)
    colours = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
    for split, n in (("train", 12), ("val", 4)):
        for name, rgb in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(np.array(rgb) + rng.normal(0, 30, (32, 32, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}.jpg")


def test_classification_trains_and_reports_top1(tmp_path, capsys, tiny_params, write_params):
    _imagefolder(tmp_path / "cls")
    params = tiny_params(tmp_path / "cls", tmp_path / "w", epoch=2)
    params.update(img_h=32, img_w=32, batch_size=12, tri_loss_margin=0)
    params["batch_sampling_params"] = {"class_balanced": False}
    params["evaluation_params"] = {"type": "classification_evaluate"}
    params["data"]["layout"] = "imagefolder"
    params["lr"] = {"base_lr": 0.003, "decay_step": 10}
    cfg = write_params(tmp_path / "p.json", params)
    assert main(["train", "-c", str(cfg), "--sub-working-dir", "cls"]) == 0
    records = [json.loads(x) for x in (tmp_path / "w" / "cls" / "metrics.jsonl").open()]
    assert records[-1]["eval"]["top1"] > 0.5  # chance is 1/3
    assert main(["runs", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "cls" in out and "top1" in out and "2/2" in out


def test_center_loss_centres_have_their_own_optimiser(tiny_market, tmp_path, tiny_params):
    params = tiny_params(tiny_market, tmp_path / "w", sub_working_dir="c", center_loss_weight=5e-4)
    trainer = prepare(validate_config(params))
    before = trainer.loss.centers.detach().clone()
    batch = next(iter(trainer.loader))
    terms = trainer.train_step(batch.images, batch.pids)
    assert "center" in terms
    assert not torch.equal(before, trainer.loss.centers.detach())
    in_main = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(trainer.loss.centers) not in in_main
    trainer.runlog.close()
