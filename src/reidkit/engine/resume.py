"""Deciding whether a checkpoint may be resumed with the current config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reidkit.utils.errors import CheckpointError

# Keys that may change between a run and its resumption without changing what is trained.
HARMLESS_KEYS = {
    "epoch",
    "working_dir",
    "sub_working_dir",
    "progress",
    "log_every",
    "parallels",
    "device",
    "data.num_workers",
    "data.cache",
    "data.test_batch_size",
    "evaluation_params.period",
    "evaluation_params.search_dirs",
    "checkpoint_every_iters",
    "compile",
    "compile_mode",
    "channels_last",
}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ and matter for resuming."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k) and k not in HARMLESS_KEYS]


def check_resume_compatible(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    """Refuse to resume when a key that matters changed; name the keys and both values."""
    diffs = config_differences(old, new)
    if diffs:
        a, b = _flatten(old), _flatten(new)
        shown = "; ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in diffs[:5])
        more = f" (+{len(diffs) - 5} more)" if len(diffs) > 5 else ""
        raise CheckpointError(
            f"{path}: cannot resume, the config changed: {shown}{more}; "
            "start a new sub_working_dir or restore those values"
        )
