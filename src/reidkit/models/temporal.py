"""Temporal aggregation: a clip's per-frame feature vectors -> one clip feature.

``TemporalPool("avg")`` averages the frames. ``TemporalPool("attention")`` learns a weight per
frame (temporal attention, as in Gao & Nevatia 2018 "Revisiting temporal modeling for
video-based person ReID"): a small MLP scores each frame's feature, a softmax over the clip
turns the scores into weights, and the clip feature is the weighted sum. Its last layer
starts at zero, so a new model begins as the average and learns to move away from it.
"""

from __future__ import annotations

import torch
from torch import nn

from reidkit.utils.errors import ConfigError

TEMPORAL = ("avg", "attention")


class TemporalPool(nn.Module):
    """``(B, T, C)`` frame features -> ``(B, C)`` clip features (see the module docstring)."""

    def __init__(self, kind: str = "avg", channels: int = 0, hidden: int = 0) -> None:
        super().__init__()
        if kind not in TEMPORAL:
            raise ConfigError(
                f"video.temporal = {kind!r} is not valid (valid: {', '.join(TEMPORAL)})"
            )
        self.kind = kind
        self.score: nn.Module | None = None
        if self.kind == "attention":
            if channels < 1:
                raise ConfigError("temporal attention needs the feature width (channels >= 1)")
            hidden = hidden or max(8, channels // 16)
            last = nn.Linear(hidden, 1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.score = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), last)

    def weights(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` weights of the frames (each row sums to 1)."""
        b, t = frames.shape[:2]
        if self.score is None:
            return frames.new_full((b, t), 1.0 / t)
        scores = self.score(frames).squeeze(-1).float()
        return torch.softmax(scores, dim=1).to(frames.dtype)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the frames."""
        return (self.weights(frames).unsqueeze(-1) * frames).sum(1)
