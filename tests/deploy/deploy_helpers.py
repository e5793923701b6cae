"""Helpers of the deploy tests, imported by name (fixtures are in conftest.py): a tiny real
ReidModel, a run folder, real image files, a really trained tiny run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMG_H, IMG_W = 64, 32


def _with_random_bn_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Eval-mode ``model`` whose BatchNorm running statistics are non-trivial (so export
    parity is tested with BN doing real work, not the identity of a fresh layer)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def make_model(backbone: str = "resnet18", seed: int = 0, num_classes: int = 5) -> torch.nn.Module:
    """A deterministic, untrained ReidModel in eval mode (BN statistics made non-trivial)."""
    from reidkit.models import ReidModel

    torch.manual_seed(seed)
    model = ReidModel(backbone, num_classes)
    return _with_random_bn_statistics(model)


def make_small_model(seed: int = 0) -> torch.nn.Module:
    """A ReidModel (pooling, BNNeck, classifier) on a two-convolution backbone: the cheap
    stand-in where any eval-mode images -> (B, D) module will do (extract, search, embedder).
    """
    from reidkit.models import Backbone, ReidModel

    class TwoConv(Backbone):
        out_channels = 32

        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
                torch.nn.BatchNorm2d(16),
                torch.nn.ReLU(),
                torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
                torch.nn.BatchNorm2d(32),
                torch.nn.ReLU(),
            )

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    torch.manual_seed(seed)
    model = ReidModel(TwoConv(), 5)
    return _with_random_bn_statistics(model)


def write_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` smooth random RGB images of assorted sizes as JPEG/PNG files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        h, w = int(rng.integers(60, 140)), int(rng.integers(30, 70))
        base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
        img = Image.fromarray(base).resize((w, h), Image.BILINEAR)
        path = folder / f"{i:04d}_c{i % 3 + 1}s1_{i:06d}_00.{'png' if i % 2 else 'jpg'}"
        img.save(path)
        files.append(path)
    return files


def make_run(run: Path, data: Path, backbone: str = "resnet18", name: str = "best.pth") -> Path:
    """A run folder with a real reidkit checkpoint of an untrained model; returns the file."""
    from reidkit.config import save_config, validate_config
    from reidkit.models import build_model
    from reidkit.models.checkpoint import save_checkpoint

    cfg = validate_config(
        {
            "batches_dir": str(data),
            "working_dir": str(run.parent),
            "sub_working_dir": run.name,
            "img_h": IMG_H,
            "img_w": IMG_W,
            "model_params": {"backbone": backbone},
            "evaluation_params": {"distance": "cosine"},
        }
    )
    torch.manual_seed(0)
    model = build_model(cfg, 4)
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.json")
    state = {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": 4, "epoch": 1}
    save_checkpoint(state, run / name)
    return run / name


def train_tiny_run(root: Path, backbone: str = "resnet18", epochs: int = 6) -> Path:
    """A really trained run folder: synthetic Market data (12 training ids, 16 test ids, 39
    queries), 64x32, ~20 s on one core; mAP ~0.6, enough margin for INT8 to keep it."""
    from reidkit.app import train
    from reidkit.config import validate_config
    from reidkit.data.synthetic import generate_synthetic

    generate_synthetic(
        root / "data",
        num_ids=12,
        num_test_ids=16,
        num_cameras=3,
        img_h=IMG_H,
        img_w=IMG_W,
        seed=1,
        images_per_id=6,
    )
    cfg = validate_config(
        {
            "batches_dir": str(root / "data"),
            "working_dir": str(root),
            "sub_working_dir": "run",
            "img_h": IMG_H,
            "img_w": IMG_W,
            "batch_size": 16,
            "epoch": epochs,
            "optimizer": "adam",
            "lr": {"base_lr": 0.001, "decay_step": [100], "decay_unit": "epoch"},
            "model_params": {"backbone": backbone},
            "tri_loss_margin": 0.3,
            "batch_sampling_params": {"class_balanced": True, "K": 4},
            "evaluation_params": {"type": "market_evaluate", "period": epochs},
            "data": {"num_workers": 0},
            "progress": False,
            "device": "cpu",
            "seed": 0,
        }
    )
    train(cfg)
    return root / "run"
