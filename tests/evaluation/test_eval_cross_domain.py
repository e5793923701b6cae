"""The cross-domain protocol: `reidkit eval RUN --data DIR` on a test-only folder
(query + gallery, no train split), for a run folder and an exported ONNX model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from reidkit.cli import main
from reidkit.data import load_dataset
from reidkit.evaluation import market_evaluate


@pytest.fixture(scope="module")
def other_domain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test-only Market folder (query/ + bounding_box_test/) from another synthetic seed."""
    from reidkit.data.synthetic import generate_synthetic

    full = tmp_path_factory.mktemp("other_full")
    generate_synthetic(
        full, num_ids=2, num_test_ids=4, num_cameras=2, img_h=64, img_w=32, seed=5, images_per_id=5
    )
    root = tmp_path_factory.mktemp("other") / "street_cam"
    for split in ("query", "bounding_box_test"):
        shutil.copytree(full / split, root / split)
    return root


@pytest.fixture()
def run_dir(eval_cfg, tmp_path: Path):
    """A run folder (config.json + best.pth) of an untrained ResNet-18 over ``eval_market``."""
    from reidkit.config import save_config
    from reidkit.models import build_model
    from reidkit.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model(eval_cfg, 4).eval()
    run = tmp_path / "run"
    run.mkdir()
    save_config(eval_cfg, run / "config.json")
    ckpt = {"model": model.state_dict(), "config": eval_cfg.to_dict(), "num_classes": 4}
    save_checkpoint(ckpt, run / "best.pth")
    return run, model


def test_eval_run_on_a_test_only_folder(eval_cfg, run_dir, other_domain: Path) -> None:
    from reidkit.deploy.export import export_onnx

    run, model = run_dir
    ds = load_dataset(other_domain)
    assert ds.train == []
    expected = market_evaluate(eval_cfg, model, dataset=ds, device="cpu")
    assert expected["num_valid_queries"] > 0
    assert main(["eval", str(run), "--data", str(other_domain), "--device", "cpu"]) == 0
    saved = json.loads((run / "eval_street_cam.json").read_text())
    assert saved["metrics"] == pytest.approx(expected) and saved["data"] == str(other_domain)
    assert not (run / "eval.json").exists()  # the run's own result is not replaced
    assert expected["num_queries"] == len(ds.query) != len(load_dataset(eval_cfg.batches_dir).query)

    export_onnx(model, run / "model.onnx", eval_cfg.img_h, eval_cfg.img_w, num_images=2)
    out = run / "onnx_cross.json"
    args = ["eval", str(run / "model.onnx"), "--data", str(other_domain), "-o", str(out)]
    assert main([*args, "--device", "cpu"]) == 0
    onnx = json.loads(out.read_text())["metrics"]
    assert onnx["num_queries"] == expected["num_queries"]
    assert onnx["mAP"] == pytest.approx(expected["mAP"], abs=2e-3)


def test_eval_openvino_model_on_a_test_only_folder(eval_cfg, run_dir, other_domain: Path):
    """``--data`` applies to an OpenVINO ``model.xml`` as to the ONNX file (config.json beside
    it gives the evaluation settings; the folder replaces its dataset)."""
    from reidkit.deploy.artefact import ExportSpec, export_artefact

    run, model = run_dir
    expected = market_evaluate(eval_cfg, model, dataset=load_dataset(other_domain), device="cpu")
    xml = run / "model.xml"
    spec = ExportSpec(format="openvino")
    export_artefact(model, xml, eval_cfg.img_h, eval_cfg.img_w, spec, num_images=2, verbose=False)
    args = ["eval", str(xml), "--data", str(other_domain), "--device", "cpu"]
    assert main(args) == 0
    saved = json.loads((run / "eval_street_cam.json").read_text())
    assert saved["data"] == str(other_domain) and saved["target"] == str(xml)
    assert saved["metrics"]["num_queries"] == expected["num_queries"]
    assert saved["metrics"]["mAP"] == pytest.approx(expected["mAP"], abs=2e-3)


def test_data_option_errors(tmp_path: Path, run_dir, capsys: pytest.CaptureFixture) -> None:
    run, _ = run_dir
    assert main(["eval", str(run), "--data", str(tmp_path / "nope")]) == 2
    assert "--data" in capsys.readouterr().err
    import numpy as np

    np.savez(tmp_path / "f.npz", qf=np.zeros((1, 2)))
    assert main(["eval", str(tmp_path / "f.npz"), "--data", str(tmp_path)]) == 2
    assert "applies to models" in capsys.readouterr().err


def test_train_on_test_only_folder_fails_in_one_line(
    tmp_path: Path, other_domain: Path, capsys: pytest.CaptureFixture
) -> None:
    params = {
        "batches_dir": str(other_domain),
        "working_dir": str(tmp_path / "runs"),
        "img_h": 64,
        "img_w": 32,
        "epoch": 1,
        "model_params": {"backbone": "resnet18"},
        "data": {"num_workers": 0},
        "progress": False,
    }
    (tmp_path / "p.json").write_text(json.dumps(params))
    assert main(["train", "-c", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "the train split has no usable images" in err


def test_extract_a_packed_test_only_split(tmp_path: Path, run_dir, other_domain: Path) -> None:
    from reidkit.data import pack_dataset
    from reidkit.deploy.features_io import load_features

    run, _ = run_dir
    pack_dataset(other_domain, tmp_path / "o.lmdb", progress=False)
    out = tmp_path / "q.npz"
    args = ["extract", str(run), f"{tmp_path / 'o.lmdb'}:query", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    feats = load_features(out)
    assert len(feats.feats) == len(load_dataset(other_domain).query) and feats.pids is not None
