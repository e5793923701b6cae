"""Fault injection through the real command line: running the CLI and checking what it left.

Every test here runs ``python -m reidkit ...`` in a subprocess and checks what a user sees: the
exit status, one ``error:`` line on stderr and no traceback, and that files already in a run
folder are byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    """What a CLI run left for the user to see."""

    rc: int
    out: str
    err: str

    def error_lines(self) -> list[str]:
        """The stderr lines that are not progress bars or warnings."""
        return [x for x in self.err.splitlines() if x.startswith("error:")]


def file_size_limit(limit: int):  # noqa: ANN201 - a preexec function
    """A ``preexec_fn`` giving the child a file size limit (``ulimit -f``) with SIGXFSZ
    ignored: a write past ``limit`` bytes then fails with EFBIG, a real OS failure."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, fsize: int | None = None
) -> Result:
    """``python -m reidkit ARGS`` in a subprocess (one torch thread, crash logs in
    ``cwd/crashes``); ``fsize``: the child's file size limit in bytes (``file_size_limit``)."""
    base = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    base["REIDKIT_CRASH_DIR"] = str(crash_dir(cwd))
    proc = subprocess.run(
        [sys.executable, "-m", "reidkit", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=None if fsize is None else file_size_limit(fsize),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def crash_dir(cwd: Path | None) -> Path:
    """Where ``run_cli`` sends crash logs (an expected failure must write none)."""
    return Path(cwd or tempfile.gettempdir()) / "crashes"


def assert_one_line_error(r: Result, *needles: str, rc: int = 2) -> str:
    """Exit ``rc``, exactly one ``error:`` line holding every needle, no traceback."""
    assert "Traceback" not in r.err and "Traceback" not in r.out, r.err[-3000:]
    assert r.rc == rc, f"rc {r.rc}\n{r.err[-3000:]}"
    lines = r.error_lines()
    assert len(lines) == 1, r.err[-3000:]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (to prove nothing was replaced)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def tiny_params(dataset: Path, work: Path, **top: object) -> dict:
    """A params dict that trains one epoch in seconds on the CPU."""
    params = {
        "batches_dir": str(dataset),
        "working_dir": str(work),
        "img_h": 32,
        "img_w": 16,
        "batch_size": 8,
        "epoch": 1,
        "optimizer": "adam",
        "lr": {"base_lr": 0.001, "decay_step": [1], "decay_unit": "epoch"},
        "model_params": {"backbone": "resnet18"},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {"type": "market_evaluate"},
        "data": {"cache": "ram", "num_workers": 0, "test_batch_size": 16},
        "progress": False,
        "device": "cpu",
    }
    params.update(top)
    return params


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as JSON and return the path."""
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
