"""``build_dataset``: pick a layout (named, or detected from the folder) and load it.

Detection order (first match wins): a ``.lmdb`` file (packed store); a
``reidkit_dataset.json`` manifest (from ``reidkit unpack``); ``bounding_box_train/`` +
``query/`` + ``bounding_box_test/`` (Market-1501, or DukeMTMC-reID when the folder name says
duke); ``image_train/`` (VeRi-776); ``list_train.txt`` (MSMT17); ``detected/`` or
``labeled/`` holding Market folders (CUHK03-NP); ``train/`` + ``val/`` class folders
(ImageFolder); identity folders (custom, also ``query/<id>/`` + ``gallery/<id>/`` alone).
Video (tracklet) layouts are detected right after the manifest: ``bbox_test/`` + ``info/``
(MARS), ``[i-LIDS-VID/]sequences/cam1|cam2`` (iLIDS-VID), ``[prid_2011/]multi_shot/cam_a|cam_b``
(PRID2011), ``query/<pid>/<tracklet>/`` (DukeMTMC-VideoReID); they load as a
``VideoDataset``. Layout ``tracklets`` (never detected, always named) loads the detected image
layout and groups each split into tracklets (``video_records.tracklets_from_images``).
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
from reidkit.data.layouts.mars import is_duke_video, load_duke_video, load_mars
from reidkit.data.layouts.video_pairs import ilids_base, load_ilidsvid, load_prid2011, prid_base
from reidkit.data.records import ReidDataset
from reidkit.data.store import MANIFEST, load_manifest, load_store
from reidkit.data.video_records import (
    VideoDataset,
    keep_long,
    require_tracklets,
    tracklets_from_images,
)
from reidkit.utils.errors import DataError

AnyDataset = ReidDataset | VideoDataset
LAYOUTS: dict[str, Callable[..., AnyDataset]] = {
    "market1501": lambda root, **_: load_market(root, "market1501"),
    "dukemtmc": lambda root, **_: load_market(root, "dukemtmc"),
    "msmt17": lambda root, **_: load_msmt17(root),
    "cuhk03_np": lambda root, cuhk03_subset="detected", **_: load_cuhk03_np(root, cuhk03_subset),
    "veri776": lambda root, **_: load_veri776(root),
    "custom": lambda root, **_: load_custom(root),
    "imagefolder": lambda root, **_: load_imagefolder(root),
    "lmdb": lambda root, **_: load_store(root),
    "manifest": lambda root, **_: load_manifest(root),
    "mars": lambda root, min_frames=1, **_: load_mars(root, min_frames),
    "ilidsvid": lambda root, video_split=0, min_frames=1, **_: load_ilidsvid(
        root, video_split, min_frames
    ),
    "prid2011": lambda root, video_split=0, min_frames=1, **_: load_prid2011(
        root, video_split, min_frames
    ),
    "dukemtmc_video": lambda root, min_frames=1, **_: load_duke_video(root, min_frames),
    "tracklets": lambda root, **options: load_tracklets(root, **options),
}
VIDEO_LAYOUTS = ("mars", "ilidsvid", "prid2011", "dukemtmc_video", "tracklets")


def load_tracklets(root: str | Path, min_frames: int = 1, **options: Any) -> VideoDataset:
    """The detected image layout at ``root`` with each split grouped into tracklets by
    (pid, camera), tracklets shorter than ``min_frames`` left out."""
    images = load_dataset(root, "auto", **options)
    if isinstance(images, VideoDataset):
        return images
    ds = tracklets_from_images(images)
    for split, tracks in ds.splits.items():
        kept, short = keep_long(tracks, min_frames)
        setattr(ds, split, kept)
        if short:
            ds.skipped += short
            ds.problems.append(f"{short} {split} tracklet(s) shorter than {min_frames} frames")
        if split != "train" or images.train:
            require_tracklets(kept, root, split)
    return ds


def _detect_here(root: Path) -> str | None:
    if root.is_file():
        return "lmdb" if root.suffix == ".lmdb" else None
    if (root / MANIFEST).is_file():
        return "manifest"
    video = _detect_video(root)
    if video is not None:
        return video
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


def _detect_video(root: Path) -> str | None:
    """The video layout of a folder, if it is one (see the module docstring)."""
    if (root / "bbox_test").is_dir() and (root / "info").is_dir():
        return "mars"
    if ilids_base(root) is not None:
        return "ilidsvid"
    if prid_base(root) is not None:
        return "prid2011"
    if is_duke_video(root):
        return "dukemtmc_video"
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


def load_dataset(root: str | Path, layout: str = "auto", **options: Any) -> AnyDataset:
    """Load the dataset at ``root`` with the named ``layout`` (``auto`` detects it): a
    ``ReidDataset``, or a ``VideoDataset`` for a video layout.

    ``options``: ``cuhk03_subset`` ("detected" | "labeled") for CUHK03-NP; ``video_split``
    (iLIDS-VID / PRID2011 split index) and ``min_frames`` (shortest tracklet kept) for the
    video layouts.
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
    elif path.suffix == ".lmdb" and path.is_file() and layout != "tracklets":
        ds = load_store(path)  # a store remembers its layout; a named layout must agree
        return ds
    return LAYOUTS[layout](path, **options)


def build_dataset(cfg: Any) -> AnyDataset:
    """The dataset of ``cfg.batches_dir`` with layout ``cfg.data.layout`` (a ``VideoDataset``
    for a video layout, with ``cfg.video.split`` and ``cfg.video.min_frames``)."""
    return load_dataset(
        cfg.batches_dir,
        cfg.data.layout,
        cuhk03_subset=cfg.data.cuhk03_subset,
        video_split=cfg.video.split,
        min_frames=cfg.video.min_frames,
    )
