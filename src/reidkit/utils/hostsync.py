"""Counting the places where code reads tensor values back to the host.

On a GPU every such read (``.item()``, ``bool(tensor)``, ``.tolist()``, a boolean-mask index,
``nonzero`` ...) makes the CPU wait until the GPU has caught up, which empties the queue of
launched kernels and leaves the GPU idle while Python runs. ``count_host_syncs()`` counts them
on any device, the CPU included, so a test on a machine without a GPU can prove that a piece of
code (the training step) has none::

    with count_host_syncs() as syncs:
        trainer.train_step(images, pids, check=False)
    assert syncs.count == 0, syncs.report()

It is a ``TorchFunctionMode``: it sees every call of a torch function or tensor method made from
Python while it is active (not the kernels C++ runs internally, which never read back on their
own). Copies count only when they move data to the CPU from another device; value reads count on
every device, because on a GPU they would wait. On CUDA, ``torch.cuda.set_sync_debug_mode``
gives the driver's own view of the same thing.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

# Tensor methods / torch functions that always read device memory on the host, or whose output
# shape depends on tensor values (so the host must wait for them to know it).
VALUE_READS = frozenset(
    {
        "item",
        "tolist",
        "numpy",
        "__bool__",
        "__int__",
        "__float__",
        "__index__",
        "__complex__",
        "__format__",
        "__repr__",
        "is_nonzero",
        "equal",
        "allclose",
        "nonzero",
        "nonzero_static_host",
        "argwhere",
        "masked_select",
        "unique",
        "unique_consecutive",
    }
)
TRANSFERS = frozenset({"cpu", "to", "copy_"})


def _name(func: Any) -> str:
    return getattr(func, "__name__", "") or str(func)


def _is_mask(index: Any) -> bool:
    if isinstance(index, torch.Tensor):
        return index.dtype in (torch.bool, torch.uint8)
    if isinstance(index, (tuple, list)):
        return any(_is_mask(i) for i in index)
    return False


def _to_cpu_target(args: tuple, kwargs: dict) -> bool:
    """Whether a ``Tensor.to`` / ``copy_`` call moves a non-CPU tensor to the CPU."""
    src = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if src is None or src.device.type == "cpu":
        return False
    targets = list(args[1:]) + [kwargs.get("device")]
    for t in targets:
        if isinstance(t, torch.Tensor):
            return t.device.type == "cpu"
        if isinstance(t, (str, torch.device)):
            return torch.device(t).type == "cpu"
    return False


def is_host_sync(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether the call ``name(*args, **kwargs)`` would make the host wait for the device."""
    if name in VALUE_READS:
        return True
    if name in ("__getitem__", "__setitem__", "index_put", "index_put_"):
        return len(args) > 1 and _is_mask(args[1])
    if name == "where":
        return len(args) + len(kwargs) == 1  # torch.where(cond): nonzero
    if name == "repeat_interleave":
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        return isinstance(repeats, torch.Tensor) and kwargs.get("output_size") is None
    if name == "cpu":
        return bool(args) and isinstance(args[0], torch.Tensor) and args[0].device.type != "cpu"
    if name in TRANSFERS:
        return _to_cpu_target(args, kwargs)
    return False


def _caller() -> str:
    """Where the sync happened: ``file:line`` of the innermost frame outside torch and this
    module, preceded by the innermost torch frame when torch code made the call."""
    frames = [f for f in traceback.extract_stack() if not f.filename.endswith("hostsync.py")]

    def short(frame: traceback.FrameSummary) -> str:
        parts = frame.filename.replace("\\", "/").split("/")
        return f"{'/'.join(parts[-2:])}:{frame.lineno}"

    inner = frames[-1] if frames else None
    for frame in reversed(frames):
        if "/torch/" not in frame.filename.replace("\\", "/"):
            if frame is inner:
                return short(frame)
            return f"{short(inner)} via {short(frame)}" if inner else short(frame)
    return short(inner) if inner else "?"


class HostSyncCounter(TorchFunctionMode):
    """The mode behind ``count_host_syncs``: ``count``, ``calls`` (by name) and ``where``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.where: Counter[str] = Counter()

    @property
    def count(self) -> int:
        """How many host syncs were seen."""
        return sum(self.calls.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = _name(func)
        if is_host_sync(name, args, kwargs):
            self.calls[name] += 1
            self.where[f"{name} at {_caller()}"] += 1
        return func(*args, **kwargs)

    def report(self) -> str:
        """One line per place that synced, most frequent first (for assertion messages)."""
        return "; ".join(f"{w} x{n}" for w, n in self.where.most_common()) or "no host syncs"


@contextmanager
def count_host_syncs() -> Iterator[HostSyncCounter]:
    """Count host syncs made from Python inside the ``with`` block (see the module docstring)."""
    counter = HostSyncCounter()
    with counter:
        yield counter
