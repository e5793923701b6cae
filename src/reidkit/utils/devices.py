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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` is a CUDA GPU that computes in bf16 natively (compute capability
    >= 8.0: A100, H100, RTX 30xx and later); older GPUs emulate it slowly."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_amp(amp: str, device: torch.device) -> str:
    """``amp`` with ``auto`` made concrete: bf16 where ``native_bf16``, else off (the CPU)."""
    if amp != "auto":
        return amp
    return "bf16" if native_bf16(device) else "off"


def resolve_channels_last(value: bool | str, device: torch.device) -> bool:
    """``channels_last`` for training with ``auto`` made concrete: on for CUDA GPUs (their
    convolutions run NHWC on tensor cores), off on the CPU (oneDNN's NCHW training kernels
    were as fast there; inference differs, see ``reidkit.evaluation.features``)."""
    if value == "auto":
        return device.type == "cuda"
    return bool(value)
