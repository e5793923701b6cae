"""An adapt run resumed (at an epoch boundary, or after a SIGKILL mid-epoch, during a
checkpoint write) ends exactly like the uninterrupted run: same weights, same clusters."""

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
from adapt_helpers import write_json

from reidkit.app.adapt import adapt
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


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _same_run(a: Path, b: Path) -> None:
    ra, rb = _records(a), _records(b)
    assert [r["epoch"] for r in rb] == [1, 2]
    for x, y in zip(ra, rb, strict=True):
        assert (x["train"]["clusters"], x["train"]["outliers"]) == (
            y["train"]["clusters"],
            y["train"]["outliers"],
        )
        assert x["train"]["total"] == y["train"]["total"]
    ca, cb = load_checkpoint(a / "last.pth"), load_checkpoint(b / "last.pth")
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"])
    pa, pb = ca["callbacks"]["pseudo_labels"], cb["callbacks"]["pseudo_labels"]
    assert torch.equal(pa["labels"], pb["labels"]) and torch.equal(pa["centroids"], pb["centroids"])


def _kill_during_write(proc: subprocess.Popen, run: Path, limit: float = 120) -> bool:
    """SIGKILL during a checkpoint write once last.pth holds a step of epoch 2."""
    end, seen, ready = time.monotonic() + limit, None, False
    while time.monotonic() < end and proc.poll() is None:
        last = run / "last.pth"
        inode = last.stat().st_ino if last.exists() else None
        if inode is not None and inode != seen:
            seen, state = inode, load_checkpoint(last)
            ready = state["epoch"] == 1 and state["step_in_epoch"] >= 1
        if ready and list(run.glob(".*.pth.*.tmp")):
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.0005)
    return False


def test_resumed_adapt_equals_uninterrupted(adapt_params, tmp_path: Path, one_thread) -> None:
    work = tmp_path / "work"
    params = adapt_params(work, {"eval_data": None, "iters": 4}, checkpoint_every_iters=1)
    adapt(validate_config({**params, "sub_working_dir": "ref"}))

    # epoch boundary: one epoch, then resume for the second
    adapt(validate_config({**params, "sub_working_dir": "boundary", "epoch": 1}))
    adapt(validate_config({**params, "sub_working_dir": "boundary"}), resume="auto")
    _same_run(work / "ref", work / "boundary")

    # SIGKILL during a checkpoint write in epoch 2, then resume (mid-epoch)
    cfg = write_json(tmp_path / "p.json", params)
    cmd = [sys.executable, "-m", "reidkit", "adapt", "-c", str(cfg), "--sub-working-dir", "killed"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _kill_during_write(proc, work / "killed"), "the run ended before the kill"
    proc.wait(timeout=60)
    mid = load_checkpoint(work / "killed" / "last.pth")
    assert mid["epoch"] == 1 and mid["step_in_epoch"] > 0  # a mid-epoch checkpoint
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    _same_run(work / "ref", work / "killed")
