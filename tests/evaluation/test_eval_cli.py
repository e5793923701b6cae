"""`reidkit eval` on saved features, a checkpoint / run folder and an exported ONNX model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidkit.cli import main
from reidkit.evaluation import evaluate_reid, market_evaluate


def _features_npz(path: Path) -> dict:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 8))
    q_pids, g_pids = np.arange(12) % 6 + 1, np.arange(40) % 6 + 1
    g_pids[:4] = -1
    data = {
        "qf": (centres[q_pids - 1] + 0.8 * rng.standard_normal((12, 8))).astype(np.float32),
        "gf": (centres[np.abs(g_pids) - 1] + 0.8 * rng.standard_normal((40, 8))).astype(np.float32),
        "q_pids": q_pids,
        "g_pids": g_pids,
        "q_camids": np.zeros(12, dtype=np.int64),
        "g_camids": np.arange(40) % 3,
    }
    np.savez(path, **data)
    return data


def test_eval_npz_writes_json_and_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _features_npz(tmp_path / "feats.npz")
    assert main(["eval", str(tmp_path / "feats.npz"), "--report", "3", "--topk", "5"]) == 0
    printed = capsys.readouterr().out
    assert "mAP" in printed and "num_valid_queries" in printed
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["metrics"] == pytest.approx(evaluate_reid(**data))
    with Image.open(tmp_path / "report" / "ranked_lists.png") as im:
        assert im.mode == "RGB" and im.width > 5 * 48 and im.height > 3 * 96
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Worst queries" in page and "first true match at rank" in page
    figures = json.loads((tmp_path / "report" / "report.json").read_text())
    assert len(figures["worst"]) == 3 and all(len(w["top"]) == 5 for w in figures["worst"])
    cams = figures["per_camera"].values()
    n_valid = sum(c["valid_queries"] for c in cams)
    assert n_valid == saved["metrics"]["num_valid_queries"]
    for key in ("rank1", "mAP"):  # per-camera figures average back to the overall ones
        mean = sum(c[key] * c["valid_queries"] for c in cams) / n_valid
        assert mean == pytest.approx(saved["metrics"][key])


def test_eval_npz_rerank_changes_metrics(tmp_path: Path) -> None:
    data = _features_npz(tmp_path / "feats.npz")
    out = tmp_path / "rr.json"
    assert main(["eval", str(tmp_path / "feats.npz"), "--rerank", "-o", str(out)]) == 0
    rr = json.loads(out.read_text())["metrics"]
    assert rr["num_queries"] == 12 and rr["mAP"] != pytest.approx(evaluate_reid(**data)["mAP"])


def test_eval_bad_targets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(tmp_path / "missing.npz")]) == 2
    assert "no such run folder, checkpoint, .onnx, .xml or .npz file" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", qf=np.zeros((2, 3)))
    assert main(["eval", str(tmp_path / "bad.npz")]) == 2
    assert "lacks gf, q_pids" in capsys.readouterr().err
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    assert main(["eval", str(tmp_path / "model.onnx")]) == 2
    assert "no config.json beside it" in capsys.readouterr().err


@pytest.fixture()
def run_folder(eval_cfg, tmp_path: Path):
    """A run folder with config.json and best.pth of an (untrained) ResNet-18."""
    from reidkit.config import save_config
    from reidkit.models import build_model
    from reidkit.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model(eval_cfg, 4).eval()
    run = tmp_path / "run"
    run.mkdir()
    save_config(eval_cfg, run / "config.json")
    save_checkpoint(
        {"model": model.state_dict(), "config": eval_cfg.to_dict(), "num_classes": 4},
        run / "best.pth",
    )
    return run, model


def test_eval_run_folder_and_onnx_match_pytorch(eval_cfg, run_folder) -> None:
    from reidkit.data import build_dataset
    from reidkit.deploy.export import export_onnx

    run, model = run_folder
    expected = market_evaluate(eval_cfg, model, dataset=build_dataset(eval_cfg), device="cpu")
    assert main(["eval", str(run), "--device", "cpu"]) == 0
    got = json.loads((run / "eval.json").read_text())["metrics"]
    assert got == pytest.approx(expected)

    export_onnx(model, run / "model.onnx", eval_cfg.img_h, eval_cfg.img_w, num_images=2)
    out = run / "onnx_eval.json"
    assert main(["eval", str(run / "model.onnx"), "--device", "cpu", "-o", str(out)]) == 0
    onnx_metrics = json.loads(out.read_text())["metrics"]
    assert onnx_metrics["num_queries"] == expected["num_queries"]
    assert onnx_metrics["mAP"] == pytest.approx(expected["mAP"], abs=2e-3)


def test_eval_scales_option(tmp_path: Path, run_folder, capsys: pytest.CaptureFixture) -> None:
    run, _ = run_folder
    out = tmp_path / "ms.json"
    args = ["eval", str(run), "--device", "cpu", "--scales", "1.0,0.75", "-o", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["metrics"]["num_queries"] > 0
    assert main(["eval", str(run), "--scales", "1.0,x"]) == 2
    assert "--scales '1.0,x'" in capsys.readouterr().err
    _features_npz(tmp_path / "f.npz")
    assert main(["eval", str(tmp_path / "f.npz"), "--scales", "0.5"]) == 2
    assert "applies to PyTorch models" in capsys.readouterr().err
