"""Every backbone family exports with parity; raw-crop graphs, fp16, metadata; the Embedder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from deploy_helpers import IMG_H, IMG_W, make_model, make_run, write_images
from PIL import Image

from reidkit.deploy.embedder import Embedder
from reidkit.deploy.export import export_onnx
from reidkit.deploy.onnx_meta import read_onnx_info
from reidkit.utils.errors import DataError, ExportError


def _tiny_vit() -> torch.nn.Module:
    """The registry's ViT backbone class around a 2-layer, 32-wide torchvision ViT."""
    import torchvision

    from reidkit.models import ReidModel
    from reidkit.models.backbones.vit import ViTBackbone

    torch.manual_seed(0)
    net = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
    )
    return ReidModel(ViTBackbone(net), 5).eval()


FAMILIES = {
    "mobilenet": lambda: make_model("mobilenet_v2"),
    "osnet": lambda: make_model("osnet_x0_25"),
    "vit": _tiny_vit,
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_backbone_family_exports_with_parity(family, tmp_path):
    model = FAMILIES[family]()
    report = export_onnx(model, tmp_path / "m.onnx", IMG_H, IMG_W, num_images=2)
    assert report.max_abs <= 1e-4 and report.min_cosine >= 0.9999
    assert report.info.embedding_dim == model.embedding_dim


def _registered_backbones() -> list[str]:
    from reidkit.models import backbone_names

    return backbone_names()


@pytest.mark.slow
@pytest.mark.parametrize("name", _registered_backbones())
def test_every_registered_backbone_exports(name, tmp_path):
    """One case per backbone, so xdist spreads the big ones (ViT-B, ResNeXt-101) over workers."""
    from reidkit.models import ReidModel

    torch.manual_seed(0)
    model = ReidModel(name, 3).eval()
    out = tmp_path / f"{name}.onnx"
    try:
        export_onnx(model, out, IMG_H, IMG_W, num_images=2)
    except ExportError as e:
        pytest.fail(f"{name}: {e}")
    finally:  # up to 350 MB each (ViT-B, ResNeXt-101): pytest keeps three suites' tmp folders
        out.unlink(missing_ok=True)


def _crops() -> list[np.ndarray]:
    """Raw crops larger and smaller than the model input, two of the same size."""
    rng = np.random.default_rng(3)
    sizes = [(150, 70), (40, 20), (150, 70), (64, 32), (97, 41)]
    smooth = [rng.integers(0, 256, (h // 6 + 2, w // 6 + 2, 3)).astype(np.uint8) for h, w in sizes]
    return [
        np.asarray(Image.fromarray(s).resize((w, h), Image.BILINEAR))
        for s, (h, w) in zip(smooth, sizes, strict=True)
    ]


def test_raw_uint8_crops_match_pytorch_path(small_model, tmp_path):
    crops = _crops()
    torch_path = Embedder.from_model(small_model, IMG_H, IMG_W, l2norm=True)
    expected = torch_path.embed(crops)
    # default: antialiased resize in the graph (as the test pipeline), dynamo exporter
    nhwc = tmp_path / "nhwc.onnx"
    report = export_onnx(small_model, nhwc, IMG_H, IMG_W, preprocess="uint8-nhwc", l2norm=True)
    assert report.info.exporter == "dynamo" and report.opset >= 18
    emb = Embedder.from_onnx(nhwc, threads=1, batch_size=2)
    got = emb.embed(crops)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # raw session use, as a deployer would: one uint8 crop straight in
    from reidkit.deploy.runtime import create_session

    sess = create_session(nhwc)
    raw = sess.run(None, {"images": crops[0][None]})[0]
    np.testing.assert_allclose(raw[0], expected[0], atol=1e-5)
    # NCHW input without antialiasing goes through the TorchScript exporter
    nchw = tmp_path / "nchw.onnx"
    rep2 = export_onnx(small_model, nchw, IMG_H, IMG_W, preprocess="uint8-nchw", antialias=False)
    assert rep2.info.exporter == "torchscript"
    plain = Embedder.from_model(small_model, IMG_H, IMG_W, antialias=False).embed(crops)
    np.testing.assert_allclose(Embedder.from_onnx(nchw).embed(crops), plain, atol=1e-4)
    info = read_onnx_info(nhwc)
    assert info.input_format == "uint8-nhwc" and info.l2_normalized and info.antialias
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)


def test_fp16_export_matches_fp32(small_model, tmp_path):
    out = tmp_path / "half.onnx"
    report = export_onnx(small_model, out, IMG_H, IMG_W, fp16=True)
    assert report.info.precision == "fp16" and report.min_cosine >= 0.999
    crops = _crops()
    ref = Embedder.from_model(small_model, IMG_H, IMG_W).embed(crops)
    got = Embedder.from_onnx(out).embed(crops)
    cos = np.sum(ref * got, 1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() >= 0.999
    assert not np.array_equal(got, ref)  # it really computed in half precision


def test_embedder_inputs_and_checkpoint(tmp_path, image_dir):
    run = tmp_path / "run"
    make_run(run, image_dir)
    from reidkit.app.export import export_run

    onnx_path = export_run(run, num_images=2, verbose=False, accuracy_check=False)
    files = sorted(image_dir.iterdir())[:3]
    pt = Embedder.from_checkpoint(run, batch_size=2)
    ox = Embedder.from_onnx(onnx_path)
    assert pt.distance == ox.distance == "cosine" and pt.embedding_dim == ox.embedding_dim
    a = pt.embed([str(f) for f in files])
    mixed = [files[0], Image.open(files[1]), np.asarray(Image.open(files[2]).convert("RGB"))]
    np.testing.assert_allclose(ox.embed(mixed), a, atol=1e-4)
    assert ox.embed(files[0]).shape == (1, pt.embedding_dim)
    import reidkit

    assert reidkit.Embedder is Embedder


def test_embedder_bad_inputs(small_model, tmp_path):
    emb = Embedder.from_model(small_model, IMG_H, IMG_W)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(DataError, match="not a readable image") as err:
        emb.embed([text])
    assert str(text) in str(err.value) and "\n" not in str(err.value)
    small = write_images(tmp_path / "s", 1)[0]
    Image.open(small).resize((4, 6)).save(small)
    with pytest.raises(DataError, match="too small"):
        emb.embed(small)
    with pytest.raises(DataError, match="not found"):
        emb.embed(tmp_path / "missing.png")
    with pytest.raises(DataError, match="dtype float32"):
        emb.embed(np.zeros((64, 32, 3), np.float32))
    with pytest.raises(DataError, match="cannot embed a int"):
        emb.embed(5)
    corrupt = tmp_path / "bad.onnx"
    corrupt.write_bytes(b"\x00\x01garbage" * 20)
    with pytest.raises(ExportError, match="not a valid ONNX file"):
        Embedder.from_onnx(corrupt)
    with pytest.raises(ExportError, match="provider 'NoSuchExecutionProvider'"):
        from reidkit.deploy.runtime import create_session

        export_onnx(small_model, tmp_path / "ok.onnx", IMG_H, IMG_W, num_images=1)
        create_session(tmp_path / "ok.onnx", providers=["NoSuchExecutionProvider"])
