"""Reading another framework's checkpoint file as a flat state dict, without running its code.

torchreid writes ``{"state_dict": ..., "epoch", "rank1", "optimizer"}`` to ``model.pth.tar-N``;
fast-reid writes ``{"model": ..., "optimizer", "scheduler", "iteration"}`` to ``model_*.pth``;
people also pass a bare ``model.state_dict()``. Models trained under ``DataParallel`` /
``DistributedDataParallel`` prefix every key with ``module.``. All of these are read with
``torch.load(..., weights_only=True)``: a file never chooses code to import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reidkit.models.checkpoint import unreadable_reason
from reidkit.utils.errors import CheckpointError

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


@dataclass
class SourceCheckpoint:
    """A foreign checkpoint's tensors (``state``, keys without ``module.``), the wrapper key
    they were found under ("" for a bare state dict) and the file's other entries."""

    path: Path
    state: dict[str, torch.Tensor]
    wrapper: str = ""
    other_entries: list[str] = field(default_factory=list)
    stripped_prefix: str = ""


def read_source_checkpoint(path: str | Path) -> SourceCheckpoint:
    """Read ``path`` (.pth, .pth.tar, .pt ...) into a ``SourceCheckpoint``.

    Raises ``CheckpointError`` (one line) when the file is missing, cannot be read with
    ``weights_only=True`` or holds no state dict of tensors.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; pass the checkpoint file inside it")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign files
        raise CheckpointError(
            f"{path}: cannot be read with torch.load(weights_only=True) "
            f"({unreadable_reason(e)}); save just the weights, e.g. "
            "torch.save({'state_dict': model.state_dict()}, 'model.pth')"
        ) from None
    state, wrapper = _unwrap(obj, path)
    others = sorted(str(k) for k in obj if k != wrapper) if wrapper else []
    stripped = _common_wrapper_prefix(state)
    if stripped:
        state = {k[len(stripped) :]: v for k, v in state.items()}
    return SourceCheckpoint(path, state, wrapper, others, stripped)


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside ``obj`` and the key it was under ("" when ``obj`` is one)."""
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, not a state dict (a dict of tensors)"
        )
    if _is_state(obj):
        return dict(obj), ""
    for key in WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and _is_state(inner):
            return dict(inner), key
    keys = ", ".join(sorted(str(k) for k in obj)[:8])
    raise CheckpointError(
        f"{path}: no state dict of tensors found (top-level keys: {keys}); expected a state "
        f"dict or one under {' / '.join(WRAPPER_KEYS)}"
    )


def _is_state(obj: dict) -> bool:
    return bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _common_wrapper_prefix(state: dict[str, torch.Tensor]) -> str:
    """``module.`` (DataParallel / DDP) when every key starts with it, repeated if nested."""
    prefix = ""
    while all(k.startswith(prefix + "module.") for k in state):
        prefix += "module."
    return prefix
