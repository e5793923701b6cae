"""What ``reidkit import`` refuses, in one line with exit status 2, and how it reads files:
bad SOURCE, checkpoints of other architectures or of another SOURCE, files that are not
weights, fast-reid settings reidkit cannot reproduce, an existing run folder. The checkpoints
are torchvision networks saved in torchreid's layout (its ResNets use torchvision's key
names), so these tests need neither framework."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from reidkit.cli import main
from reidkit.models.importers import build_import, read_source_checkpoint
from reidkit.models.importers.fastreid import load_fastreid_config
from reidkit.utils.errors import ReidkitError


def _torchreid_layout(net: torch.nn.Module, num_classes: int = 3) -> dict[str, torch.Tensor]:
    """A torchvision network's state dict as torchreid saves its ResNets (classifier, no fc)."""
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    torch.manual_seed(0)
    state["classifier.weight"] = torch.randn(
        num_classes, 2048 if "layer4.0.conv3.weight" in state else 512
    )
    state["classifier.bias"] = torch.zeros(num_classes)
    return state


@pytest.fixture(scope="module")
def r50_checkpoint(tmp_path_factory) -> Path:
    """torchreid's resnet50 checkpoint format: model.pth.tar with state_dict, epoch, optimizer."""
    path = tmp_path_factory.mktemp("r50") / "model.pth.tar-10"
    net = torchvision.models.resnet50(weights=None)
    torch.save({"state_dict": _torchreid_layout(net), "epoch": 10, "rank1": 0.9}, path)
    return path


def _fails(args: list[str], capsys, *expected: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


def test_bad_sources_name_the_valid_forms(r50_checkpoint, tmp_path, capsys) -> None:
    out = ["--out", str(tmp_path / "run")]
    _fails(
        ["import", "caffe:resnet", str(r50_checkpoint), *out],
        capsys,
        "SOURCE 'caffe:resnet' is not valid",
        "torchreid:<arch> (osnet_x1_0",
        "fastreid:<preset> (bot_r50",
    )
    _fails(
        ["import", "torchreid:densenet121", str(r50_checkpoint), *out],
        capsys,
        "torchreid:densenet121: not an architecture reidkit imports",
        "resnet50_fc512",
    )
    _fails(["import", "fastreid:mgn_r50", str(r50_checkpoint), *out], capsys, "is not valid")
    _fails(["import", "fastreid", str(r50_checkpoint), *out], capsys, "no config.yaml beside")
    assert not (tmp_path / "run").exists()


def test_unsupported_architecture_names_first_keys(tmp_path, capsys) -> None:
    path = tmp_path / "densenet.pth"
    torch.save({"state_dict": torchvision.models.densenet121(weights=None).state_dict()}, path)
    _fails(
        ["import", "torchreid:resnet50", str(path), "--out", str(tmp_path / "run")],
        capsys,
        "keys match nothing in torchreid:resnet50: features.conv0.weight, features.norm0.weight",
    )
    assert not (tmp_path / "run").exists()


def test_checkpoint_of_another_source(r50_checkpoint, tmp_path, capsys) -> None:
    out = ["--out", str(tmp_path / "run")]
    _fails(
        ["import", "fastreid:bot_r50", str(r50_checkpoint), *out],
        capsys,
        "match nothing in fastreid:bot_r50: conv1.weight, bn1.weight, bn1.bias",
    )
    _fails(
        ["import", "torchreid:resnet50_fc512", str(r50_checkpoint), *out],
        capsys,
        "torchreid:resnet50_fc512 expects tensors the checkpoint lacks (reidkit neck.fc.weight",
    )
    r18 = tmp_path / "r18.pth"
    torch.save(_torchreid_layout(torchvision.models.resnet18(weights=None)), r18)
    _fails(
        ["import", "torchreid:resnet50", str(r18), *out],
        capsys,
        "expects tensors the checkpoint lacks (reidkit backbone.layer1.0.conv3.weight",
    )
    resnext = tmp_path / "resnext.pth"  # same key names as a ResNet-50, other widths
    torch.save(_torchreid_layout(torchvision.models.resnext50_32x4d(weights=None)), resnext)
    _fails(
        ["import", "torchreid:resnet50", str(resnext), *out],
        capsys,
        "tensor layer1.0.conv1.weight has shape (128, 64, 1, 1)",
        "backbone.layer1.0.conv1.weight of shape (64, 64, 1, 1)",
    )


def test_files_that_are_not_weights(tmp_path, capsys) -> None:
    out = ["--out", str(tmp_path / "run")]
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    _fails(
        ["import", "torchreid:resnet50", str(tmp_path / "notes.pth"), *out],
        capsys,
        "cannot be read with torch.load(weights_only=True)",
    )
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pth")  # a whole module
    _fails(
        ["import", "torchreid:resnet50", str(tmp_path / "pickled.pth"), *out],
        capsys,
        "weights_only=True",
        "model.state_dict()",
    )
    torch.save({"epoch": 3, "note": "x"}, tmp_path / "empty.pth")
    _fails(
        ["import", "torchreid:resnet50", str(tmp_path / "empty.pth"), *out],
        capsys,
        "no state dict of tensors found (top-level keys: epoch, note)",
    )
    _fails(
        ["import", "torchreid:resnet50", str(tmp_path / "missing.pth"), *out],
        capsys,
        "checkpoint file not found",
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("MODEL:\n  BACKBONE:\n    WITH_SE: True\n", "WITH_SE: reidkit's ResNets have no SE"),
        ("MODEL:\n  META_ARCHITECTURE: MGN\n", "only Baseline"),
        ("MODEL:\n  BACKBONE:\n    NAME: build_osnet_backbone\n", "only build_resnet_backbone"),
        ("MODEL:\n  HEADS:\n    POOL_LAYER: ClipGlobalAvgPool\n", "POOL_LAYER = ClipGlobalAvgPool"),
        ("MODEL:\n  HEADS:\n    EMBEDDING_DIM: 256\n", "EMBEDDING_DIM > 0 without WITH_BNNECK"),
        ("INPUT:\n  CROP:\n    ENABLED: True\n", "does not center-crop"),
        ("INPUT:\n  SIZE_TEST: [256]\n", "needs [height, width]"),
        ("_BASE_: missing.yml\n", "missing.yml: fast-reid config file not found"),
    ],
)
def test_fastreid_settings_reidkit_does_not_reproduce(
    setting, expected, r50_checkpoint, tmp_path, capsys
) -> None:
    (tmp_path / "cfg.yml").write_text(setting)
    _fails(
        [
            "import",
            f"fastreid:{tmp_path / 'cfg.yml'}",
            str(r50_checkpoint),
            "--out",
            str(tmp_path / "run"),
        ],
        capsys,
        expected,
    )


