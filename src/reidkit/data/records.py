"""Records and datasets: what every layout produces and every loader consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from reidkit.utils.errors import DataError


@dataclass(frozen=True)
class Record:
    """One image: ``path`` is its key (relative to the dataset root, or an LMDB key)."""

    path: str
    pid: int
    camid: int


@runtime_checkable
class ImageSource(Protocol):
    """Where encoded image bytes come from (a folder or a packed LMDB store)."""

    root: str

    def read(self, path: str) -> bytes:
        """The encoded bytes of the image stored under ``path``."""
        ...


@dataclass
class ReidDataset:
    """Train / query / gallery records of one dataset plus the source that holds the images.

    Train pids are relabelled ``0..num_train_ids-1``; query and gallery keep the original
    pids (``-1`` junk, ``0`` distractor under the Market protocol). ``skipped`` counts files
    that were left out while listing (names that do not parse, unreadable files) and
    ``problems`` holds one human-readable line per kind of problem found.
    """

    name: str
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    num_train_ids: int
    source: ImageSource
    class_names: list[str] | None = None
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def splits(self) -> dict[str, list[Record]]:
        """The three record lists by name."""
        return {"train": self.train, "query": self.query, "gallery": self.gallery}


def require_train(dataset: ReidDataset) -> None:
    """``DataError`` (one line) when ``dataset`` has no train split: it can only be evaluated on."""
    if not dataset.train:
        raise DataError(
            f"{dataset.source.root}: the train split has no usable images (a test-only dataset: "
            "query and gallery only); train on a dataset with a train split, and evaluate "
            "this one with `reidkit eval RUN --data DIR`"
        )


def relabel(records: Sequence[Record]) -> tuple[list[Record], dict[int, int]]:
    """Map the pids of ``records`` to ``0..N-1`` in sorted order of the original pids."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [Record(r.path, mapping[r.pid], r.camid) for r in records], mapping
