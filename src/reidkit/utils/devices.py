"""Choosing a torch device from a user's word (``auto``, ``cpu``, ``cuda``, ``cuda:1``)."""

from __future__ import annotations

import torch

from reidkit.utils.errors import ConfigError


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` = the first CUDA GPU when one is visible, else the CPU; a CUDA device asked for
    on a machine without one is a ``ConfigError``."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"device = {name!r} is not valid: expected auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device = {name!r} but no CUDA GPU is visible; use auto or cpu")
    return device
