"""Writing packed stores (``pack_dataset``) and unpacking them (``unpack_store``).

The format is described in ``reidkit.data.store``: the images' bytes under their record paths,
a JSON metadata entry, and a completion marker committed last. ``pack_dataset`` writes
``OUT.partial`` and renames it only when complete, so an interrupted pack never loads.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import lmdb
from tqdm import tqdm

from reidkit.data.build import detect_layout, load_dataset
from reidkit.data.records import ReidDataset
from reidkit.data.store import DONE_KEY, MANIFEST, META_KEY, dataset_meta, load_store
from reidkit.data.video_records import require_images
from reidkit.utils.errors import DataError, DiskError
from reidkit.utils.files import atomic_write_text
from reidkit.utils.write_errors import write_guard


def _unique_records(ds: ReidDataset) -> list[str]:
    seen: dict[str, None] = {}
    for recs in ds.splits.values():
        for r in recs:
            seen.setdefault(r.path, None)
    return list(seen)


def _write_store(
    partial: Path,
    ds: ReidDataset,
    keys: list[str],
    name: str,
    map_size: int,
    progress: bool,
    commit_every: int,
) -> None:
    """Write every image, the metadata and (last) the completion marker into ``partial``."""
    env = lmdb.open(str(partial), subdir=False, lock=False, map_size=map_size)
    try:
        txn = env.begin(write=True)
        for n, key in enumerate(
            tqdm(keys, desc=f"packing {len(keys)} images", disable=not progress, leave=False)
        ):
            txn.put(key.encode("utf-8"), ds.source.read(key))
            if (n + 1) % commit_every == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.put(META_KEY, json.dumps(dataset_meta(ds, name)).encode("utf-8"))
        txn.commit()
        with env.begin(write=True) as txn:
            txn.put(DONE_KEY, str(len(keys)).encode())
        env.sync(True)
    finally:
        env.close()


def pack_dataset(
    root: str | Path,
    out: str | Path,
    layout: str = "auto",
    progress: bool = True,
    commit_every: int = 2000,
) -> dict[str, Any]:
    """Pack the dataset at ``root`` into the single LMDB file ``out`` (atomic)."""
    out = Path(out)
    ds = load_dataset(root, layout)
    require_images(ds, "reidkit pack")
    name = detect_layout(root) if layout == "auto" else layout
    if name in ("lmdb", "manifest"):  # re-packing: keep the original layout's name
        name = ds.name
    keys = _unique_records(ds)
    base = Path(ds.source.root)
    total = base.stat().st_size if base.is_file() else sum(os.path.getsize(base / k) for k in keys)
    partial = Path(f"{out}.partial")
    try:
        with write_guard(out):  # disk full, read-only, ...: one line, out unchanged
            partial.unlink(missing_ok=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            _write_store(
                partial, ds, keys, name, int(total * 1.5) + (64 << 20), progress, commit_every
            )
            os.replace(partial, out)
    except DiskError:
        with contextlib.suppress(OSError):  # a failed write frees its space (a kill leaves it)
            partial.unlink(missing_ok=True)
        raise
    return {
        "store": str(out),
        "layout": name,
        "images": len(keys),
        "bytes": out.stat().st_size,
        "train": len(ds.train),
        "query": len(ds.query),
        "gallery": len(ds.gallery),
    }


def unpack_store(store: str | Path, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Write the images of a store back to ``out_dir`` plus the dataset manifest."""
    ds = load_store(store)
    out_dir = Path(out_dir)
    keys = _unique_records(ds)
    for key in keys:  # every key is checked before anything is written
        parts = Path(key).parts
        if not key or ".." in parts or Path(key).is_absolute() or "\x00" in key:
            raise DataError(
                f"{store}: unsafe key {key!r} (outside the output folder); nothing written"
            )
    if (out_dir / MANIFEST).exists():
        raise DataError(f"{out_dir}: already holds an unpacked dataset; choose an empty folder")
    written: list[Path] = []
    try:
        with write_guard(out_dir):
            for key in tqdm(
                keys, desc=f"unpacking {len(keys)} images", disable=not progress, leave=False
            ):
                target = out_dir / key
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(target)
                target.write_bytes(ds.source.read(key))
            atomic_write_text(out_dir / MANIFEST, json.dumps(dataset_meta(ds, ds.name)))
    except DiskError:
        with contextlib.suppress(OSError):
            for path in written:  # no half-written image stays behind
                path.unlink(missing_ok=True)
        raise
    return {"folder": str(out_dir), "images": len(keys)}
