"""Two "nodes" on localhost: two torchrun launchers meet through the c10d rendezvous (gloo on
the CPU), train one DDP job, rank 0 checkpoints, and the job resumes from that checkpoint.

This is the command a cluster runs on each machine (docs/multinode.md), with localhost as the
rendezvous endpoint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from reidkit.models.checkpoint import load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _two_nodes(args: list[str], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run ``torchrun --nnodes 2 --nproc_per_node 1 ... args`` as two launcher processes."""
    port, job = _free_port(), uuid.uuid4().hex[:8]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc_per_node",
        "1",
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        f"localhost:{port}",
        "--rdzv_id",
        job,
        "--max_restarts",
        "0",
        "--monitor_interval",
        "0.5",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    done = []
    for node in nodes:
        try:
            out, err = node.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for n in nodes:
                n.kill()
            raise
        done.append(subprocess.CompletedProcess(cmd, node.returncode, out, err))
    return done


@pytest.mark.slow
def test_two_node_rendezvous_trains_checkpoints_on_rank0_and_resumes(
    tiny_market: Path, tmp_path: Path, tiny_params, write_params
) -> None:
    params = tiny_params(tiny_market, tmp_path / "work", epoch=1)
    params["evaluation_params"] = {"type": "None"}
    cfg = write_params(tmp_path / "p.json", params)
    train = ["-m", "reidkit", "train", "-c", str(cfg), "--sub-working-dir", "mn"]
    for node in _two_nodes(train, tmp_path):
        assert node.returncode == 0, node.stderr[-3000:]
    run = tmp_path / "work" / "mn"
    first = load_checkpoint(run / "last.pth")
    assert first["epoch"] == 1 and first["config"]["epoch"] == 1
    assert sorted(p.name for p in run.glob("*.pth")) == ["best.pth", "last.pth"]
    assert not list(run.glob("*.tmp*")), "a checkpoint write was left half done"

    for node in _two_nodes([*train, "--resume", "auto", "epoch=2"], tmp_path):
        assert node.returncode == 0, node.stderr[-3000:]
    second = load_checkpoint(run / "last.pth")
    assert second["epoch"] == 2 and second["iteration"] == 2 * first["iteration"]
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    log = (run / "train.log").read_text()
    assert "resumed from" in log and "last.pth" in log
