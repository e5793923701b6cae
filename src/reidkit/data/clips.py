"""Sequence sampling: which frames of a tracklet make a clip (``video.*_sampling``, ``seq_len``).

Training (one clip of ``seq_len`` frames per tracklet and step):

* ``random``: the tracklet is cut into ``seq_len`` equal segments and one random frame is
  taken from each, in time order (restricted random sampling: every clip spans the whole
  tracklet, and differs every epoch);
* ``evenly``: the middle frame of each of those segments (the same clip every epoch).

Test (the frames that make a tracklet's feature):

* ``evenly``: one clip, as in training;
* ``all``: every frame, in consecutive chunks of ``seq_len`` (the last one may be shorter).

A tracklet shorter than ``seq_len`` gives a clip that repeats frames (still in time order),
so every training clip has exactly ``seq_len`` frames.
"""

from __future__ import annotations

import numpy as np

from reidkit.utils.errors import ConfigError

TRAIN_SAMPLING = ("random", "evenly")
TEST_SAMPLING = ("all", "evenly")


def _check(n: int, seq_len: int) -> None:
    if n < 1 or seq_len < 1:
        raise ConfigError(f"a clip needs frames: tracklet of {n} frames, seq_len {seq_len}")


def segment_bounds(n: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: the ``seq_len`` segments of ``n`` frames as half-open index ranges, each
    at least one frame wide (segments overlap, i.e. frames repeat, when ``n < seq_len``)."""
    _check(n, seq_len)
    i = np.arange(seq_len)
    lo = (i * n) // seq_len
    hi = np.maximum(lo + 1, ((i + 1) * n) // seq_len)
    return lo, hi


def evenly(n: int, seq_len: int) -> list[int]:
    """The middle frame of each of ``seq_len`` equal segments of ``n`` frames."""
    lo, hi = segment_bounds(n, seq_len)
    return ((lo + hi - 1) // 2).tolist()


def restricted_random(n: int, seq_len: int, rng: np.random.Generator) -> list[int]:
    """One random frame from each of ``seq_len`` equal segments of ``n`` frames, in order."""
    lo, hi = segment_bounds(n, seq_len)
    return (lo + (rng.random(seq_len) * (hi - lo)).astype(np.int64)).tolist()


def train_clip(n: int, seq_len: int, method: str, rng: np.random.Generator) -> list[int]:
    """Frame indices (``seq_len`` of them) of one training clip of a tracklet of ``n`` frames."""
    if method == "random":
        return restricted_random(n, seq_len, rng)
    if method == "evenly":
        return evenly(n, seq_len)
    raise ConfigError(
        f"video.train_sampling = {method!r}: expected one of {', '.join(TRAIN_SAMPLING)}"
    )


def eval_clips(n: int, seq_len: int, method: str) -> list[list[int]]:
    """The clips (lists of frame indices) that make the test feature of an ``n``-frame tracklet."""
    if method == "evenly":
        return [evenly(n, seq_len)]
    if method == "all":
        _check(n, seq_len)
        return [list(range(s, min(s + seq_len, n))) for s in range(0, n, seq_len)]
    raise ConfigError(
        f"video.test_sampling = {method!r}: expected one of {', '.join(TEST_SAMPLING)}"
    )
