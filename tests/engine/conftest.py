"""A tiny synthetic Market-style dataset and config shared by the engine tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 identities, 64x32 images, written once per test session."""
    from reidkit.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("tiny_market")
    generate_synthetic(root, num_ids=8, num_cameras=3, img_h=64, img_w=32, seed=1)
    return root


def _tiny_params(data: Path, work: Path, **over) -> dict:
    """A seed-style params dict that trains in seconds on CPU."""
    params = {
        "batches_dir": str(data),
        "working_dir": str(work),
        "img_h": 64,
        "img_w": 32,
        "batch_size": 8,
        "epoch": 2,
        "optimizer": "adam",
        "lr": {"base_lr": 0.001, "decay_step": [1], "decay_unit": "epoch"},
        "model_params": {"backbone": "resnet18", "last_stride": 1},
        "data_augmentation": {"mirror": True, "padding": 4, "random_erasing": 0.5},
        "tri_loss_margin": 0.3,
        "tri_loss_lambda_cls": 1.0,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {"type": "market_evaluate"},
        "data": {"cache": "ram", "num_workers": 1},
        "progress": False,
        "device": "cpu",
    }
    for key, value in over.items():
        node = params
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return params


def _write_params(path: Path, params: dict) -> Path:
    """Write a params.json and return its path."""
    path.write_text(json.dumps(params))
    return path


@pytest.fixture
def tiny_params():
    """Factory: ``tiny_params(data, work, **dotted_overrides) -> params dict``."""
    return _tiny_params


@pytest.fixture
def write_params():
    """Factory: ``write_params(path, params) -> path``."""
    return _write_params
