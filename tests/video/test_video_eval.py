"""Tracklet-level evaluation equals a hand-pooled computation through ``evaluate_reid``, and
``reidkit eval RUN --data DIR --tracklets`` scores a labelled crops folder by tracklets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from video_helpers import make_crops_folder, make_duke_video

from reidkit.config import validate_config
from reidkit.data.augment import normalize_uint8
from reidkit.data.build import load_dataset
from reidkit.data.clips import eval_clips
from reidkit.data.decode import decode_resized
from reidkit.evaluation import evaluate_reid, get_evaluator
from reidkit.evaluation.builtins import video_evaluate
from reidkit.evaluation.video import tracklet_features
from reidkit.models import ReidModel
from reidkit.utils.errors import ConfigError, DataError


def _cfg(root: Path, **video) -> object:
    return validate_config(
        {
            "batches_dir": str(root),
            "img_h": 32,
            "img_w": 16,
            "model_params": {"backbone": "resnet18"},
            "evaluation_params": {"ranks": [1, 2]},
            "video": {"seq_len": 3, **video},
            "data": {"num_workers": 0, "test_batch_size": 5},
            "progress": False,
        }
    )


def _model(temporal: str) -> ReidModel:
    torch.manual_seed(1)
    model = ReidModel("resnet18", 4, temporal=temporal)
    if temporal == "attention":
        with torch.no_grad():  # weights that differ from the average
            model.temporal.score[-1].weight.normal_(0, 0.5)
    return model.eval()


def _frames(source, paths) -> torch.Tensor:
    """The frames as the test loader prepares them (decode, resize, normalise)."""
    imgs = torch.stack([decode_resized(source.read(p), 32, 16, p) for p in paths])
    return normalize_uint8(imgs)


def _by_hand(model, ds, split, pool, seq_len=3, clips=False) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for t in getattr(ds, split):
            x = _frames(ds.source, t.frames)
            if clips:  # consecutive clips of seq_len through the model's own aggregation
                parts = [model(x[c][None])[0] for c in eval_clips(len(t), seq_len, "all")]
                feats = torch.stack(parts)
            else:
                feats = model(x)
            out.append(feats.mean(0) if pool == "avg" else feats.max(0).values)
    return torch.stack(out)


@pytest.fixture(scope="module")
def duke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_duke_video(tmp_path_factory.mktemp("duke"), train_ids=(1, 2), frames=7)


@pytest.mark.parametrize(
    ("temporal", "pool"), [("avg", "avg"), ("avg", "max"), ("attention", "avg")]
)
def test_tracklet_eval_equals_hand_pooled_features(duke: Path, temporal: str, pool: str) -> None:
    cfg = _cfg(duke, pool=pool)
    ds = load_dataset(duke)
    model = _model(temporal)
    clips = temporal == "attention"
    qf, gf = (_by_hand(model, ds, s, pool, clips=clips) for s in ("query", "gallery"))
    ids = [
        torch.tensor([getattr(t, k) for t in getattr(ds, s)])
        for s in ("query", "gallery")
        for k in ("pid", "camid")
    ]
    expected = evaluate_reid(qf, gf, ids[0], ids[2], ids[1], ids[3], ranks=(1, 2))
    metrics = video_evaluate(cfg, model, dataset=ds, device="cpu")
    assert metrics == pytest.approx(expected, abs=1e-6)
    assert metrics["num_queries"] == 3
    # the features themselves, and the same numbers under the name market_evaluate
    from reidkit.data import build_test_loader

    make = lambda recs: build_test_loader(cfg, recs, ds.source, "cpu")  # noqa: E731
    got = tracklet_features(model, ds.query, make, "cpu", seq_len=3, pool=pool)
    assert torch.allclose(got.feats, qf, atol=1e-4)
    market = get_evaluator("market_evaluate", [])
    assert market(cfg, model, dataset=ds, device="cpu") == pytest.approx(metrics)


def test_evenly_uses_seq_len_frames(duke: Path) -> None:
    ds = load_dataset(duke)
    cfg = _cfg(duke, test_sampling="evenly", seq_len=2)
    model = _model("avg")
    from reidkit.data import build_test_loader

    seen: list[int] = []

    def make(recs):
        seen.append(len(recs))
        return build_test_loader(cfg, recs, ds.source, "cpu")

    tracklet_features(model, ds.query, make, "cpu", seq_len=2, sampling="evenly")
    assert seen == [2 * len(ds.query)]  # 2 of the 7 frames of each tracklet


def test_bad_pool_is_one_line(duke: Path) -> None:
    ds = load_dataset(duke)
    with pytest.raises(ConfigError, match=r"--pool = 'median' is not valid \(valid: avg, max\)"):
        tracklet_features(_model("avg"), ds.query, lambda r: r, "cpu", pool="median")
    with pytest.raises(DataError, match="no tracklets to embed"):
        tracklet_features(_model("avg"), [], lambda r: r, "cpu")


def _run_folder(root: Path, data: Path) -> Path:
    """A run folder holding an untrained ResNet-18 checkpoint at 32x16."""
    from reidkit.config import save_config
    from reidkit.models import build_model
    from reidkit.models.checkpoint import save_checkpoint

    cfg = _cfg(data)
    torch.manual_seed(0)
    model = build_model(cfg, 4)
    root.mkdir(parents=True)
    save_config(cfg, root / "config.json")
    save_checkpoint(
        {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": 4, "epoch": 1},
        root / "best.pth",
    )
    return root


def _reidkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reidkit", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_eval_tracklets_on_a_crops_folder(tmp_path: Path) -> None:
    from reidkit.app.evaluate import evaluate_target

    crops = make_crops_folder(tmp_path / "vtest_crops", frames=6, train=False)
    run = _run_folder(tmp_path / "run", crops)
    evaluate_target(run, data=crops, device="cpu")  # image level, as `reidkit eval` does
    track = _reidkit(
        "eval", str(run), "--data", str(crops), "--tracklets", "--pool", "max", "--device", "cpu"
    )
    assert track.returncode == 0, track.stderr
    image_json = json.loads((run / "eval_vtest_crops.json").read_text())
    track_json = json.loads((run / "eval_vtest_crops_tracklets.json").read_text())
    assert image_json["metrics"]["num_queries"] == 12  # one per query image
    assert track_json["metrics"]["num_queries"] == 4  # one per query tracklet
    assert track_json["evaluator"] == "video_evaluate" and track_json["pool"] == "max"
    from reidkit.models.checkpoint import restore

    model, cfg = restore(run)
    cfg = cfg.model_copy(update={"video": cfg.video.model_copy(update={"pool": "max"})})
    ds = load_dataset(crops, "tracklets")
    expected = video_evaluate(cfg, model, dataset=ds, device="cpu")
    assert track_json["metrics"] == pytest.approx(expected, abs=1e-6)
    assert "mAP" in track.stdout
    images = load_dataset(crops)  # video_evaluate groups an image dataset itself
    assert video_evaluate(cfg, model, dataset=images, device="cpu") == pytest.approx(expected)


def test_cli_eval_tracklets_errors(tmp_path: Path, capsys) -> None:
    import numpy as np

    from reidkit.cli import main

    feats = tmp_path / "f.npz"
    np.savez(
        feats,
        qf=np.zeros((1, 2)),
        gf=np.zeros((1, 2)),
        q_pids=[1],
        g_pids=[1],
        q_camids=[0],
        g_camids=[1],
    )
    assert main(["eval", str(feats), "--tracklets"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --tracklets applies to models, not to saved features (f.npz)"
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(feats), "--tracklets", "--pool", "median"])
    assert exit_info.value.code == 2 and "invalid choice: 'median'" in capsys.readouterr().err
