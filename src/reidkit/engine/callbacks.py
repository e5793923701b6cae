"""The Trainer's callback seam: a few events, in a documented order, each callback resumable.

Order of events for a run of ``N`` epochs::

    on_fit_start(trainer)                       after a resume has been applied
    for each epoch e (0-based) still to train:
        on_epoch_start(trainer, e)              before the first batch (also mid-epoch resumes)
        ... training steps ...
        ... evaluation (when due) ...
        on_epoch_end(trainer, e + 1, stats, metrics)
                                                before the epoch's record and checkpoints are
                                                written, so what a callback changes is saved
    on_fit_end(trainer, summary)                rank 0 and others alike, after the last epoch

A callback that keeps state across epochs returns it from ``state_dict`` (plain, tensor or
number values: checkpoints are read with ``weights_only=True``) and gets it back through
``load_state_dict`` on resume; it is stored under ``checkpoint["callbacks"][name]``.
"""

from __future__ import annotations

from typing import Any

from reidkit.models.build import set_frozen

Trainer = Any  # a reidkit.engine.trainer.Trainer (which imports this module)


class Callback:
    """Base class: override the events you need; ``name`` keys the saved state."""

    name = "callback"

    def on_fit_start(self, trainer: Trainer) -> None:
        """The run is ready (resumed state applied); nothing trained yet in this process."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) is about to train."""

    def on_epoch_end(
        self, trainer: Trainer, epoch: int, stats: dict[str, float], metrics: dict[str, float]
    ) -> None:
        """Epoch ``epoch`` (1-based count of finished epochs) trained and evaluated."""

    def on_fit_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        """Training finished; ``summary`` is what ``fit`` returns."""

    def state_dict(self) -> dict[str, Any]:
        """What must survive a resume (empty for stateless callbacks)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class FreezeSchedule(Callback):
    """Keep named backbone stages frozen for the first ``epochs`` epochs, then train them.

    Stateless: whether a stage is frozen is a function of the epoch, so a resumed run (even
    mid-epoch) freezes exactly what the uninterrupted run froze.
    """

    name = "freeze_schedule"

    def __init__(self, layers: list[str], epochs: int) -> None:
        self.layers, self.epochs = list(layers), int(epochs)

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Freeze before ``epochs``, unfreeze from then on."""
        set_frozen(trainer.model, self.layers, frozen=epoch < self.epochs)
