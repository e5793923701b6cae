"""What the training loop is told (``TrainSettings``) and what it remembers (``TrainState``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reidkit.utils.errors import ReidkitError


class TrainingError(ReidkitError):
    """Training cannot go on (a NaN loss, say); the message names the step and checkpoint."""


@dataclass(frozen=True)
class TrainSettings:
    """Plain settings of the loop (``build_run`` derives them from the Config)."""

    run_dir: Path
    epochs: int
    amp: str = "off"  # off | bf16 | fp16 (already resolved from "auto" for the device)
    channels_last: bool = False
    compile_mode: str | None = None  # None = eager; else torch.compile's mode
    compile_backend: str = "inductor"
    grad_clip: float = 0.0
    log_every: int = 20
    checkpoint_every_iters: int = 0
    eval_period: int = 1
    metric: str | None = None  # the evaluate() key that decides the best model
    mode: str = "max"  # max | min
    progress: bool = True
    config: dict[str, Any] = field(default_factory=dict)  # stored in checkpoints for restore()


@dataclass
class TrainState:
    """Progress that survives a resume."""

    epoch: int = 0  # epochs completed
    iteration: int = 0  # optimiser steps taken
    best_metric: float | None = None
    best_epoch: int = 0
    last_metrics: dict[str, float] = field(default_factory=dict)
    step_in_epoch: int = 0  # batches of the current epoch already trained (mid-epoch saves)
    epoch_sums: dict[str, float] = field(default_factory=dict)


def stopped_text(
    run_dir: Path,
    epoch: int,
    step: tuple[int, int] | None = None,
    after: bool = False,
    why: BaseException | None = None,
) -> str:
    """The one line of a run stopped by SIGTERM: where it stopped and how to go on.

    ``epoch`` (1-based) was in progress, stopped and checkpointed at ``step = (done, of)``, or
    finished and checkpointed (``after``); ``why``: the ``Terminated`` caught by ``fit``,
    kept when it already says where (else the stop came outside a safe point)."""
    if why is not None and str(why) != "stopped by SIGTERM":
        return str(why)
    last = run_dir / "last.pth"
    if step is not None:
        where = f"at step {step[0]} of {step[1]} in epoch {epoch}"
    else:
        where = f"after epoch {epoch}" if after else f"during epoch {epoch}"
    if not last.exists():
        return f"{run_dir}: stopped by SIGTERM {where}; no checkpoint was written yet"
    kept = "the last checkpoint is" if why is not None else "checkpointed in"
    return f"{run_dir}: stopped by SIGTERM {where}; {kept} {last}: continue with --resume"
