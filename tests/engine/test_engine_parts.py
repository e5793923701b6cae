"""Schedules, optimiser groups, atomic checkpoints and the resume compatibility check."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from reidkit.config import validate_config
from reidkit.engine.optim import build_schedule
from reidkit.engine.resume import check_resume_compatible, config_differences
from reidkit.engine.rng import rng_state, set_rng_state
from reidkit.models.checkpoint import load_checkpoint, save_checkpoint
from reidkit.utils.errors import CheckpointError


def cfg(**kw):
    return validate_config({"batches_dir": ".", **kw})


def test_decay_step_counts_epochs_with_random_sampling() -> None:
    s = build_schedule(cfg(epoch=10, lr={"decay_step": 4, "gamma": 0.1}), iters_per_epoch=5)
    assert s(0) == 1.0 and s(19) == 1.0
    assert s(20) == pytest.approx(0.1) and s(40) == pytest.approx(0.01)


def test_decay_step_counts_iterations_with_class_balanced_sampling() -> None:
    c = cfg(
        epoch=10,
        batch_size=8,
        lr={"decay_step": 4},
        batch_sampling_params={"class_balanced": True, "K": 4},
    )
    s = build_schedule(c, iters_per_epoch=5)
    assert s(3) == 1.0 and s(4) == pytest.approx(0.1) and s(8) == pytest.approx(0.01)


def test_decay_unit_epoch_overrides_seed_rule_and_milestones() -> None:
    c = cfg(
        epoch=10,
        batch_size=8,
        lr={"decay_step": [2, 5], "decay_unit": "epoch"},
        batch_sampling_params={"class_balanced": True, "K": 4},
    )
    s = build_schedule(c, iters_per_epoch=10)
    assert s(19) == 1.0 and s(20) == pytest.approx(0.1) and s(50) == pytest.approx(0.01)


def test_linear_warmup_and_cosine() -> None:
    c = cfg(epoch=10, lr={"warmup_epochs": 2, "warmup_factor": 0.1, "scheduler": "cosine"})
    s = build_schedule(c, iters_per_epoch=10)
    assert s(0) == pytest.approx(0.1)
    assert s(10) == pytest.approx(0.55, rel=1e-2)
    assert s(20) == pytest.approx(1.0)
    assert s(100) == pytest.approx(0.0, abs=1e-9)


def test_checkpoint_roundtrip_is_weights_only(tmp_path: Path) -> None:
    net = nn.Linear(3, 2)
    path = tmp_path / "last.pth"
    state = {"model": net.state_dict(), "epoch": 3, "config": {"a": [1, 2]}, "rng": rng_state()}
    save_checkpoint(state, path)
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["config"] == {"a": [1, 2]}
    torch.testing.assert_close(loaded["model"]["weight"], net.weight.detach())
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_rng_state_roundtrip(tmp_path: Path) -> None:
    import random

    import numpy as np

    save_checkpoint({"model": {}, "rng": rng_state()}, tmp_path / "c.pth")
    a = (torch.rand(2), np.random.rand(), random.random())
    set_rng_state(load_checkpoint(tmp_path / "c.pth")["rng"])
    b = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


def test_truncated_or_foreign_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pth"
    save_checkpoint({"model": nn.Linear(3, 2).state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"c.pth: not a readable reidkit checkpoint"):
        load_checkpoint(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(CheckpointError, match="no 'model' state dict"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pth")


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable reidkit checkpoint"):
        load_checkpoint(path)


def test_resume_refuses_changed_keys_and_names_them() -> None:
    old = cfg(epoch=5).to_dict()
    new = cfg(epoch=9, lr={"base_lr": 0.5}).to_dict()
    assert config_differences(old, new) == ["lr.base_lr"]
    with pytest.raises(CheckpointError, match=r"lr.base_lr: 0.01 -> 0.5"):
        check_resume_compatible(old, new, Path("last.pth"))
    check_resume_compatible(old, cfg(epoch=20).to_dict(), Path("last.pth"))
