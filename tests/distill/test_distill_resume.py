"""A distillation run resumed at an epoch boundary, or after a SIGKILL during a mid-epoch
checkpoint write, ends exactly like the uninterrupted run: same student weights, same
projection, same per-epoch losses (the teacher cache is rebuilt bit for bit)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from distill_helpers import write_json

from reidkit.app.distill import distill
from reidkit.config import validate_config
from reidkit.models.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture
def one_thread():
    """Torch on one thread, as the subprocesses (OMP_NUM_THREADS=1): bitwise comparable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _same_run(a: Path, b: Path) -> None:
    ra = [json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (b / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rb] == [1, 2]
    for x, y in zip(ra, rb, strict=True):
        for term in ("total", "kd", "feature", "relation", "ce", "triplet"):
            assert x["train"][term] == y["train"][term], term
    ca, cb = load_checkpoint(a / "last.pth"), load_checkpoint(b / "last.pth")
    for part in ("model", "loss"):  # the student and the projection
        assert all(torch.equal(ca[part][k], cb[part][k]) for k in ca[part]), part


def _kill_mid_epoch(proc: subprocess.Popen, run: Path, limit: float = 120) -> bool:
    """SIGKILL in epoch 2 once last.pth holds a step of it: during the next checkpoint write
    when one is seen (the tiny model writes in a millisecond), else at the third step."""
    end, seen, step = time.monotonic() + limit, None, 0
    while time.monotonic() < end and proc.poll() is None:
        last = run / "last.pth"
        inode = last.stat().st_ino if last.exists() else None
        if inode is not None and inode != seen:
            seen, state = inode, load_checkpoint(last)
            step = state["step_in_epoch"] if state["epoch"] == 1 else 0
        if (step >= 1 and list(run.glob(".*.pth.*.tmp"))) or step >= 3:
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.0005)
    return False


def test_resumed_distill_equals_uninterrupted(make_student, tmp_path: Path, one_thread) -> None:
    work = tmp_path / "work"
    params = make_student(work, epoch=2, batch_size=8, checkpoint_every_iters=1)  # 8 steps
    params["evaluation_params"] = {"type": None}  # the weights and losses say it all
    distill(validate_config({**params, "sub_working_dir": "ref"}))

    # epoch boundary: one epoch, then resume for the second
    distill(validate_config({**params, "sub_working_dir": "boundary", "epoch": 1}))
    distill(validate_config({**params, "sub_working_dir": "boundary"}), resume="auto")
    _same_run(work / "ref", work / "boundary")

    # SIGKILL in epoch 2 (during a checkpoint write when one is caught), then resume (mid-epoch)
    cfg = write_json(tmp_path / "p.json", params)
    cmd = [sys.executable, "-m", "reidkit", "distill", "-c", str(cfg), "--sub-working-dir", "k"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _kill_mid_epoch(proc, work / "k"), "the run ended before the kill"
    proc.wait(timeout=60)
    mid = load_checkpoint(work / "k" / "last.pth")
    assert mid["epoch"] == 1 and mid["step_in_epoch"] > 0  # a mid-epoch checkpoint
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    _same_run(work / "ref", work / "k")
