"""``reidkit adapt`` stopped by SIGTERM (a scheduler's stop) or SIGKILL, then ``--resume``:
SIGTERM ends it with one line, exit 143 and a checkpoint of the step it stopped at; after
either, the resumed run finishes every epoch with a record for each."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import Result, assert_one_line_error, crash_dir

from reidkit.models.checkpoint import load_checkpoint

pytest.importorskip("sklearn", reason="adaptation needs the adapt extra (scikit-learn)")
EPOCHS = 3


def _adapt(small_run: Path, faults_data: Path, work: Path, sub: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "reidkit", "adapt", "--from", str(small_run),
        "--unlabeled", str(faults_data / "bounding_box_train"), "--sub-working-dir", sub,
        f"working_dir={work}", f"epoch={EPOCHS}", "adapt.iters=12", "adapt.k1=6", "adapt.k2=2",
        "adapt.min_samples=2", "adapt.eps=0.6", *extra,
    ]  # fmt: skip


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "REIDKIT_CRASH_DIR": str(crash_dir(tmp_path))}


def _start_and_signal(cmd: list[str], run: Path, sig: int, env: dict) -> subprocess.Popen:
    """Start ``cmd``; once epoch 1 is checkpointed, send ``sig`` during epoch 2 or 3."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None and not (run / "last.pth").exists():
        time.sleep(0.02)
    assert proc.poll() is None, f"adapt ended before the signal: {proc.communicate()[1][-2000:]}"
    time.sleep(0.5)
    proc.send_signal(sig)
    return proc


def _epochs(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_adapt_stopped_by_sigterm_or_sigkill_resumes(small_run, faults_data, tmp_path):
    work, env = tmp_path / "work", _env(tmp_path)
    for sub, sig in (("term", signal.SIGTERM), ("kill", signal.SIGKILL)):
        run = work / sub
        proc = _start_and_signal(_adapt(small_run, faults_data, work, sub), run, sig, env)
        out, err = proc.communicate(timeout=240)
        state = load_checkpoint(run / "last.pth")  # complete whatever the moment of the stop
        if sig == signal.SIGTERM:
            line = assert_one_line_error(Result(proc.returncode, out, err), rc=143)
            assert f"{run}: stopped by SIGTERM" in line and "--resume" in line, line
            assert str(run / "last.pth") in line
            assert state["epoch"] < EPOCHS
            at = re.search(r"at step (\d+) of (\d+) in epoch (\d+)", line)
            if at:  # stopped at a safe point inside the epoch: that step is the checkpoint
                step, _, epoch = map(int, at.groups())
                assert (state["step_in_epoch"], state["epoch"]) == (step, epoch - 1)
        else:
            assert proc.returncode == -signal.SIGKILL
        done = subprocess.run(
            [*_adapt(small_run, faults_data, work, sub), "--resume"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"resumed from {run / 'last.pth'}" in done.stdout
        assert load_checkpoint(run / "last.pth")["epoch"] == EPOCHS
        assert _epochs(run) == list(range(1, EPOCHS + 1)), _epochs(run)
    assert not crash_dir(tmp_path).exists()
