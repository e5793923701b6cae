"""ONNX export: parity with onnxruntime, metadata, atomic writes, one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from deploy_helpers import IMG_H, IMG_W, make_run, make_small_model
from onnx import TensorProto, helper

from reidkit.deploy.export import check_parity, export_onnx
from reidkit.deploy.onnx_meta import read_onnx_info
from reidkit.deploy.runtime import create_session
from reidkit.utils.errors import CheckpointError, ExportError


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def test_export_parity_resnet_reid_model(tiny_model, image_dir, tmp_path):
    out = tmp_path / "m.onnx"
    report = export_onnx(tiny_model, out, IMG_H, IMG_W, images_dir=image_dir)
    assert out.is_file() and report.path == out
    assert report.max_abs <= 1e-4 and report.min_cosine >= 0.9999
    assert report.num_checked == 8 + 6  # a random batch of 8 + six real images
    assert report.info.embedding_dim == tiny_model.embedding_dim == 512
    assert "max abs diff" in report.summary()
    # dynamic batch: any batch size runs and matches PyTorch
    sess = create_session(out)
    x = torch.randn(3, 3, IMG_H, IMG_W)
    got = sess.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        ref = tiny_model(x).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert sess.run(None, {"images": x[:1].numpy()})[0].shape == (1, 512)
    # the graph passes the checker, has inferred shapes and carries our metadata
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 512
    info = read_onnx_info(out)
    assert (info.img_h, info.img_w, info.input_format) == (64, 32, "float-nchw")
    assert info.precision == "fp32" and not info.l2_normalized
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_check_parity_detects_other_weights(small_model, tmp_path):
    out = tmp_path / "m.onnx"
    export_onnx(small_model, out, IMG_H, IMG_W, num_images=2)
    stats = check_parity(small_model, out, IMG_H, IMG_W, num_images=4)
    assert stats["max_abs"] <= 1e-4 and stats["min_cosine"] >= 0.9999
    with pytest.raises(ExportError, match="onnxruntime differs from PyTorch") as err:
        check_parity(make_small_model(seed=1), out, IMG_H, IMG_W, num_images=4)
    assert str(out) in _one_line(err)


class _BatchBranch(torch.nn.Module):
    """Python control flow on the batch size: a trace freezes one branch, so parity fails."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3))
        return pooled if x.shape[0] == 2 else pooled * 2.0


def test_failed_parity_writes_nothing(tmp_path):
    out = tmp_path / "bad.onnx"
    out.write_bytes(b"previous")
    with pytest.raises(ExportError, match="onnxruntime differs from PyTorch") as err:
        export_onnx(_BatchBranch(), out, IMG_H, IMG_W, exporter="torchscript")
    _one_line(err)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


def test_export_rejects_bad_options_and_training_outputs(small_model, tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="opset = 5") as err:
        export_onnx(small_model, out, IMG_H, IMG_W, opset=5)
    _one_line(err)
    with pytest.raises(ExportError, match="preprocess = 'rgb'"):
        export_onnx(small_model, out, IMG_H, IMG_W, preprocess="rgb")
    with pytest.raises(ExportError, match="image size 0x32"):
        export_onnx(small_model, out, 0, IMG_W)

    class Dict(torch.nn.Module):
        def forward(self, x):
            return {"logits": x.mean((2, 3))}

    with pytest.raises(ExportError, match="a dict with keys") as err:
        export_onnx(Dict(), out, IMG_H, IMG_W)
    _one_line(err)
    assert not out.exists()


def _foreign_onnx(path: Path) -> None:
    """A valid ONNX model that is not ours: global average pooling to (B, 3)."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, IMG_H, IMG_W])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 3])
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    node = helper.make_node("ReduceMean", ["input", "axes"], ["output"], keepdims=0)
    graph = helper.make_graph([node], "foreign", [x], [y], initializer=[axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def test_corrupt_and_foreign_onnx_files(small_model, tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage-not-a-protobuf" * 10)
    with pytest.raises(ExportError, match="not a valid ONNX file") as err:
        check_parity(small_model, corrupt, IMG_H, IMG_W)
    assert str(corrupt) in _one_line(err)
    with pytest.raises(ExportError, match="not found"):
        check_parity(small_model, tmp_path / "missing.onnx", IMG_H, IMG_W)
    foreign = tmp_path / "foreign.onnx"
    _foreign_onnx(foreign)
    with pytest.raises(ExportError, match="not an ONNX model exported by reidkit") as err:
        read_onnx_info(foreign)
    _one_line(err)
    with pytest.raises(ExportError, match=r"outputs have shape \(8, 3\)") as err:
        check_parity(small_model, foreign, IMG_H, IMG_W)
    _one_line(err)


def _cli(argv: list[str]) -> int:
    from reidkit.app.commands.deploy import register

    parser = argparse.ArgumentParser(prog="reidkit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_export_run_folder_and_checkpoint(tmp_path, image_dir, capsys):
    run = tmp_path / "runs" / "r1"
    make_run(run, image_dir)
    # a folder of loose images is no query/gallery: parity only, and the log says why
    assert _cli(["export", str(run), "--images", str(image_dir)]) == 0
    out = capsys.readouterr().out
    assert "vs PyTorch: max abs" in out and "no query/gallery accuracy check" in out
    with pytest.raises(ExportError, match="pass --no-accuracy-check") as err:
        _cli(["export", str(run), "--precision", "int8"])
    _one_line(err)
    assert _cli(["export", str(run), "--images", str(image_dir), "--no-accuracy-check"]) == 0
    assert "no query/gallery accuracy check" not in capsys.readouterr().out
    info = read_onnx_info(run / "model.onnx")
    assert info.backbone == "resnet18" and info.distance == "cosine"
    assert len(info.config_sha256) == 64 and info.embedding_dim == 512
    # a checkpoint path with an explicit output and the last.pth fallback
    from reidkit.app.export import export_run
    from reidkit.models.checkpoint import resolve_checkpoint

    only_last = tmp_path / "runs" / "r2"
    ckpt = make_run(only_last, image_dir, name="last.pth")
    assert resolve_checkpoint(only_last) == ckpt
    out = export_run(ckpt, tmp_path / "x.onnx", num_images=2, verbose=False, accuracy_check=False)
    assert out == tmp_path / "x.onnx" and out.is_file()


def test_export_run_missing_or_corrupt_checkpoint(tmp_path):
    from reidkit.app.export import export_run

    with pytest.raises(CheckpointError, match="no such run folder") as err:
        export_run(tmp_path / "nope")
    _one_line(err)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no best.pth or last.pth"):
        export_run(tmp_path / "empty")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as err:
        export_run(bad)
    assert str(bad) in _one_line(err)
    assert not (tmp_path / "model.onnx").exists()
