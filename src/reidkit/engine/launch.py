"""Starting training in one process, or one process per GPU with DistributedDataParallel."""

from __future__ import annotations

from typing import Any

from reidkit.config import Config


def launch_training(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says: single process, or DDP when several GPUs / torchrun."""
    from reidkit.engine.trainer import train

    return train(cfg, resume=resume)
