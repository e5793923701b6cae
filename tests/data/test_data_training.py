"""A real (tiny) training run on a dataset with corrupt images finishes and reports them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reidkit.config import validate_config


@pytest.mark.slow
def test_training_survives_corrupt_images(synth_small: Path, tmp_path: Path) -> None:
    from reidkit.app.launch import prepare

    root = tmp_path / "data"
    shutil.copytree(synth_small, root)
    train = sorted((root / "bounding_box_train").iterdir())
    train[0].write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    train[5].write_bytes(train[5].read_bytes()[:200])
    train[9].write_bytes(b"")
    cfg = validate_config(
        {
            "batches_dir": str(root),
            "working_dir": str(tmp_path / "runs"),
            "img_h": 32,
            "img_w": 16,
            "batch_size": 8,
            "epoch": 1,
            "optimizer": "adam",
            "model_params": {"backbone": "resnet18"},
            "tri_loss_margin": 0.3,
            "batch_sampling_params": {"class_balanced": True, "K": 4},
            "data": {"cache": "ram", "num_workers": 0},
            "progress": False,
            "device": "cpu",
        }
    )
    trainer = prepare(cfg)
    assert trainer.loader.skipped == 2 and trainer.skipped_images == 1
    trainer.fit()
    log = (cfg.run_dir / "train.log").read_text()
    assert "skipped 2 image(s) that cannot be decoded" in log
    assert "1 file(s) skipped: empty file (0 bytes)" in log
    assert (cfg.run_dir / "last.pth").is_file()
