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
import shutil
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


_DRIVER = r"""
import json, os, sys
from reidkit.cli import main
jobs, out = json.loads(sys.argv[1]), sys.argv[2]
for i, (argv, cwd) in enumerate(jobs):
    os.chdir(cwd)
    saved = os.dup(1), os.dup(2)
    for fd, name in ((1, "out"), (2, "err")):
        f = os.open(os.path.join(out, f"{i}.{name}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(f, fd)
        os.close(f)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's usage errors
        rc = e.code if isinstance(e.code, int) else 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    with open(os.path.join(out, f"{i}.rc"), "w") as f:
        f.write(str(rc))
"""


def run_many(
    jobs: list[tuple[str, ...]], cwd: Path, env: dict | None = None, fsize: int | None = None
) -> list[Result]:
    """Several ``reidkit ARGS`` through the console script's own entry point
    (``reidkit.cli.main``, the boundary included) in ONE subprocess run in ``cwd``, each with
    its own stdout / stderr (file descriptors redirected, so output of C libraries counts)
    and exit status. The start of a process (the torch import) is most of a failing command's
    time; a test of many bad invocations pays it once."""
    box = Path(tempfile.mkdtemp(prefix="run_many_"))
    base = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    base["REIDKIT_CRASH_DIR"] = str(crash_dir(cwd))
    payload = json.dumps([[list(argv), str(cwd)] for argv in jobs])
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, payload, str(box)],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=None if fsize is None else file_size_limit(fsize),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [
        Result(
            int((box / f"{i}.rc").read_text()),
            (box / f"{i}.out").read_text(errors="replace"),
            (box / f"{i}.err").read_text(errors="replace"),
        )
        for i in range(len(jobs))
    ]
    shutil.rmtree(box, ignore_errors=True)
    return results


def assert_cases(results: list[Result], cases: list[tuple], rc: int = 2) -> None:
    """Each result is one ``error:`` line holding its case's needles (``(argv, *needles)``),
    exit ``rc``; a failure names the command."""
    for r, (argv, *needles) in zip(results, cases, strict=True):
        try:
            assert_one_line_error(r, *needles, rc=rc)
        except AssertionError as e:
            raise AssertionError(f"reidkit {' '.join(argv)}: {e}") from None


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
