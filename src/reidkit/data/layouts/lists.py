"""Layouts described by folders or list files: MSMT17, CUHK03-NP and VeRi-776.

* MSMT17: ``train/`` and ``test/`` image folders plus ``list_train.txt``, ``list_val.txt``,
  ``list_query.txt``, ``list_gallery.txt`` with lines ``0000/0000_000_01_0303morning_0015_0.jpg 0``
  (path below ``train/`` or ``test/``, then the pid; the camera is the third ``_`` field,
  1-based). Train = list_train + list_val (as torchreid does), query / gallery from their lists.
* CUHK03-NP: ``detected/`` and/or ``labeled/``, each a Market-1501 folder
  (``data.cuhk03_subset`` picks one).
* VeRi-776: ``image_train/``, ``image_query/``, ``image_test/``; names like
  ``0001_c001_00016450_0.jpg`` (vehicle id, 1-based camera).

Without the train lists (MSMT17) or ``image_train/`` (VeRi-776) a dataset is test-only.
"""

from __future__ import annotations

from pathlib import Path

from reidkit.data.layouts.common import SkipLog, list_images, optional_train, require_nonempty
from reidkit.data.layouts.market import load_market, read_market_split
from reidkit.data.records import Record, ReidDataset, relabel
from reidkit.data.sources import FolderSource
from reidkit.utils.errors import DataError

MSMT_LISTS = {
    "train": "list_train.txt",
    "val": "list_val.txt",
    "query": "list_query.txt",
    "gallery": "list_gallery.txt",
}
VERI_SPLITS = {"train": "image_train", "query": "image_query", "gallery": "image_test"}
CUHK03_SUBSETS = ("detected", "labeled")


def read_msmt_list(root: Path, list_name: str, folder: str, skips: SkipLog) -> list[Record]:
    """Records of one MSMT17 list file (paths made relative to ``root``)."""
    path = root / list_name
    if not path.is_file():
        raise DataError(f"{path}: list file not found (MSMT17 layout)")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            rel, pid = parts[0], int(parts[1])
            camid = int(Path(rel).name.split("_")[2]) - 1
        except (IndexError, ValueError):
            skips.add("list line does not parse as '<path> <pid>'", f"{path}:{n}")
            continue
        full = root / folder / rel
        if not full.is_file():
            skips.add("listed image file is missing", full)
            continue
        if full.stat().st_size == 0:
            skips.add("empty file (0 bytes)", full)
            continue
        records.append(Record(f"{folder}/{rel}", pid, camid))
    return records


def load_msmt17(root: str | Path) -> ReidDataset:
    """Read an MSMT17 folder (list files + ``train/`` / ``test/``)."""
    root = Path(root)
    skips = SkipLog()
    train: list[Record] = []
    for lst in ("train", "val"):  # no train / val lists: a test-only dataset
        if (root / MSMT_LISTS[lst]).is_file():
            train += read_msmt_list(root, MSMT_LISTS[lst], "train", skips)
    if (root / MSMT_LISTS["train"]).is_file():
        require_nonempty(train, root / MSMT_LISTS["train"], "train", skips)
    query = read_msmt_list(root, MSMT_LISTS["query"], "test", skips)
    gallery = read_msmt_list(root, MSMT_LISTS["gallery"], "test", skips)
    for split, records in (("query", query), ("gallery", gallery)):
        require_nonempty(records, root / MSMT_LISTS[split], split, skips)
    skips.warn()
    train, mapping = relabel(sorted(set(train), key=lambda r: r.path))
    return ReidDataset(
        "msmt17",
        train,
        query,
        gallery,
        len(mapping),
        FolderSource(root),
        skipped=skips.total,
        problems=skips.lines(),
    )


def cuhk03_subsets(root: Path) -> list[str]:
    """The CUHK03-NP subsets present under ``root`` (Market folders inside)."""
    return [s for s in CUHK03_SUBSETS if (root / s / "bounding_box_train").is_dir()]


def load_cuhk03_np(root: str | Path, subset: str = "detected") -> ReidDataset:
    """Read CUHK03-NP: the ``detected`` or ``labeled`` Market-style subset."""
    root = Path(root)
    present = cuhk03_subsets(root)
    if subset not in present:
        raise DataError(
            f"{root / subset}: CUHK03-NP subset not found; data.cuhk03_subset must be one of "
            f"{', '.join(present) or 'detected, labeled (neither exists)'}"
        )
    ds = load_market(root / subset, name=f"cuhk03_np_{subset}")
    ds.source = FolderSource(root)
    for split in ("train", "query", "gallery"):
        recs = getattr(ds, split)
        setattr(ds, split, [Record(f"{subset}/{r.path}", r.pid, r.camid) for r in recs])
    return ds


def load_veri776(root: str | Path) -> ReidDataset:
    """Read VeRi-776 (``image_train`` / ``image_query`` / ``image_test``)."""
    root = Path(root)
    skips = SkipLog()
    splits = {}
    for split, folder in VERI_SPLITS.items():
        if split == "train" and optional_train(root / folder):
            splits[split] = []  # a test-only dataset
            continue
        splits[split] = read_market_split(root, folder, skips, keep_junk=split != "train")
        require_nonempty(splits[split], root / folder, split, skips)
    skips.warn()
    train, mapping = relabel(splits["train"])
    return ReidDataset(
        "veri776",
        train,
        splits["query"],
        splits["gallery"],
        len(mapping),
        FolderSource(root),
        skipped=skips.total,
        problems=skips.lines(),
    )


def has_images(folder: Path) -> bool:
    """Whether ``folder`` directly holds at least one image file."""
    return folder.is_dir() and bool(list_images(folder))
