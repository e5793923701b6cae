"""Kill test: SIGKILL a training run at random points (some during checkpoint writes), resume
each time, and check the final result equals an uninterrupted run exactly (CPU)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reidkit.models.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


def _cmd(cfg: Path, sub: str, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "reidkit", "train", "-c", str(cfg), "--sub-working-dir", sub]
    return cmd + (["--resume"] if resume else [])


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _kill_during_write(proc: subprocess.Popen, run: Path, limit: float) -> bool:
    """SIGKILL as soon as a checkpoint temp file appears (True if it did)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        if list(run.glob(".*.pth.*.tmp")):
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.0005)
    return False


def _wait_for(path: Path, proc: subprocess.Popen, limit: float) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None and not path.exists():
        time.sleep(0.01)


def test_killed_and_resumed_run_equals_uninterrupted(
    tiny_market: Path, tmp_path: Path, tiny_params, write_params
) -> None:
    params = tiny_params(tiny_market, tmp_path / "work", epoch=3, checkpoint_every_iters=1)
    cfg = write_params(tmp_path / "p.json", params)
    ref = subprocess.run(_cmd(cfg, "ref", False), env=_env(), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]

    run, rng = tmp_path / "work" / "killed", random.Random(0)
    modes = ["write", "random", "write", "random", "write", "random"]
    during_write = 0
    for i, mode in enumerate(modes):
        proc = subprocess.Popen(
            _cmd(cfg, "killed", i > 0),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i == 0:  # a run exists (to resume) once its checks passed and config.json is written
            _wait_for(run / "config.json", proc, limit=60)
        if mode == "write":
            during_write += _kill_during_write(proc, run, limit=60)
        else:
            time.sleep(rng.uniform(2.0, 6.0))
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if (run / "last.pth").exists():
            load_checkpoint(run / "last.pth")  # never unreadable
    assert during_write >= 2, "no kill landed during a checkpoint write"
    done = subprocess.run(_cmd(cfg, "killed", True), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]

    def records(name: str) -> list[dict]:
        lines = (tmp_path / "work" / name / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x) for x in lines]

    ref_rec, got_rec = records("ref"), records("killed")
    assert [r["epoch"] for r in got_rec] == [1, 2, 3]
    assert [r["eval"] for r in got_rec] == [r["eval"] for r in ref_rec]
    a = load_checkpoint(tmp_path / "work" / "ref" / "last.pth")["model"]
    b = load_checkpoint(run / "last.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