def test_gem_exponent_below_one_is_refused(tmp_path) -> None:
    state = {"heads.pool_layer.p": torch.tensor([0.5])}
    torch.save({"model": state}, tmp_path / "m.pth")
    with pytest.raises(ReidkitError, match="GeM exponent p = 0.5000 < 1"):
        build_import("fastreid:agw_r50", tmp_path / "m.pth")


def test_run_folder_is_protected_and_overrides_checked(r50_checkpoint, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.onnx").write_bytes(b"old export")
    _fails(
        ["import", "torchreid:resnet50", str(r50_checkpoint), "--out", str(run)],
        capsys,
        "folder exists and is not empty; pass --overwrite",
    )
    _fails(
        [
            "import",
            "torchreid:resnet50",
            str(r50_checkpoint),
            "model_params.neck=bnneck",
            "--out",
            str(run),
            "--overwrite",
        ],
        capsys,
        "model_params come from the checkpoint",
    )
    args = [
        "import",
        "torchreid:resnet50",
        str(r50_checkpoint),
        "batches_dir=data/x",
        "--out",
        str(run),
        "--overwrite",
        "--drop-classifier",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "left out classifier.weight" in printed and "removed model.onnx" in printed
    assert not (run / "model.onnx").exists()
    report = json.loads((run / "import.json").read_text())
    assert {r["key"] for r in report["left_out"]} == {"classifier.weight", "classifier.bias"}
    assert len(report["mapped"]) == 318 and report["unmatched"] == []
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["batches_dir"] == "data/x" and cfg["model_params"]["last_stride"] == 2


def test_reading_unwraps_and_strips_prefixes(tmp_path) -> None:
    sd = {"a.weight": torch.ones(2), "b.bias": torch.zeros(1)}
    cases = {
        "bare.pth": sd,
        "wrapped.pth.tar": {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 1},
        "fastreid.pth": {"model": {f"module.module.{k}": v for k, v in sd.items()}, "iteration": 9},
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        ckpt = read_source_checkpoint(tmp_path / name)
        assert set(ckpt.state) == set(sd), name
    assert read_source_checkpoint(tmp_path / "wrapped.pth.tar").other_entries == ["epoch"]
    mixed = {"module.a.weight": torch.ones(2), "b.bias": torch.zeros(1)}
    torch.save(mixed, tmp_path / "mixed.pth")
    assert set(read_source_checkpoint(tmp_path / "mixed.pth").state) == set(mixed)


def test_fastreid_yaml_bases_merge_in_order(tmp_path) -> None:
    (tmp_path / "a.yml").write_text("MODEL:\n  BACKBONE:\n    DEPTH: 101x\n    WITH_IBN: True\n")
    (tmp_path / "b.yml").write_text("_BASE_: a.yml\nMODEL:\n  BACKBONE:\n    DEPTH: 50x\n")
    cfg = load_fastreid_config(tmp_path / "b.yml")
    assert cfg["MODEL.BACKBONE.DEPTH"] == "50x" and cfg["MODEL.BACKBONE.WITH_IBN"] is True
    (tmp_path / "a.yml").write_text("_BASE_: b.yml\n")
    with pytest.raises(ReidkitError, match="include each other in a loop"):
        load_fastreid_config(tmp_path / "b.yml")
