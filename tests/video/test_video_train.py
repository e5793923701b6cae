"""A video model trained end to end with ``reidkit train`` on a video layout (MARS), exported
to a single-frame ONNX file, evaluated tracklet by tracklet through onnxruntime, and
``Embedder.embed_tracklet`` on the PyTorch and onnxruntime backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from video_helpers import make_mars

from reidkit.data.build import load_dataset
from reidkit.deploy.embedder import Embedder
from reidkit.evaluation import evaluate_reid
from reidkit.utils.errors import DataError


@pytest.fixture(scope="module")
def video_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``reidkit train -c params.json`` on a tiny MARS folder (temporal attention, 2 epochs)."""
    root = tmp_path_factory.mktemp("video_run")
    data = make_mars(root / "MARS", frames=5)
    params = {
        "batches_dir": str(data),
        "working_dir": str(root / "runs"),
        "img_h": 32,
        "img_w": 16,
        "batch_size": 4,
        "epoch": 2,
        "optimizer": "adam",
        "lr": {"base_lr": 0.001},
        "model_params": {"backbone": "resnet18"},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 2},
        "evaluation_params": {"type": "market_evaluate", "ranks": [1, 2], "distance": "cosine"},
        "video": {"seq_len": 3, "temporal": "attention"},
        "data": {"num_workers": 0, "cache": "ram"},
        "progress": False,
        "device": "cpu",
    }
    (root / "params.json").write_text(json.dumps(params))
    cmd = [sys.executable, "-m", "reidkit", "train", "-c", str(root / "params.json")]
    cmd += ["--sub-working-dir", "mars_attention"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "runs" / "mars_attention"


def test_train_writes_a_video_run(video_run: Path) -> None:
    records = [json.loads(x) for x in (video_run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all("mAP" in r["eval"] for r in records)
    assert records[-1]["eval"]["num_queries"] == 3  # query tracklets, not frames
    state = torch.load(video_run / "best.pth", weights_only=True)
    assert "temporal.score.0.weight" in state["model"]
    report = json.loads((video_run / "eval.json").read_text())
    assert report["evaluator"] == "video_evaluate" and report["level"] == "tracklet"


@pytest.fixture(scope="module")
def onnx_file(video_run: Path) -> Path:
    from reidkit.app.export import export_run

    # the accuracy check scores the run's middle frames (single-frame file vs PyTorch)
    return export_run(video_run, num_images=2, verbose=False)


def _tracklet_paths(video_run: Path, split: str) -> tuple[list[list[Path]], list, list]:
    cfg = json.loads((video_run / "config.json").read_text())
    ds = load_dataset(cfg["batches_dir"])
    tracks = getattr(ds, split)
    root = Path(cfg["batches_dir"])
    return (
        [[root / f for f in t.frames] for t in tracks],
        [t.pid for t in tracks],
        [t.camid for t in tracks],
    )


def test_embed_tracklet_on_pytorch_and_onnxruntime(video_run: Path, onnx_file: Path) -> None:
    frames = _tracklet_paths(video_run, "query")[0][0]
    vectors = {}
    for name, path in (("pytorch", video_run), ("onnxruntime", onnx_file)):
        emb = Embedder.load(path, threads=1)
        v = emb.embed_tracklet(frames)
        assert v.shape == (emb.embedding_dim,) and v.dtype == np.float32
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
        each = emb.embed(frames)
        mean = each.mean(0) / np.linalg.norm(each.mean(0))
        assert np.allclose(v, mean, atol=1e-5)
        biggest = emb.embed_tracklet(frames, pool="max")
        assert np.allclose(biggest, each.max(0) / np.linalg.norm(each.max(0)), atol=1e-5)
        vectors[name] = v
        with pytest.raises(DataError, match="pool = 'sum' is not valid"):
            emb.embed_tracklet(frames, pool="sum")
        with pytest.raises(DataError, match="the tracklet has no images"):
            emb.embed_tracklet([])
    assert float(vectors["pytorch"] @ vectors["onnxruntime"]) > 0.999


def test_onnx_tracklet_eval_pools_frames_outside_the_model(
    video_run: Path, onnx_file: Path, tmp_path: Path
) -> None:
    from reidkit.app.evaluate import evaluate_target
    from reidkit.app.export import export_run

    out = tmp_path / "onnx.json"
    metrics = evaluate_target(onnx_file, device="cpu", output=out)  # video data: tracklets
    saved = json.loads(out.read_text())
    assert saved["evaluator"] == "video_evaluate" and metrics["num_queries"] == 3
    xml = export_run(video_run, fmt="openvino", accuracy_check=False, verbose=False)
    on_openvino = evaluate_target(xml, device="cpu", tracklets=True, output=tmp_path / "x.json")
    assert on_openvino == pytest.approx(metrics, abs=1e-4)
    emb = Embedder.load(video_run, threads=1)  # PyTorch, one frame at a time
    q, g = (_tracklet_paths(video_run, s) for s in ("query", "gallery"))
    qf = torch.from_numpy(np.stack([emb.embed_tracklet(t) for t in q[0]]))
    gf = torch.from_numpy(np.stack([emb.embed_tracklet(t) for t in g[0]]))
    expected = evaluate_reid(qf, gf, q[1], g[1], q[2], g[2], ranks=(1, 2), distance="cosine")
    assert metrics == pytest.approx(expected, abs=1e-4)


def test_plan_errors_before_the_run_folder(tmp_path: Path) -> None:
    from video_helpers import make_crops_folder, make_duke_video

    from reidkit.app.launch import prepare
    from reidkit.config import validate_config
    from reidkit.utils.errors import ConfigError

    base = {
        "working_dir": str(tmp_path / "runs"),
        "img_h": 32,
        "img_w": 16,
        "batch_size": 4,
        "model_params": {"backbone": "resnet18"},
        "data": {"num_workers": 0},
        "progress": False,
        "device": "cpu",
    }
    images = make_crops_folder(tmp_path / "crops")
    cfg = validate_config({**base, "batches_dir": str(images), "video": {"temporal": "attention"}})
    with pytest.raises(ConfigError, match=r"video\.temporal = 'attention' needs a video dataset"):
        prepare(cfg)
    video = make_duke_video(tmp_path / "duke")
    ev = {"type": "classification_evaluate"}
    cfg = validate_config({**base, "batches_dir": str(video), "evaluation_params": ev})
    with pytest.raises(ConfigError, match="'classification_evaluate' scores images"):
        prepare(cfg)
    assert not (tmp_path / "runs").exists()
