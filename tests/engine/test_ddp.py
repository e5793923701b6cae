"""DDP on CPU with gloo through real torchrun subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reidkit.models.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_ddp_gradient_matches_single_process(tmp_path: Path) -> None:
    out = tmp_path / "grad.json"
    done = _torchrun([str(HERE / "ddp_grad_worker.py"), str(out)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(out.read_text())["max_abs_diff"] < 1e-5


@pytest.mark.slow
def test_two_process_training_writes_one_checkpoint_format(
    tiny_market: Path, tmp_path: Path, tiny_params, write_params
):
    params = tiny_params(tiny_market, tmp_path / "work", epoch=1)
    cfg = write_params(tmp_path / "p.json", params)
    args = ["-m", "reidkit", "train", "-c", str(cfg), "--sub-working-dir", "ddp"]
    done = _torchrun(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "work" / "ddp"
    ckpt = load_checkpoint(run / "last.pth")
    assert {"model", "optimizer", "scheduler", "epoch", "config", "rng"} <= set(ckpt)
    assert not any(k.startswith("module.") for k in ckpt["model"])
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
