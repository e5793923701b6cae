"""Run folders are never silently replaced.

A folder holds a *started* run once ``config.json`` is in it (written only after every check
passed). Starting again there is refused with a hint (``--resume``, another
``--sub-working-dir``, or ``--overwrite``); ``--resume`` of a folder that holds no run is an
error naming the runs that do exist; ``--overwrite`` removes only the files reidkit wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from reidkit.engine.runlog import read_records
from reidkit.utils.errors import ConfigError
from reidkit.utils.files import remove_stale_temp_files

RUN_FILES = ("config.json", "train.log", "metrics.jsonl", "best.pth", "last.pth", "eval.json")
RUN_GLOBS = ("events.out.tfevents.*",)


def is_started(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that got past its checks."""
    return (run_dir / "config.json").is_file() or (run_dir / "last.pth").is_file()


def progress_text(run_dir: Path) -> str:
    """``epoch 3 of 60`` (from metrics.jsonl / config.json), or ``no epoch finished``."""
    done = max((r["epoch"] for r in read_records(run_dir / "metrics.jsonl")), default=0)
    try:
        total = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        total = "?"
    return f"epoch {done} of {total} done" if done else "no epoch finished"


def sibling_runs(run_dir: Path) -> list[str]:
    """Names of the started runs next to ``run_dir`` (for "did you mean" hints)."""
    parent = run_dir.parent
    if not parent.is_dir():
        return []
    return sorted(d.name for d in parent.iterdir() if d.is_dir() and is_started(d))


def check_run_dir(run_dir: Path, resume: str | None, overwrite: bool) -> None:
    """Refuse to start over a started run, or to resume one that does not exist."""
    for folder in (run_dir, *run_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(
                    f"{folder}: is a file, not a folder; working_dir / sub_working_dir must "
                    "name a folder"
                )
            break
    started = is_started(run_dir)
    if resume == "auto" and not started:
        others = sibling_runs(run_dir)
        hint = f" (runs in {run_dir.parent}: {', '.join(others)})" if others else ""
        raise ConfigError(
            f"--resume: {run_dir} holds no run to continue{hint}; check --sub-working-dir, "
            "or drop --resume to start a new run"
        )
    if started and not resume and not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run ({progress_text(run_dir)}); continue it with "
            "--resume, choose another --sub-working-dir, or pass --overwrite to replace it"
        )


def clear_run_dir(run_dir: Path) -> None:
    """Remove the files an earlier run wrote (``--overwrite``); other files stay."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for pattern in RUN_GLOBS:
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)
    remove_stale_temp_files(run_dir)
