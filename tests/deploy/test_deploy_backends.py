"""PyTorch, onnxruntime and OpenVINO behind one Embedder: same crops, same embeddings, same
rank-1; ``embed_frames`` for trackers; OpenVINO metadata checked against its graph."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_helpers import IMG_H, IMG_W
from PIL import Image

from reidkit.app.evaluate import evaluate_target
from reidkit.app.export import export_run
from reidkit.deploy.artefact import ExportSpec, export_artefact
from reidkit.deploy.embedder import Embedder
from reidkit.deploy.openvino_ir import read_ir, save_ir, set_rt_metadata
from reidkit.utils.errors import DataError, ExportError


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_backends_agree_on_a_trained_run(trained_run):
    onnx_file = export_run(trained_run, accuracy_check=False, num_images=2, verbose=False)
    xml_file = export_run(
        trained_run, fmt="openvino", accuracy_check=False, num_images=2, verbose=False
    )
    data = Path(torch.load(trained_run / "best.pth", weights_only=True)["config"]["batches_dir"])
    query = sorted(data.glob("query/*.jpg"))
    gallery = sorted(data.glob("bounding_box_test/*.jpg"))
    gallery = [g for g in gallery if not g.name.startswith(("-1", "0000"))]
    ranks, feats = {}, {}
    for name, path in (("pytorch", trained_run), ("onnx", onnx_file), ("openvino", xml_file)):
        emb = Embedder.load(path, threads=1)
        q, g = _unit(emb.embed(query)), _unit(emb.embed(gallery))
        feats[name] = np.concatenate([q, g])
        ranks[name] = (q @ g.T).argmax(1).tolist()
    for name in ("onnx", "openvino"):
        cos = np.sum(feats[name] * feats["pytorch"], axis=1)
        assert cos.min() >= 0.999, name
        assert ranks[name] == ranks["pytorch"], name
    # `reidkit eval` takes the OpenVINO file like the ONNX one (config.json beside it)

    scores = [evaluate_target(f, device="cpu")["mAP"] for f in (onnx_file, xml_file)]
    assert scores[0] == pytest.approx(scores[1], abs=1e-3)


def _smooth(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(base).resize((w, h), Image.BILINEAR))


@pytest.fixture(scope="module")
def embedders(small_model, tmp_path_factory) -> dict[str, Embedder]:
    """The same small model behind all three backends (raw uint8 crops in for the exported
    ones: resize + normalise inside the graph)."""
    folder = tmp_path_factory.mktemp("backends")
    out = {"pytorch": Embedder.from_model(small_model, IMG_H, IMG_W, batch_size=7)}
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        spec = ExportSpec(format=fmt, preprocess="uint8-nhwc")
        path = folder / f"m{suffix}"
        export_artefact(small_model, path, IMG_H, IMG_W, spec, num_images=2, verbose=False)
        out[fmt] = Embedder.load(path, threads=1, batch_size=7)
    return out


def _streams(n_frames: int = 4, n_boxes: int = 10):
    """Frames of different sizes and 10 valid boxes each (float coordinates)."""
    rng = np.random.default_rng(5)
    frames, boxes = [], []
    for i in range(n_frames):
        h, w = 120 + 16 * i, 160 - 8 * i
        frames.append(_smooth(h, w, i))
        x1, y1 = rng.uniform(0, w - 40, n_boxes), rng.uniform(0, h - 60, n_boxes)
        bw, bh = rng.uniform(12, 40, n_boxes), rng.uniform(20, 60, n_boxes)
        boxes.append(np.stack([x1, y1, x1 + bw, y1 + bh], 1))
    return frames, boxes


@pytest.mark.parametrize("backend", ["pytorch", "onnx", "openvino"])
def test_embed_frames_equals_one_crop_at_a_time(embedders, backend):
    emb = embedders[backend]
    frames, boxes = _streams()
    result = emb.embed_frames(frames, boxes, max_batch=16)
    assert len(result) == 4 and all(v.all() for v in result.valid)
    for i, frame in enumerate(frames):
        assert result.embeddings[i].shape == (10, emb.embedding_dim)
        for j, (x1, y1, x2, y2) in enumerate(boxes[i]):
            crop = frame[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))]
            one = _unit(emb.embed([crop])[0])
            np.testing.assert_allclose(result.embeddings[i][j], one, atol=2e-5)


def test_embed_frames_same_on_every_backend(embedders):
    frames, boxes = _streams(3, 6)
    rows = {name: e.embed_frames(frames, boxes).concatenated()[0] for name, e in embedders.items()}
    for name in ("onnx", "openvino"):
        cos = np.sum(rows[name] * rows["pytorch"], axis=1)
        assert cos.min() >= 0.9999, name


def test_embed_frames_clips_and_masks_bad_boxes(embedders):
    emb = embedders["onnx"]
    frame = _smooth(100, 80, 1)
    boxes = np.array(
        [
            [-20.0, -10.0, 30.0, 50.0],  # half outside: clipped to frame[0:50, 0:30]
            [10.0, 10.0, 10.0, 40.0],  # zero width
            [5.0, 5.0, 9.0, 9.0],  # 4x4: smaller than 8 pixels
            [200.0, 200.0, 260.0, 280.0],  # outside the frame
            [np.nan, 0.0, 20.0, 20.0],  # not a number
            [40.0, 60.0, 20.0, 20.0],  # inverted
            [60.5, 70.2, 100.0, 130.0],  # runs off the bottom-right corner
        ]
    )
    out = emb.embed_frames([frame, frame], [boxes, np.zeros((0, 4))])
    assert out.valid[0].tolist() == [True, False, False, False, False, False, True]
    assert out.embeddings[1].shape == (0, emb.embedding_dim) and out.valid[1].shape == (0,)
    assert not out.embeddings[0][~out.valid[0]].any()  # invalid boxes: zero rows
    assert out.boxes[0][0].tolist() == [0, 0, 30, 50] and out.boxes[0][6].tolist() == [
        60,
        70,
        80,
        100,
    ]
    np.testing.assert_allclose(
        out.embeddings[0][0], _unit(emb.embed([frame[0:50, 0:30]])[0]), atol=2e-5
    )
    np.testing.assert_allclose(
        out.embeddings[0][6], _unit(emb.embed([frame[70:100, 60:80]])[0]), atol=2e-5
    )
    # OpenCV frames are BGR: bgr=True flips the channels of each crop
    bgr = emb.embed_frames([np.ascontiguousarray(frame[:, :, ::-1])], [boxes[:1]], bgr=True)
    np.testing.assert_allclose(bgr.embeddings[0][0], out.embeddings[0][0], atol=1e-6)


def test_embed_frames_bad_arguments(embedders):
    emb = embedders["pytorch"]
    frame = _smooth(64, 64, 0)
    with pytest.raises(DataError, match="2 frames but 1 box lists"):
        emb.embed_frames([frame, frame], [[[0, 0, 20, 20]]])
    with pytest.raises(DataError, match=r"frames\[1\]: a float32 array"):
        emb.embed_frames([frame, frame.astype(np.float32)], [[], []])
    with pytest.raises(DataError, match=r"boxes\[0\]: shape \(1, 3\) is not \(n, 4\)"):
        emb.embed_frames([frame], [[[0, 0, 20]]])


def test_openvino_metadata_checked_against_graph(embedders, tmp_path):
    path = embedders["openvino"].name
    model, info = read_ir(path)
    set_rt_metadata(model, {"input_format": "float-nchw"})  # the graph takes raw uint8 crops
    save_ir(model, tmp_path / "lie.xml")
    with pytest.raises(ExportError, match="reidkit metadata disagrees with the graph") as err:
        Embedder.load(tmp_path / "lie.xml")
    assert "\n" not in str(err.value)
    set_rt_metadata(model, {"input_format": "uint8-nhwc", "embedding_dim": "7"})
    save_ir(model, tmp_path / "dim.xml")
    with pytest.raises(ExportError, match="output width 32 but embedding_dim 7"):
        Embedder.load(tmp_path / "dim.xml")
    set_rt_metadata(model, {"embedding_dim": "32", "distance": "os.system"})
    save_ir(model, tmp_path / "code.xml")
    with pytest.raises(ExportError, match="distance='os.system'"):
        Embedder.load(tmp_path / "code.xml")
    (tmp_path / "nobin.xml").write_text((tmp_path / "code.xml").read_text())
    with pytest.raises(ExportError, match="weights file nobin.bin is missing"):
        Embedder.load(tmp_path / "nobin.xml")
    assert info.input_format == "uint8-nhwc"


def test_extract_with_openvino_file(embedders, image_dir, tmp_path):
    from reidkit.deploy.extract import extract
    from reidkit.deploy.features_io import load_features

    feats = {}
    for name in ("onnx", "openvino"):
        out = tmp_path / f"{name}.npz"
        extract(embedders[name].name, image_dir, out, threads=1, progress=False)
        feats[name] = load_features(out).feats
    np.testing.assert_allclose(feats["openvino"], feats["onnx"], atol=1e-4)


def test_missing_openvino_extra_is_one_line(embedders, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the package were not installed
    with pytest.raises(ExportError, match=r"pip install 'reidkit\[openvino\]'") as err:
        Embedder.load(embedders["openvino"].name)
    assert "\n" not in str(err.value)
