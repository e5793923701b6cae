"""Fixtures of the evaluation tests: a tiny synthetic Market dataset, config and model."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def eval_market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic Market-1501 dataset (4 train ids, 4 test ids, 3 cameras, 64x32)."""
    from reidkit.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("eval_market")
    generate_synthetic(
        root, num_ids=4, num_test_ids=4, num_cameras=3, img_h=64, img_w=32, images_per_id=6
    )
    return root


@pytest.fixture()
def eval_cfg(eval_market: Path, tmp_path: Path):
    """A config over ``eval_market`` with a small ResNet-18 and small images."""
    from reidkit.config import validate_config

    return validate_config(
        {
            "batches_dir": str(eval_market),
            "img_h": 64,
            "img_w": 32,
            "model_params": {"backbone": "resnet18"},
            "evaluation_params": {"type": "market_evaluate", "ranks": [1, 3]},
            "data": {"num_workers": 0, "test_batch_size": 16},
            "working_dir": str(tmp_path / "runs"),
            "progress": False,
        }
    )
