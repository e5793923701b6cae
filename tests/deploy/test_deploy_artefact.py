"""Accuracy-checked export of a trained run: INT8 (onnxruntime, OpenVINO + nncf), a broken
export rejected with nothing written, thresholds shipped in the checkpoint and every file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from reidkit.app.export import export_run
from reidkit.cli import main
from reidkit.deploy.embedder import Embedder
from reidkit.deploy.onnx_meta import read_onnx_info
from reidkit.deploy.openvino_ir import read_openvino_info
from reidkit.deploy.preprocess import IMAGENET_MEAN, IMAGENET_STD
from reidkit.models.checkpoint import save_checkpoint
from reidkit.utils.errors import ExportError


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_int8_onnx_export_passes_its_own_check(trained_run, capsys):
    assert main(["export", str(trained_run), "--precision", "int8", "--calib-images", "24"]) == 0
    out = capsys.readouterr().out
    assert "| onnxruntime int8 |" in out and "result: passed" in out and "images/s" in out
    file = trained_run / "model_int8.onnx"
    info = read_onnx_info(file)
    assert info.precision == "int8" and info.calibration is not None
    assert info.calibration.measured_on == "onnxruntime int8"
    ops = {n.op_type for n in onnx.load(str(file)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # really quantized
    assert not [n for n in _files(trained_run) if n.startswith(".")]  # no temporary left


def test_openvino_int8_with_accuracy_control(trained_run, capsys):
    argv = ["export", str(trained_run), "--format", "openvino", "--precision", "int8"]
    assert main([*argv, "--accuracy-control", "--calib-images", "16"]) == 0
    assert "| openvino int8 |" in capsys.readouterr().out
    xml = trained_run / "model_int8.xml"
    assert xml.with_suffix(".bin").is_file() and "FakeQuantize" in xml.read_text()
    info = read_openvino_info(xml)
    assert info.precision == "int8" and info.exporter == "openvino"
    assert Embedder.load(xml).threshold(1e-2) == info.calibration.thresholds[0]


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_wrong_normalisation_fails_the_check_and_leaves_nothing(trained_run, fmt, capsys):
    before = _files(trained_run)
    with pytest.raises(ExportError, match="export rejected: mAP dropped") as err:
        # the exporter's public override of the stored normalisation, set wrong on purpose
        export_run(trained_run, fmt=fmt, std=(10.0, 10.0, 10.0), num_images=2)
    assert "\n" not in str(err.value) and "nothing was written" in str(err.value)
    assert re.search(r"result: FAILED \(drop [\d.]+ > 0\.2 points\)", capsys.readouterr().out)
    assert _files(trained_run) == before


def _edit_stored_config(run: Path, edit) -> None:
    """Apply ``edit(config dict)`` to the config of ``best.pth`` and to ``config.json``."""
    state = torch.load(run / "best.pth", weights_only=True)
    edit(state["config"])
    save_checkpoint(state, run / "best.pth")
    cfg = json.loads((run / "config.json").read_text())
    edit(cfg)
    (run / "config.json").write_text(json.dumps(cfg, indent=2))


def _in_0_255_units(cfg: dict) -> None:
    """Restate the normalisation the way fast-reid (and runs imported from it) do: mean and
    std in 0..255 units, ``pixel_range`` 255. The arithmetic is unchanged, so the model's
    embeddings must be too, on every backend."""
    data = cfg.setdefault("data", {})
    data["mean"] = [v * 255.0 for v in data.get("mean", IMAGENET_MEAN)]
    data["std"] = [v * 255.0 for v in data.get("std", IMAGENET_STD)]
    data["pixel_range"] = 255


@pytest.mark.parametrize(("fmt", "precision"), [("onnx", "int8"), ("openvino", "fp32")])
def test_pixel_range_255_run_exports_and_embeds_alike(trained_run, fmt, precision, capsys):
    before = Embedder.load(trained_run)
    _edit_stored_config(trained_run, _in_0_255_units)
    reference = Embedder.load(trained_run)
    assert reference.pixel_range == 255.0 and reference.mean[0] == pytest.approx(0.485 * 255)
    file = export_run(
        trained_run, fmt=fmt, precision=precision, calib_images=24, num_images=2, verbose=False
    )
    exported = Embedder.load(file, threads=1)
    assert exported.pixel_range == 255.0 and exported.mean == reference.mean
    data = Path(torch.load(trained_run / "best.pth", weights_only=True)["config"]["batches_dir"])
    images = sorted(data.glob("query/*.jpg"))[:12]
    ref = reference.embed(images)
    np.testing.assert_allclose(ref, before.embed(images), rtol=1e-4, atol=1e-4)
    got = exported.embed(images)
    cos = np.sum(got * ref, 1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= (0.999 if precision == "fp32" else 0.95)
    capsys.readouterr()


def test_export_without_the_dataset_on_disk(trained_run, tmp_path, capsys):
    """An imported run or a moved dataset: fp32 exports with parity only and says so; INT8,
    which needs the accuracy check and calibration images, stops in one line."""
    _edit_stored_config(trained_run, lambda cfg: cfg.update(batches_dir=str(tmp_path / "gone")))
    assert main(["export", str(trained_run)]) == 0
    captured = capsys.readouterr()
    assert "no query/gallery accuracy check" in captured.out + captured.err
    assert read_onnx_info(trained_run / "model.onnx").precision == "fp32"
    assert main(["export", str(trained_run), "--precision", "int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the accuracy check needs the run's dataset" in err and "\n" not in err
    assert not (trained_run / "model_int8.onnx").exists()


def test_calibrate_stores_thresholds_everywhere(trained_run, capsys):
    assert main(["export", str(trained_run), "--format", "openvino"]) == 0
    assert main(["export", str(trained_run), "--fp16"]) == 0  # the old flag: fp16 ONNX
    assert (trained_run / "model_fp16.onnx").is_file()
    capsys.readouterr()
    assert main(["calibrate", str(trained_run)]) == 0
    out = capsys.readouterr().out
    for name in ("best.pth", "model.xml", "model_fp16.onnx"):
        assert f"{trained_run / name}:" in out
    state = torch.load(trained_run / "best.pth", weights_only=True)
    stored = state["calibration"]
    assert stored["measured_on"] == "pytorch fp32"
    assert stored["thresholds"] == sorted(stored["thresholds"])  # monotone in the FPR
    tables = {
        "best.pth": Embedder.load(trained_run).calibration,
        "xml": read_openvino_info(trained_run / "model.xml").calibration,
        "fp16": read_onnx_info(trained_run / "model_fp16.onnx").calibration,
    }
    assert tables["xml"].measured_on == "openvino fp32"
    assert tables["fp16"].measured_on == "onnxruntime fp16"
    for table in tables.values():
        assert list(table.thresholds) == sorted(table.thresholds)
        assert table.thresholds == pytest.approx(stored["thresholds"], abs=1e-2)
    # the model's own verdicts follow its threshold
    emb = Embedder.load(trained_run / "model.xml")
    t = emb.threshold(1e-3)
    a = np.zeros((3, emb.embedding_dim), np.float32)
    a[:, 0] = 1.0
    angle = np.arccos(np.clip([t + 0.01, t - 0.01, 1.0], -1, 1))
    b = np.zeros_like(a)
    b[:, 0], b[:, 1] = np.cos(angle), np.sin(angle)
    b[2] = 0.0  # an invalid box's zero row is nobody
    assert emb.same_identity(a, b).tolist() == [True, False, False]
    assert emb.same_identity(a[0], b[0]) is True


def test_calibrate_with_pairs_file(trained_run, tmp_path, capsys):
    data = Path(torch.load(trained_run / "best.pth", weights_only=True)["config"]["batches_dir"])
    files = sorted((data / "bounding_box_test").glob("*.jpg"))
    ids = [f.name.split("_")[0] for f in files]
    rows = [
        f"{a},{b},{int(ia == ib)}"
        for i, (a, ia) in enumerate(zip(files, ids, strict=True))
        for b, ib in zip(files[i + 1 :], ids[i + 1 :], strict=True)
        if ia not in ("-1", "0000") and ib not in ("-1", "0000")
    ]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    assert main(["calibrate", str(trained_run), "--pairs", str(pairs), "--no-exports"]) == 0
    table = Embedder.load(trained_run).calibration
    assert table.source == f"pairs file {pairs}"
    assert table.num_positive + table.num_negative == len(rows)
    # an export after a pairs calibration measures the artefact on the same pairs
    assert main(["export", str(trained_run), "--no-accuracy-check"]) == 0
    exported = read_onnx_info(trained_run / "model.onnx").calibration
    assert exported.source == table.source and exported.measured_on == "onnxruntime fp32"
    capsys.readouterr()


def test_export_options_refused_in_one_line(trained_run, capsys):
    cases = [
        (["--precision", "int8", "--no-accuracy-check"], "not allowed for INT8"),
        (["--precision", "int8", "--fp16"], "--fp16 contradicts --precision int8"),
        (["--accuracy-control"], "accuracy_control applies to --format openvino"),
        (["--max-drop", "-1"], "max_drop = -1.0 is not valid"),
        (["--format", "openvino", "--out", str(trained_run / "m.onnx")], "must be written to a"),
    ]
    for extra, message in cases:
        assert main(["export", str(trained_run), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    assert not [n for n in _files(trained_run) if n.endswith((".onnx", ".xml"))]
