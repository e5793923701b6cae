"""Folder-per-identity (custom) and ImageFolder (classification) layouts.

Custom ReID data, ``<identity>/`` folders of images, in one of two shapes:

* ``train/<id>/`` and ``test/<id>/`` (or ``query/<id>/`` + ``gallery/<id>/``, used as given);
  ``query/<id>/`` + ``gallery/<id>/`` without ``train/`` is a test-only dataset;
* ``<root>/<id>/`` only: identities sorted by folder name; those at odd positions (2nd, 4th,
  ...) are test identities, the others train identities.

Test identities are split into query / gallery by a fixed rule: the first image of each
identity (sorted by file name) is its query, the rest are gallery. Cameras come from a
``c<N>`` field in the file names (``..._c3_...``, 1-based) when every image has one; otherwise
every query image gets camid 0 and every gallery image camid 1, so no query is matched with
itself or only with same-camera images. An identity with a single test image goes to the
gallery. Pids: train identities 0..N-1 in name order (``class_names`` = their folder names),
test identities their position in the sorted list of all identity folders + 1.

ImageFolder (classification): ``train/<class>/`` and ``val/<class>/``; query = val images,
gallery empty, pid = class index in sorted train class names (``class_names``).
"""

from __future__ import annotations

import re
from pathlib import Path

from reidkit.data.layouts.common import SkipLog, list_images, require_nonempty
from reidkit.data.records import Record, ReidDataset
from reidkit.data.sources import FolderSource
from reidkit.utils.errors import DataError

CAMERA_FIELD = re.compile(r"(?:^|[_\-.])c(\d+)(?=[_\-.s])", re.IGNORECASE)


def identity_folders(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` that hold at least one image, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if d.is_dir() and list_images(d))


def camera_of(name: str) -> int | None:
    """0-based camera from a ``c<N>`` file-name field, or None."""
    m = CAMERA_FIELD.search(name)
    return int(m.group(1)) - 1 if m and int(m.group(1)) >= 1 else None


def _images(root: Path, folder: Path, skips: SkipLog) -> list[tuple[str, int | None]]:
    out = []
    for p in list_images(folder):
        if p.stat().st_size == 0:
            skips.add("empty file (0 bytes)", p)
            continue
        out.append((p.relative_to(root).as_posix(), camera_of(p.name)))
    return out


def _split_test(
    folders: list[Path], pids: dict[str, int], root: Path, skips: SkipLog
) -> tuple[list[Record], list[Record]]:
    """query / gallery of test identities by the documented rule."""
    per_id = {d.name: _images(root, d, skips) for d in folders}
    cams = all(c is not None for imgs in per_id.values() for _, c in imgs)
    query, gallery = [], []
    for name, imgs in per_id.items():
        for j, (path, cam) in enumerate(imgs):
            is_query = j == 0 and len(imgs) > 1
            camid = cam if cams else (0 if is_query else 1)
            (query if is_query else gallery).append(Record(path, pids[name], int(camid)))
    return query, gallery


def _given_split(
    folders: list[Path], pids: dict[str, int], root: Path, skips: SkipLog
) -> list[Record]:
    recs = []
    for d in folders:
        for path, cam in _images(root, d, skips):
            recs.append(Record(path, pids[d.name], 0 if cam is None else cam))
    return recs


def load_custom(root: str | Path) -> ReidDataset:
    """Read a folder-per-identity ReID dataset (see the module docstring for the rules)."""
    root = Path(root)
    skips = SkipLog()
    q_dirs, g_dirs = identity_folders(root / "query"), identity_folders(root / "gallery")
    if identity_folders(root / "train") or (q_dirs and g_dirs):
        train_dirs = identity_folders(root / "train")  # none: a test-only dataset
        test_dirs = identity_folders(root / "test")
    else:
        every = identity_folders(root)
        train_dirs, test_dirs, q_dirs, g_dirs = every[0::2], every[1::2], [], []
    if not train_dirs and not (q_dirs and g_dirs):
        raise DataError(f"{root}: no identity folders with images (expected <root>/<id>/*.jpg)")
    names = sorted({d.name for d in train_dirs + test_dirs + q_dirs + g_dirs})
    test_pid = {n: i + 1 for i, n in enumerate(names)}
    train_names = [d.name for d in train_dirs]
    train = _given_split(train_dirs, {n: i for i, n in enumerate(train_names)}, root, skips)
    if q_dirs or g_dirs:
        query = _given_split(q_dirs, test_pid, root, skips)
        gallery = _given_split(g_dirs, test_pid, root, skips)
    else:
        query, gallery = _split_test(test_dirs, test_pid, root, skips)
    if train_dirs:
        require_nonempty(train, root, "train", skips)
    for split, recs in (("query", query), ("gallery", gallery)):
        require_nonempty(recs, root, split, skips)
    skips.warn()
    return ReidDataset(
        "custom",
        train,
        query,
        gallery,
        len(train_names),
        FolderSource(root),
        class_names=train_names,
        skipped=skips.total,
        problems=skips.lines(),
    )


def load_imagefolder(root: str | Path) -> ReidDataset:
    """Read an ImageFolder classification dataset (``train/<class>/``, ``val/<class>/``)."""
    root = Path(root)
    skips = SkipLog()
    classes = [d.name for d in identity_folders(root / "train")]
    if not classes:
        raise DataError(f"{root / 'train'}: no class folders with images (expected train/<class>/)")
    index = {c: i for i, c in enumerate(classes)}
    train = _given_split(identity_folders(root / "train"), index, root, skips)
    val = []
    for d in identity_folders(root / "val"):
        if d.name not in index:
            skips.add("val class folder has no train folder", d)
            continue
        val += [Record(p, index[d.name], 0) for p, _ in _images(root, d, skips)]
    train = [Record(r.path, r.pid, 0) for r in train]
    require_nonempty(val, root / "val", "val (query)", skips)
    skips.warn()
    return ReidDataset(
        "imagefolder",
        train,
        val,
        [],
        len(classes),
        FolderSource(root),
        class_names=classes,
        skipped=skips.total,
        problems=skips.lines(),
    )
