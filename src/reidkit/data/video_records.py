"""Tracklet records and video datasets: what every video layout produces and the video
loaders consume.

A ``TrackletRecord`` is one tracklet: the ordered keys of its frames (paths relative to the
dataset root, as ``Record.path``), the identity and the camera. A ``VideoDataset`` is the
video twin of ``ReidDataset``: train / query / gallery lists of tracklets plus the image
source holding the frames. The Market protocol holds for tracklets too: pid ``-1`` junk, ``0``
a distractor, train pids relabelled ``0..N-1``.

``tracklets_from_images`` turns an image dataset into a video one by grouping each split's
images by (pid, camera), frames in the order of the frame numbers in Market-style names
(``0001_c1s1_000451_01.jpg``: sequence 1, frame 451; a ``reidkit crops --labelled`` folder
names its crops that way). Junk and distractor images stay single-frame tracklets: they are
not one person.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from reidkit.data.records import ImageSource, Record, ReidDataset
from reidkit.utils.errors import DataError

FRAME_FIELD = re.compile(r"_c\d+(?:s(\d+))?_f?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class TrackletRecord:
    """One tracklet: ``frames`` (keys of its images, in time order), ``pid`` and ``camid``."""

    frames: tuple[str, ...]
    pid: int
    camid: int

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class VideoDataset:
    """Train / query / gallery tracklets of one dataset plus the source holding the frames.

    The same fields as ``ReidDataset`` (``skipped`` counts files or tracklets left out while
    listing, ``problems`` holds one line per kind), with tracklets instead of images.
    """

    name: str
    train: list[TrackletRecord]
    query: list[TrackletRecord]
    gallery: list[TrackletRecord]
    num_train_ids: int
    source: ImageSource
    class_names: list[str] | None = None
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def splits(self) -> dict[str, list[TrackletRecord]]:
        """The three tracklet lists by name."""
        return {"train": self.train, "query": self.query, "gallery": self.gallery}

    def num_frames(self, split: str | None = None) -> int:
        """Frames of one split (or of all three)."""
        names = [split] if split else list(self.splits)
        return sum(len(t) for name in names for t in self.splits[name])


def is_video(dataset: object) -> bool:
    """Whether ``dataset`` holds tracklets (a ``VideoDataset``) rather than images."""
    return isinstance(dataset, VideoDataset)


def frame_key(path: str) -> tuple[int, int, str]:
    """Sort key of a frame: (sequence, frame number) from a Market-style name, then the name."""
    name = path.rsplit("/", 1)[-1]
    m = FRAME_FIELD.search(name)
    if m is None:
        return (0, 0, name)
    return (int(m.group(1) or 0), int(m.group(2)), name)


def group_tracklets(records: Sequence[Record], test: bool = True) -> list[TrackletRecord]:
    """Tracklets of image records: one per (pid, camera), frames ordered by ``frame_key``.

    In a ``test`` split images of pid ``<= 0`` (junk, distractors) are each a tracklet of
    their own (train pids are relabelled from 0, so there 0 is a person). Tracklets come
    sorted by (pid, camera).
    """
    groups: dict[tuple[int, int], list[str]] = {}
    single: list[TrackletRecord] = []
    for r in records:
        if test and r.pid <= 0:
            single.append(TrackletRecord((r.path,), r.pid, r.camid))
        else:
            groups.setdefault((r.pid, r.camid), []).append(r.path)
    out = [
        TrackletRecord(tuple(sorted(paths, key=frame_key)), pid, cam)
        for (pid, cam), paths in sorted(groups.items())
    ]
    return out + single


def tracklets_from_images(dataset: ReidDataset) -> VideoDataset:
    """The video dataset of an image dataset: each split grouped by ``group_tracklets``."""
    if is_video(dataset):
        return dataset  # type: ignore[return-value]
    return VideoDataset(
        name=f"{dataset.name}_tracklets",
        train=group_tracklets(dataset.train, test=False),
        query=group_tracklets(dataset.query),
        gallery=group_tracklets(dataset.gallery),
        num_train_ids=dataset.num_train_ids,
        source=dataset.source,
        class_names=dataset.class_names,
        skipped=dataset.skipped,
        problems=list(dataset.problems),
    )


def image_view(dataset: VideoDataset) -> ReidDataset:
    """An image dataset made of a video dataset's frames: every train frame, and the middle
    frame of each query / gallery tracklet (what a single-frame check, such as an export's
    accuracy check, scores)."""

    def middle(tracks: Sequence[TrackletRecord]) -> list[Record]:
        return [Record(t.frames[(len(t) - 1) // 2], t.pid, t.camid) for t in tracks]

    return ReidDataset(
        name=f"{dataset.name}_frames",
        train=frame_records(dataset.train)[0],
        query=middle(dataset.query),
        gallery=middle(dataset.gallery),
        num_train_ids=dataset.num_train_ids,
        source=dataset.source,
        class_names=dataset.class_names,
        skipped=dataset.skipped,
        problems=list(dataset.problems),
    )


def all_frames(dataset: VideoDataset) -> ReidDataset:
    """Every frame of every split as an image record (``reidkit data info`` counts these)."""
    ds = image_view(dataset)
    ds.query, ds.gallery = frame_records(dataset.query)[0], frame_records(dataset.gallery)[0]
    ds.name = dataset.name
    return ds


def require_images(dataset: object, what: str) -> None:
    """``DataError`` (one line) when a command that works on images gets a video dataset."""
    if isinstance(dataset, VideoDataset):
        raise DataError(
            f"{dataset.source.root}: {what} works on image datasets, and {dataset.name} is a "
            "video (tracklet) layout; `reidkit data info` describes it"
        )


def keep_long(
    tracklets: Sequence[TrackletRecord], min_frames: int
) -> tuple[list[TrackletRecord], int]:
    """``(tracklets with at least min_frames frames, how many were shorter)``."""
    kept = [t for t in tracklets if len(t) >= min_frames]
    return kept, len(tracklets) - len(kept)


def frame_records(tracklets: Sequence[TrackletRecord]) -> tuple[list[Record], list[list[int]]]:
    """Every frame as a ``Record`` (one flat list, the loaders' decode order) and, per
    tracklet, the indices of its frames in that list."""
    flat: list[Record] = []
    spans: list[list[int]] = []
    for t in tracklets:
        start = len(flat)
        flat += [Record(p, t.pid, t.camid) for p in t.frames]
        spans.append(list(range(start, len(flat))))
    return flat, spans


def relabel_tracklets(
    tracklets: Sequence[TrackletRecord],
) -> tuple[list[TrackletRecord], dict[int, int]]:
    """Map the pids of ``tracklets`` to ``0..N-1`` in sorted order of the original pids."""
    mapping = {pid: i for i, pid in enumerate(sorted({t.pid for t in tracklets}))}
    return [TrackletRecord(t.frames, mapping[t.pid], t.camid) for t in tracklets], mapping


def require_tracklets(tracklets: Sequence[TrackletRecord], where: object, split: str) -> None:
    """``DataError`` naming ``where`` when a split ended up with no tracklet."""
    if not tracklets:
        raise DataError(f"{where}: the {split} split has no usable tracklets")


def require_video_train(dataset: VideoDataset) -> None:
    """``DataError`` (one line) when ``dataset`` has no train tracklets (test-only)."""
    if not dataset.train:
        raise DataError(
            f"{dataset.source.root}: the train split has no tracklets (a test-only dataset: "
            "query and gallery only); train on a dataset with a train split, and evaluate "
            "this one with `reidkit eval RUN --data DIR`"
        )
