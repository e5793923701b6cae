"""The checkpoint format, and the one way back from a run to a trained model: ``restore``.

A checkpoint is a plain dict (``model``, ``optimizer``, ``scheduler``, ``scaler`` state dicts,
``epoch``, ``iteration``, ``best_metric``, ``metrics``, ``config`` as a plain dict,
``num_classes``, ``rng`` ...) written atomically and read with
``torch.load(path, weights_only=True)``, so reading one never runs code.

``restore(target)`` accepts a run folder (its ``best.pth``, else ``last.pth``), a checkpoint
file, or either plus a params file (the dataset / evaluation settings to use with the model);
eval, export, extract and the ``Embedder`` all go through it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reidkit.config import Config, apply_overrides, load_config, validate_config
from reidkit.models.build import build_model
from reidkit.utils.errors import CheckpointError, first_line
from reidkit.utils.files import atomic_path
from reidkit.utils.logging import get_logger

CHECKPOINT_FORMAT = 1
BUILTIN_EVALUATORS = ("market_evaluate", "classification_evaluate", "verification_evaluate")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the old file intact)."""
    state = {"format": CHECKPOINT_FORMAT, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def unreadable_reason(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words (torch's own
    message is a paragraph about a changed default)."""
    text = str(error)
    if "Weights only load failed" in text:
        named = re.search(r"GLOBAL ([\w.]+)", text)
        if named:
            return (
                f"it names {named.group(1)}: a pickle that would run code, never loaded "
                "(checkpoints load with weights_only=True)"
            )
        return "not a torch file, or it holds objects other than tensors and plain values"
    if "central directory" in text or isinstance(error, EOFError):
        return "empty, truncated or not a torch file"
    return first_line(error)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; one-line error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated / foreign files
        raise CheckpointError(
            f"{path}: not a readable reidkit checkpoint ({unreadable_reason(e)})"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a reidkit checkpoint (no 'model' state dict)")
    return state


def resolve_checkpoint(target: str | Path) -> Path:
    """A run folder -> its ``best.pth`` (else ``last.pth``, with a warning); a file -> itself."""
    target = Path(target)
    if target.is_file():
        return target
    if not target.is_dir():
        raise CheckpointError(f"{target}: no such run folder or checkpoint file")
    best, last = target / "best.pth", target / "last.pth"
    if best.is_file():
        return best
    if last.is_file():
        get_logger().warning(f"{target}: no best.pth (no evaluation ran?); using last.pth")
        return last
    raise CheckpointError(
        f"{target}: run folder has no best.pth or last.pth; train first or pass a checkpoint"
    )


def untrusted_config(cfg: Config) -> Config:
    """``cfg`` as read from a file we did not get from the user (a checkpoint, a run folder):
    it may not name code, so a non-built-in evaluator becomes ``market_evaluate`` and
    ``search_dirs`` are dropped. The user names a plugin on the command line or in a params
    file they pass."""
    ev = cfg.evaluation_params
    if ev.type in (None, *BUILTIN_EVALUATORS) and not ev.search_dirs:
        return cfg
    if ev.type not in (None, *BUILTIN_EVALUATORS):
        get_logger().warning(
            f"the stored config names evaluator {ev.type!r}; files we read never choose code, "
            "so market_evaluate is used (name a plugin with --evaluator or -c params.json)"
        )
        ev = ev.model_copy(update={"type": "market_evaluate", "metric": None})
    return cfg.model_copy(update={"evaluation_params": ev.model_copy(update={"search_dirs": []})})


def model_from_state(
    state: dict[str, Any], source: str, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Config]:
    """Rebuild the model a checkpoint dict was trained with (eval mode) and its stored config."""
    if "config" not in state or "num_classes" not in state:
        raise CheckpointError(
            f"{source}: checkpoint has no config/num_classes; was it made by reidkit?"
        )
    cfg = validate_config(state["config"], source=f"{source}[config]")
    cfg = cfg.model_copy(update={"imagenet_pretrain": False, "pretrain_snapshot": None})
    model = build_model(cfg, int(state["num_classes"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"{source}: weights do not fit the configured model ({first_line(e)})"
        ) from None
    return model.to(device).eval(), untrusted_config(cfg)


def load_model_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, Config]:
    """``(model, stored config)`` of one checkpoint file (eval mode)."""
    return model_from_state(load_checkpoint(path, map_location="cpu"), str(path), device)


def restore(
    target: str | Path,
    params: str | Path | None = None,
    overrides: Sequence[str] = (),
    device: str | torch.device = "cpu",
) -> tuple[torch.nn.Module, Config]:
    """The trained model of ``target`` (run folder or checkpoint) in eval mode, and the config
    to use it with.

    The model is always rebuilt from the checkpoint's own config. The returned config is the
    stored one (``untrusted_config``: it names no code), or ``params`` when given (a file the
    user passes, evaluators included); ``overrides`` (``key.sub=value``) apply to either.
    """
    ckpt = resolve_checkpoint(target)
    model, cfg = load_model_from_checkpoint(ckpt, device)
    if params is not None:
        cfg = load_config(params, list(overrides))
    elif overrides:
        cfg = validate_config(apply_overrides(cfg.to_dict(), list(overrides)), str(ckpt))
    return model, cfg
