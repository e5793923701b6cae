"""Training engine: the loop, optimisers and schedules, checkpoints and run logging."""

from reidkit.engine.checkpoint import load_checkpoint, load_model_from_checkpoint, save_checkpoint
from reidkit.engine.trainer import Trainer, TrainingError, train

__all__ = [
    "Trainer",
    "TrainingError",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "save_checkpoint",
    "train",
]
