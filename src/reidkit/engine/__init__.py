"""Training engine: the loop (``Trainer`` over built parts), callbacks, optimisers and
schedules, run logging. Assembling a run from a config is ``reidkit.app.build_run``; the
checkpoint format is ``reidkit.models.checkpoint`` (re-exported here)."""

from reidkit.engine.callbacks import Callback, FreezeSchedule
from reidkit.engine.trainer import Trainer, TrainingError, TrainSettings
from reidkit.models.checkpoint import load_checkpoint, load_model_from_checkpoint, save_checkpoint

__all__ = [
    "Callback",
    "FreezeSchedule",
    "TrainSettings",
    "Trainer",
    "TrainingError",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "save_checkpoint",
]
