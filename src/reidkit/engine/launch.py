"""Starting training in one process, or one process per GPU with DistributedDataParallel."""

from __future__ import annotations

from typing import Any

import torch

from reidkit.config import Config
from reidkit.engine.distributed import env_world, launch_local, run_rank


def launch_training(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says.

    - under ``torchrun`` (WORLD_SIZE > 1): this process is one rank of a DDP job;
    - ``parallels`` naming several visible GPUs: start one process per GPU here;
    - otherwise: a single process (GPU 0 / the first of ``parallels``, or the CPU).
    """
    from reidkit.engine.trainer import Trainer

    if env_world()[2] > 1:
        return run_rank(cfg, resume)
    gpus = len(cfg.parallels) if torch.cuda.is_available() and cfg.device != "cpu" else 0
    if gpus > 1:
        return launch_local(cfg, gpus, resume)
    return Trainer(cfg, resume=resume).fit()
