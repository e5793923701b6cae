"""DistributedDataParallel for the training loop (process-group facts: ``utils.distributed``).

``parallels: [0, 1, 2, 3]`` on one machine starts one process per GPU (``reidkit.app.launch``);
``torchrun --nnodes ... -m reidkit train ...`` works for several machines, since every process
finds its rank in the environment. On CPU the same code runs with gloo (how it is tested).
"""

from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel

from reidkit.utils.distributed import barrier, broadcast_object, env_world, init_process_group

__all__ = ["barrier", "broadcast_object", "env_world", "init_process_group", "wrap_ddp"]


def wrap_ddp(model: torch.nn.Module, device: torch.device, sync_bn: bool) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` (SyncBN first when asked and on GPUs)."""
    if sync_bn and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)
