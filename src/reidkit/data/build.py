"""``build_dataset``: pick a layout (named, or detected from the folder) and load it.

Detection order (first match wins): a ``.lmdb`` file (packed store); a
``reidkit_dataset.json`` manifest (from ``reidkit unpack``); ``bounding_box_train/`` +
``query/`` + ``bounding_box_test/`` (Market-1501, or DukeMTMC-reID when the folder name says
duke); ``image_train/`` (VeRi-776); ``list_train.txt`` (MSMT17); ``detected/`` or
``labeled/`` holding Market folders (CUHK03-NP); ``train/`` + ``val/`` class folders
(ImageFolder); identity folders (custom, also ``query/<id>/`` + ``gallery/<id>/`` alone).
A dataset may lack its train split (test-only: evaluate on it, not train). A folder
holding a single sub-folder that is a dataset (e.g. ``Market-1501-v15.09.15/``) is looked
into.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reidkit.data.layouts.folders import identity_folders, load_custom, load_imagefolder
from reidkit.data.layouts.lists import (
    MSMT_LISTS,
    VERI_SPLITS,
    cuhk03_subsets,
    has_images,
    load_cuhk03_np,
    load_msmt17,
    load_veri776,
)
from reidkit.data.layouts.market import MARKET_SPLITS, load_market
from reidkit.data.records import ReidDataset
from reidkit.data.store import MANIFEST, load_manifest, load_store
from reidkit.utils.errors import DataError

LAYOUTS: dict[str, Callable[..., ReidDataset]] = {
    "market1501": lambda root, **_: load_market(root, "market1501"),
    "dukemtmc": lambda root, **_: load_market(root, "dukemtmc"),
    "msmt17": lambda root, **_: load_msmt17(root),
    "cuhk03_np": lambda root, cuhk03_subset="detected", **_: load_cuhk03_np(root, cuhk03_subset),
    "veri776": lambda root, **_: load_veri776(root),
    "custom": lambda root, **_: load_custom(root),
    "imagefolder": lambda root, **_: load_imagefolder(root),
    "lmdb": lambda root, **_: load_store(root),
    "manifest": lambda root, **_: load_manifest(root),
}


def _detect_here(root: Path) -> str | None:
    if root.is_file():
        return "lmdb" if root.suffix == ".lmdb" else None
    if (root / MANIFEST).is_file():
        return "manifest"
    market_dirs = (MARKET_SPLITS["train"], MARKET_SPLITS["gallery"])
    if any((root / d).is_dir() for d in market_dirs) or has_images(root / MARKET_SPLITS["query"]):
        # the loader names what is missing; query/<id>/ folders alone are the custom layout
        return "dukemtmc" if "duke" in root.name.lower() else "market1501"
    if (root / VERI_SPLITS["train"]).is_dir():
        return "veri776"
    if (root / MSMT_LISTS["train"]).is_file():
        return "msmt17"
    if cuhk03_subsets(root):
        return "cuhk03_np"
    if identity_folders(root / "train") and identity_folders(root / "val"):
        return "imagefolder"
    if identity_folders(root / "train") or len(identity_folders(root)) >= 2:
        return "custom"
    if identity_folders(root / "query") and identity_folders(root / "gallery"):
        return "custom"  # test-only: query/<id>/ + gallery/<id>/
    return None


def resolve_root(root: str | Path) -> tuple[Path, str]:
    """``(dataset root, layout name)`` detected for ``root`` (looking one folder down)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such dataset folder or .lmdb file")
    found = _detect_here(root)
    if found is None and root.is_dir():
        subs = [d for d in root.iterdir() if d.is_dir()]
        if len(subs) == 1 and (inner := _detect_here(subs[0])) not in (None, "custom"):
            return subs[0], inner
    if found is None:
        raise DataError(
            f"{root}: cannot detect the dataset layout (expected e.g. bounding_box_train/, "
            f"query/, bounding_box_test/ for Market-1501, or <identity>/*.jpg folders); "
            f"set data.layout to one of {', '.join(LAYOUTS)}"
        )
    return root, found


def detect_layout(root: str | Path) -> str:
    """The layout name of a dataset folder or store."""
    return resolve_root(root)[1]


def load_dataset(root: str | Path, layout: str = "auto", **options: Any) -> ReidDataset:
    """Load the dataset at ``root`` with the named ``layout`` (``auto`` detects it).

    ``options``: ``cuhk03_subset`` ("detected" | "labeled") for CUHK03-NP.
    """
    path = Path(root)
    if not path.exists():
        raise DataError(f"{path}: no such dataset folder or .lmdb file")
    if layout == "auto":
        path, layout = resolve_root(path)
    elif layout not in LAYOUTS:
        raise DataError(
            f"data.layout = {layout!r} is not a known layout; valid: auto, {', '.join(LAYOUTS)}"
        )
    elif path.suffix == ".lmdb" and path.is_file():
        ds = load_store(path)  # a store remembers its layout; a named layout must agree
        return ds
    return LAYOUTS[layout](path, **options)


def build_dataset(cfg: Any) -> ReidDataset:
    """The ``ReidDataset`` of ``cfg.batches_dir`` with layout ``cfg.data.layout``."""
    return load_dataset(cfg.batches_dir, cfg.data.layout, cuhk03_subset=cfg.data.cuhk03_subset)
