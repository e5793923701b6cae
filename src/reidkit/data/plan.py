"""Checks of a training plan against the data and the machine, made before anything is
written: the batch fits the train split, and a decoded-image cache fits in memory."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from reidkit.data.records import ReidDataset
from reidkit.utils.errors import ConfigError

MEMORY_SHARE = 0.8  # of what is available; the model, the optimiser and the OS need the rest


def check_batch_fits(dataset: ReidDataset, batch_size: int, class_balanced: bool) -> None:
    """Random sampling needs ``batch_size`` train images (PK sampling checks identities)."""
    n = len(dataset.train)
    if not class_balanced and 0 < n < batch_size:
        raise ConfigError(
            f"batch_size = {batch_size} is larger than the train split of {dataset.name} "
            f"({n} images); use batch_size <= {n}"
        )


def available_ram() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def cache_bytes(num_images: int, height: int, width: int) -> int:
    """Size of a uint8 cache of ``num_images`` RGB images of ``height`` x ``width``."""
    return num_images * 3 * height * width


def check_cache_fits(
    num_images: int, height: int, width: int, cache: str, device: torch.device
) -> None:
    """``data.cache`` ram / device must fit in what the machine has; one line when not."""
    if cache == "none" or num_images == 0:
        return
    need = cache_bytes(num_images, height, width)
    if cache == "device" and device.type == "cuda":
        have = torch.cuda.mem_get_info(device)[0]
        where = f"free memory of {device}"
    else:
        have = available_ram()
        where = "available RAM"
    if need > MEMORY_SHARE * have:
        raise ConfigError(
            f"data.cache = {cache!r}: {num_images} images of {height}x{width} need "
            f"{need / 2**30:.1f} GiB, more than {MEMORY_SHARE:.0%} of the {have / 2**30:.1f} GiB "
            f"{where}; use data.cache none (decode per batch) or smaller img_h / img_w"
        )
