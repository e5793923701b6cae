"""Starting training in one process, or one process per GPU with DistributedDataParallel."""

from __future__ import annotations

from typing import Any

import torch

from reidkit.config import Config
from reidkit.engine.distributed import env_world, init_process_group, launch_local


def launch_training(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says.

    - under ``torchrun`` (WORLD_SIZE > 1): this process is one rank of a DDP job;
    - ``parallels`` naming several visible GPUs: start one process per GPU here;
    - otherwise: a single process (GPU 0 / the first of ``parallels``, or the CPU).
    """
    from reidkit.engine.trainer import Trainer

    rank, _, world = env_world()
    if world > 1:
        init_process_group(cfg.device != "cpu" and torch.cuda.is_available())
        return Trainer(cfg, resume=resume, rank=rank, world=world).fit()
    gpus = len(cfg.parallels) if torch.cuda.is_available() and cfg.device != "cpu" else 0
    if gpus > 1:
        return launch_local(cfg, gpus, resume)
    return Trainer(cfg, resume=resume).fit()
