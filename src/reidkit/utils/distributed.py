"""Process-group facts shared by training and extraction: rank, world, barrier, broadcast.

Everything here is a no-op (rank 0 of 1) when no process group is initialised, so library code
can call it unconditionally. ``torch.distributed`` is the engine; torchrun describes the job
in the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``).
"""

from __future__ import annotations

import os
from typing import Any

import torch.distributed as dist


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


def destroy_process_group() -> None:
    """Leave the process group, if any."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised group, else (0, 1)."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes logs and checkpoints (rank 0)."""
    return rank_and_world()[0] == 0


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
