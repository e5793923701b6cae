"""Shared fixtures of the deploy tests: a tiny real ReidModel, a run folder, real image files
(the helpers behind them are in deploy_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from deploy_helpers import (
    make_model,
    make_small_model,
    train_tiny_run,
    write_images,
)


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    """ResNet-18 ReidModel (512-d BNNeck embedding) at 64x32."""
    return make_model()


@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    """``make_small_model()``: 32-d embeddings, milliseconds per batch."""
    return make_small_model()


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 6 real image files."""
    folder = tmp_path_factory.mktemp("images")
    write_images(folder, 6)
    return folder


@pytest.fixture(scope="session")
def trained_run_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained tiny run for the whole session, shared by the xdist workers (the first to
    get the lock trains it); tests copy it (``trained_run``) before writing into it."""
    from filelock import FileLock  # a dependency of torch

    shared = tmp_path_factory.getbasetemp().parent
    with FileLock(str(shared / "trained_run.lock")):
        run = shared / "trained_tiny" / "run"
        if not (run / "best.pth").is_file():
            train_tiny_run(shared / "trained_tiny")
    return run


@pytest.fixture()
def trained_run(trained_run_master: Path, tmp_path: Path) -> Path:
    """A private copy of the trained tiny run folder (its dataset is shared, read-only)."""
    import shutil

    return Path(shutil.copytree(trained_run_master, tmp_path / "run"))
