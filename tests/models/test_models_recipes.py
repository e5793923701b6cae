"""Every params file in configs/ validates and builds; each trains briefly (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reidkit.config import load_config
from reidkit.losses import build_loss
from reidkit.models import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.json"))
RECIPES = [
    "market_bot_r50",
    "market_agw_r50",
    "market_pcb_r50",
    "market_osnet",
    "market_sbs_r50_ibn",
    "seed_baseline_r50_256x128",
    "seed_baseline_pcb_r50_384x128",
]


def test_recipe_files_exist() -> None:
    names = {p.stem for p in CONFIGS}
    assert set(RECIPES) <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_validates_and_builds(path: Path) -> None:
    cfg = load_config(path, check_files=False)
    cfg = cfg.model_copy(update={"imagenet_pretrain": False})
    with torch.device("meta"):  # structure only, no weights computed
        model = build_model(cfg, num_classes=751)
    loss = build_loss(cfg, num_classes=751, feat_dim=model.feature_dim)
    assert loss.ce_weight == cfg.tri_loss_lambda_cls and model.embedding_dim > 0


def test_recipes_follow_their_papers() -> None:
    bot = load_config(CONFIGS[[p.stem for p in CONFIGS].index("market_bot_r50")], check_files=False)
    assert bot.model_params.last_stride == 1 and bot.model_params.neck == "bnneck"
    assert bot.tri_loss_margin == 0.3 and bot.label_smoothing == 0.1
    assert bot.lr.base_lr == 3.5e-4 and bot.lr.decay_step == [40, 70] and bot.lr.warmup_epochs == 10
    assert bot.batch_sampling_params.P == 16 and bot.batch_sampling_params.K == 4
    pcb = json.loads((CONFIGS[0].parent / "seed_baseline_pcb_r50_384x128.json").read_text())
    assert pcb["model_params"]["num_parts"] * pcb["model_params"]["embedding_dim"] == 1536


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_on_synthetic_data(name: str, tmp_path: Path) -> None:
    from reidkit.app import train
    from reidkit.data.synthetic import generate_synthetic

    data = tmp_path / "synth"
    generate_synthetic(
        data, num_ids=4, num_test_ids=3, num_cameras=2, img_h=96, img_w=32, images_per_id=4, seed=0
    )
    cfg = load_config(CONFIGS[0].parent / f"{name}.json", check_files=False)
    h = 96 if cfg.img_h == 384 else 64
    overrides = [
        f"batches_dir={data}",
        f"working_dir={tmp_path / 'runs'}",
        "imagenet_pretrain=false",
        "epoch=1",
        f"img_h={h}",
        "img_w=32",
        "batch_size=8",
        "batch_sampling_params.P=null",
        "batch_sampling_params.K=4",
        "parallels=[]",
        "device=cpu",
        "progress=false",
        "data.num_workers=0",
        "data.test_batch_size=16",
    ]
    cfg = load_config(CONFIGS[0].parent / f"{name}.json", overrides)
    summary = train(cfg)
    assert (tmp_path / "runs" / "last.pth").is_file()
    assert summary["epochs"] == 1
    assert 0.0 <= summary["metrics"]["mAP"] <= 1.0
    for ckpt in (tmp_path / "runs").glob("*.pth"):  # ResNet-50 recipes: ~280 MB each
        ckpt.unlink()
