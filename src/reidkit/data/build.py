"""``build_dataset``: pick a layout (named, or detected from the folder) and load it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reidkit.data.layouts.market import MARKET_SPLITS, load_market
from reidkit.data.records import ReidDataset
from reidkit.utils.errors import DataError

Loader = Callable[[Path], ReidDataset]

LAYOUTS: dict[str, Loader] = {
    "market1501": lambda root: load_market(root, "market1501"),
    "dukemtmc": lambda root: load_market(root, "dukemtmc"),
}


def _is_market(root: Path) -> bool:
    return all((root / d).is_dir() for d in MARKET_SPLITS.values())


def detect_layout(root: str | Path) -> str:
    """The layout name of a dataset folder, from the sub-folders it contains."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such dataset folder or .lmdb file")
    if _is_market(root):
        return "dukemtmc" if "duke" in root.name.lower() else "market1501"
    raise DataError(
        f"{root}: cannot detect the dataset layout (expected e.g. bounding_box_train/, query/, "
        f"bounding_box_test/ for Market-1501); set data.layout to one of {', '.join(LAYOUTS)}"
    )


def load_dataset(root: str | Path, layout: str = "auto", **options: Any) -> ReidDataset:
    """Load the dataset at ``root`` with the named ``layout`` (``auto`` detects it)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such dataset folder or .lmdb file")
    name = detect_layout(root) if layout == "auto" else layout
    if name not in LAYOUTS:
        raise DataError(
            f"data.layout = {layout!r} is not a known layout; valid: auto, {', '.join(LAYOUTS)}"
        )
    return LAYOUTS[name](root, **options)


def build_dataset(cfg: Any) -> ReidDataset:
    """The ``ReidDataset`` of ``cfg.batches_dir`` with layout ``cfg.data.layout``."""
    return load_dataset(cfg.batches_dir, cfg.data.layout)
