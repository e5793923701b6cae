"""Checkpoints: plain dicts written atomically and read back without executing anything.

A checkpoint holds ``model``, ``optimizer``, ``scheduler``, ``scaler`` state dicts, ``epoch``
(epochs completed), ``iteration``, ``best_metric``, ``metrics``, ``config`` (plain dict),
``num_classes`` and ``rng`` (torch / numpy / python RNG states as tensors and ints), so that
``torch.load(..., weights_only=True)`` can read it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reidkit.utils.errors import CheckpointError
from reidkit.utils.files import atomic_path

CHECKPOINT_FORMAT = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the old file intact)."""
    state = {"format": CHECKPOINT_FORMAT, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; one-line error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated / foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable reidkit checkpoint ({first})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a reidkit checkpoint (no 'model' state dict)")
    return state


def rng_state() -> dict[str, Any]:
    """Capture torch / numpy / python RNG states in a ``weights_only``-loadable form."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _python_state_to_list(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    torch.set_rng_state(state["torch"].cpu())
    npst = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_list(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def load_model_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Any]:
    """Rebuild the model a checkpoint was trained with and load its weights (eval mode).

    Returns ``(model, cfg)``; used by export, eval and the embedder.
    """
    from reidkit.config import validate_config
    from reidkit.models import build_model

    state = load_checkpoint(path, map_location="cpu")
    if "config" not in state or "num_classes" not in state:
        raise CheckpointError(
            f"{path}: checkpoint has no config/num_classes; was it made by reidkit?"
        )
    cfg = validate_config(state["config"], source=f"{path}[config]")
    cfg = cfg.model_copy(update={"imagenet_pretrain": False, "pretrain_snapshot": None})
    model = build_model(cfg, int(state["num_classes"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: weights do not fit the configured model ({first})"
        ) from None
    return model.to(device).eval(), cfg
