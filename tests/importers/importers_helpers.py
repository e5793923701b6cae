"""Helpers of the importer tests: test images, fast-reid recipe files, running the third-party
harness in a subprocess, and embedding with an imported reidkit run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

HARNESS = Path(__file__).with_name("source_harness.py")
IMG_H, IMG_W = 64, 32
TOLERANCE = 1e-4  # max abs difference of fp32 embeddings (scaled: see max_abs_diff)

_IBN = "MODEL:\n  BACKBONE:\n    WITH_IBN: True\n"
# The model and test-pipeline parts of fast-reid's model-zoo recipes (configs/Base-bagtricks.yml,
# Base-AGW.yml, Base-SBS.yml and their -ibn variants), written as fast-reid users have them.
RECIPES = {
    "Base-bagtricks.yml": """
MODEL:
  META_ARCHITECTURE: Baseline
  BACKBONE:
    NAME: build_resnet_backbone
    NORM: BN
    DEPTH: 50x
    LAST_STRIDE: 1
    FEAT_DIM: 2048
    WITH_IBN: False
    PRETRAIN: True
  HEADS:
    NAME: EmbeddingHead
    NORM: BN
    WITH_BNNECK: True
    POOL_LAYER: GlobalAvgPool
    NECK_FEAT: before
    CLS_LAYER: Linear
INPUT:
  SIZE_TRAIN: [ 256, 128 ]
  SIZE_TEST: [ 256, 128 ]
""",
    "Base-AGW.yml": """
_BASE_: Base-bagtricks.yml
MODEL:
  BACKBONE:
    WITH_NL: True
  HEADS:
    POOL_LAYER: GeneralizedMeanPoolingP
""",
    "Base-SBS.yml": """
_BASE_: Base-bagtricks.yml
MODEL:
  BACKBONE:
    WITH_NL: True
  HEADS:
    NECK_FEAT: after
    POOL_LAYER: GeneralizedMeanPoolingP
    CLS_LAYER: CircleSoftmax
    SCALE: 64
    MARGIN: 0.35
INPUT:
  SIZE_TRAIN: [ 384, 128 ]
  SIZE_TEST: [ 384, 128 ]
""",
    "bagtricks_R50-ibn.yml": "_BASE_: Base-bagtricks.yml\n" + _IBN,
    "sbs_R50-ibn.yml": "_BASE_: Base-SBS.yml\n" + _IBN,
    "sbs_R101-ibn.yml": "_BASE_: sbs_R50-ibn.yml\nMODEL:\n  BACKBONE:\n    DEPTH: 101x\n",
}
# reidkit preset -> the recipe file fast-reid builds it from
PRESET_FILES = {
    "bot_r50": "Base-bagtricks.yml",
    "bot_r50_ibn": "bagtricks_R50-ibn.yml",
    "agw_r50": "Base-AGW.yml",
    "sbs_r50": "Base-SBS.yml",
    "sbs_r50_ibn": "sbs_R50-ibn.yml",
    "sbs_r101_ibn": "sbs_R101-ibn.yml",
}


def write_recipes(folder: Path) -> Path:
    """fast-reid's recipe files in ``folder`` (returned)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in RECIPES.items():
        (folder / name).write_text(text.lstrip())
    return folder


def write_images(folder: Path, count: int = 5, seed: int = 0) -> list[str]:
    """``count`` PNG crops of exactly IMG_H x IMG_W: smooth colour fields plus pixel noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        coarse = torch.from_numpy(rng.random((1, 3, 8, 4), dtype=np.float32))
        smooth = torch.nn.functional.interpolate(coarse, size=(IMG_H, IMG_W), mode="bilinear")
        pixels = smooth[0].permute(1, 2, 0).numpy() * 200 + rng.random((IMG_H, IMG_W, 3)) * 55
        path = folder / f"crop{i}.png"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def run_harness(site: Path, jobs: list[dict], workdir: Path) -> list[dict]:
    """Run ``jobs`` in one subprocess that sees only the third-party site; their results."""
    spec = workdir / "jobs.json"
    spec.write_text(json.dumps({"jobs": jobs}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(HARNESS), str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = []
    for job in jobs:
        out = Path(job["out"])
        result = json.loads((out / "result.json").read_text())
        result["embeddings"] = np.load(out / "embeddings.npy")
        results.append(result)
    return results


def import_run(source: str, checkpoint: str, out: Path, *overrides: str) -> Path:
    """``reidkit import SOURCE CHECKPOINT overrides --out out`` through the CLI entry point."""
    from reidkit.cli import main

    status = main(["import", source, checkpoint, *overrides, "--out", str(out)])
    assert status == 0
    return out


def reidkit_embeddings(run: Path, images: list[str]) -> np.ndarray:
    """Embeddings of image files by reidkit's pipeline for ``run``: the Embedder (decode,
    resize, normalisation, model) or, when the run's ``data.flip_test`` is on, the evaluation's
    ``embed_batch`` with flipping on the same pre-processed batch (what ``reidkit eval`` does).
    """
    from reidkit.deploy import Embedder
    from reidkit.deploy.preprocess import load_image, preprocess_images
    from reidkit.evaluation.features import embed_batch
    from reidkit.models.checkpoint import restore

    model, cfg = restore(run)
    if not cfg.data.flip_test:
        return Embedder.from_checkpoint(run).embed(images)
    d = cfg.data
    batch = preprocess_images(
        [load_image(p) for p in images],
        cfg.img_h,
        cfg.img_w,
        d.mean,
        d.std,
        pixel_range=d.pixel_range,
    )
    with torch.inference_mode():
        return embed_batch(model, batch, flip=True).numpy()


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of ``a`` from the reference ``b``, each row in units of the
    reference row's L2 norm when that is over 1 (inf when the shapes differ).

    Scaled because the frameworks and reidkit may run a convolution in another memory layout
    (reidkit infers in channels_last), which changes the order of float32 sums: the rounding
    then grows with the features' size (random BatchNorm statistics make them large here).
    """
    if a.shape != b.shape:
        return float("inf")
    a2, b2 = a.reshape(len(a), -1), b.reshape(len(b), -1)
    scale = np.maximum(1.0, np.linalg.norm(b2, axis=1, keepdims=True))
    return float((np.abs(a2 - b2) / scale).max())
