"""The ``video`` section: tracklet (video) ReID, sequence sampling and temporal pooling.

A video dataset (MARS, iLIDS-VID, PRID2011, DukeMTMC-VideoReID, or an image dataset grouped
into tracklets) holds tracklets: ordered frames of one person in one camera. Training feeds
clips of ``seq_len`` frames; the model aggregates each clip's frame features over time
(``temporal``); evaluation turns every tracklet into one feature (``test_sampling``, ``pool``)
and scores query tracklets against gallery tracklets. docs/datasets.md and
docs/evaluation.md explain every key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reidkit.config.section import Section


class VideoParams(Section):
    """Tracklet (video) ReID (new key ``video``; used when the dataset holds tracklets)."""

    seq_len: int = Field(
        4,
        ge=1,
        description="Frames per clip: each training item is a clip of seq_len frames of one "
        "tracklet; at test, clips of seq_len frames are what a temporal-attention model "
        "aggregates.",
    )
    train_sampling: Literal["random", "evenly"] = Field(
        "random",
        description="Training clips: random = one random frame from each of seq_len equal "
        "segments of the tracklet, in order (restricted random sampling, new every epoch); "
        "evenly = seq_len frames evenly spaced over the tracklet (the same every epoch). A "
        "tracklet shorter than seq_len repeats frames.",
    )
    test_sampling: Literal["all", "evenly"] = Field(
        "all",
        description="Test frames of each tracklet: all = every frame (a temporal-attention "
        "model sees them in consecutive chunks of seq_len); evenly = seq_len frames evenly "
        "spaced (one clip).",
    )
    temporal: Literal["avg", "attention"] = Field(
        "avg",
        description="How the model aggregates a clip's per-frame features: avg = temporal "
        "average; attention = learned per-frame weights (softmax over the clip). The "
        "single-frame ONNX / OpenVINO export leaves this out (frames are pooled outside).",
    )
    pool: Literal["avg", "max"] = Field(
        "avg",
        description="How the frame (or clip) features of a tracklet are pooled into the "
        "tracklet's feature at evaluation (`reidkit eval --pool` overrides it).",
    )
    split: int = Field(
        0,
        ge=0,
        description="Which train / test split of an iLIDS-VID or PRID2011 split file to use "
        "(0-based; the files hold 10).",
    )
    min_frames: int = Field(
        1,
        ge=1,
        description="Tracklets with fewer frames are left out (and counted as skipped).",
    )
