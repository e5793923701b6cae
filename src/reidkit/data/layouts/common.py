"""Helpers shared by the layouts: listing image files and collecting skipped names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reidkit.utils.errors import DataError
from reidkit.utils.logging import get_logger

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (Thumbs.db and the like ignored)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class SkipLog:
    """Counts files left out while listing, remembering the first one of each reason."""

    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, path: Path | str) -> None:
        """Record that ``path`` was skipped because of ``reason``."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first.setdefault(reason, str(path))

    @property
    def total(self) -> int:
        """Number of files skipped for any reason."""
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        """One line per reason: how many files and the first of them."""
        return [
            f"{n} file(s) skipped: {reason} (first: {self.first[reason]})"
            for reason, n in self.counts.items()
        ]

    def warn(self) -> None:
        """Log one warning per reason."""
        for line in self.lines():
            get_logger().warning(line)


def require_nonempty(records: list, folder: Path, what: str, skips: SkipLog | None = None) -> None:
    """``DataError`` naming ``folder`` when a split ended up with no usable image, with the
    reasons files were skipped (a wrong name pattern, empty files ...) when there are any."""
    if not records:
        why = ""
        if skips is not None and skips.total:
            why = "; " + "; ".join(skips.lines())
        elif not Path(folder).exists():
            why = "; the folder does not exist"
        raise DataError(f"{folder}: the {what} split has no usable images{why}")


def optional_train(folder: Path) -> bool:
    """Whether a layout's train folder is simply absent (or holds no image files at all).

    Such a dataset is *test-only* (query + gallery): it can be evaluated on (the
    cross-domain protocol) but not trained on. A train folder holding images none of which
    is usable is still an error, since that is a mistake rather than a choice.
    """
    return not folder.is_dir() or not list_images(folder)
