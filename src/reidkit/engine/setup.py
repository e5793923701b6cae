"""Choosing the device and seeding every random number generator of a run."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from reidkit.config import Config
from reidkit.utils.errors import ConfigError
from reidkit.utils.logging import get_logger


def resolve_device(cfg: Config, rank: int = 0) -> torch.device:
    """The device this process trains on, from ``device`` and ``parallels``.

    ``parallels`` lists GPU ids (the seed's key). Without CUDA, a seed params.json that names
    GPUs still runs on the CPU, with a warning, unless ``device`` is "cuda".
    """
    has_cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not has_cuda:
        raise ConfigError("device = 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if cfg.device == "cpu" or not has_cuda:
        if cfg.parallels and cfg.device != "cpu":
            get_logger().warning(
                f"parallels = {cfg.parallels} but no CUDA GPU is visible: training on the CPU"
            )
        return torch.device("cpu")
    count = torch.cuda.device_count()
    ids = cfg.parallels or [0]
    bad = [i for i in ids if i >= count]
    if bad:
        raise ConfigError(
            f"parallels = {cfg.parallels}: GPU id(s) {bad} do not exist (visible: 0..{count - 1})"
        )
    local = int(os.environ.get("LOCAL_RANK", rank))
    index = ids[local] if local < len(ids) else local
    torch.cuda.set_device(index)
    torch.backends.cudnn.benchmark = True
    return torch.device("cuda", index)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
