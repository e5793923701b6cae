"""Multi-GPU / multi-machine training with DistributedDataParallel through torch's launcher.

``parallels: [0, 1, 2, 3]`` on one machine starts one process per GPU with
``torch.distributed.launcher`` (the machinery behind ``torchrun``); ``torchrun --nnodes ...
-m reidkit train ...`` works for several machines, since every process finds its rank in the
environment. On CPU the same code runs with the gloo backend (that is how it is tested).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import torch
import torch.distributed as dist

from reidkit.config import Config, validate_config


def env_world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment, or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, local, world


def init_process_group(use_cuda: bool) -> None:
    """Join the process group torchrun described (nccl on GPUs, gloo on CPU)."""
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")


def is_main() -> bool:
    """Whether this process writes logs and checkpoints."""
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every process (no-op when single-process)."""
    if dist.is_initialized():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Send a picklable object from ``src`` to every process (no-op when single-process)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def wrap_ddp(model: torch.nn.Module, device: torch.device, sync_bn: bool) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` (SyncBN first when asked and on GPUs)."""
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)


def run_rank(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train as one rank of a DDP job whose rank / world size are in the environment."""
    from reidkit.engine.trainer import Trainer

    rank, _, world = env_world()
    init_process_group(cfg.device != "cpu" and torch.cuda.is_available())
    try:
        return Trainer(cfg, resume=resume, rank=rank, world=world).fit()
    finally:
        dist.destroy_process_group()


def _worker(cfg_dict: dict[str, Any], resume: str | None) -> dict[str, Any]:
    """What each process started by ``launch_local`` runs (module level: picklable)."""
    return run_rank(validate_config(cfg_dict), resume)


def launch_local(cfg: Config, nproc: int, resume: str | None = None) -> dict[str, Any]:
    """Start ``nproc`` processes on this machine with torch's elastic launcher."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"reidkit-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=1,
    )
    results = elastic_launch(config, _worker)(cfg.to_dict(), resume)
    return results[0]
