"""Packed datasets: every encoded image plus all metadata in ONE LMDB file.

A store holds the images' bytes as they are on disk (key = the record path) and a JSON metadata
entry (name, layout, splits with pids / camids, class names, skipped counts), then a completion
marker committed last (``reidkit.data.pack`` writes stores and unpacks them). ``LmdbSource``
opens the file lazily, read-only and without locks, once per process, so DataLoader workers
read it without reopening costs.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import lmdb

from reidkit.data.records import Record, ReidDataset
from reidkit.data.sources import FolderSource
from reidkit.utils.errors import DataError

META_KEY = b"__reidkit_meta__"
DONE_KEY = b"__reidkit_complete__"
FORMAT_VERSION = 1
MANIFEST = "reidkit_dataset.json"
HEADER_PAGE = 4096  # LMDB writes two meta pages of the OS page size first


_ENVS: dict[tuple[int, int, int, str], lmdb.Environment] = {}


class StoreOpenError(DataError):
    """The store file itself cannot be opened (not one bad image: loaders re-raise it)."""


def _forget_envs_after_fork() -> None:
    """In a forked child (a DataLoader worker), drop the parent's environments.

    LMDB environments must not be used across fork, and LMDB refuses to open a file that is
    already open in the process, so the child closes its copies and opens its own lazily.
    """
    for env in _ENVS.values():
        with contextlib.suppress(lmdb.Error):
            env.close()
    _ENVS.clear()


os.register_at_fork(after_in_child=_forget_envs_after_fork)


def _shared_env(path: str) -> lmdb.Environment:
    """One read-only environment per (process, file): LMDB forbids opening a file twice."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise StoreOpenError(f"{path}: cannot open LMDB store ({e.strerror})") from None
    key = (os.getpid(), st.st_dev, st.st_ino, path)
    env = _ENVS.get(key)
    if env is None:
        try:
            env = lmdb.open(
                path,
                subdir=False,
                readonly=True,
                lock=False,
                readahead=False,
                meminit=False,
                max_readers=512,
            )
        except lmdb.Error as e:
            if st.st_size < 2 * HEADER_PAGE:  # LMDB's two meta pages were never written
                raise StoreOpenError(
                    f"{path}: incomplete reidkit store ({st.st_size} bytes, shorter than an "
                    "LMDB header: packing was interrupted?); pack it again"
                ) from None
            raise StoreOpenError(f"{path}: cannot open LMDB store ({e})") from None
        _check_size(env, path, st.st_size)
        _ENVS[key] = env
    return env


def _check_size(env: lmdb.Environment, path: str, size: int) -> None:
    """Refuse a store shorter than its header says: mapping it would end in SIGBUS (a
    truncated copy or download), which no exception handler can catch."""
    need = (int(env.info()["last_pgno"]) + 1) * int(env.stat()["psize"])
    if size < need:
        env.close()
        raise StoreOpenError(
            f"{path}: damaged LMDB store: the file has {size:,} bytes but its header says "
            f"{need:,} (a truncated copy or download?); copy it again or re-run reidkit pack"
        )


class LmdbSource:
    """Reads encoded images from a packed store; the environment opens lazily per process."""

    def __init__(self, path: str | Path) -> None:
        self.root = str(path)
        self.decoded_cache: dict = {}
        self._env: lmdb.Environment | None = None
        self._pid = -1

    def _open(self) -> lmdb.Environment:
        if self._env is None or self._pid != os.getpid():
            self._env = _shared_env(self.root)
            self._pid = os.getpid()
        return self._env

    def read(self, path: str) -> bytes:
        """The stored bytes of ``path``; ``DataError`` naming the key when it is missing."""
        with self._open().begin(buffers=False) as txn:
            data = txn.get(path.encode("utf-8"))
        if data is None:
            raise DataError(f"{self.root}: no image stored under key {path!r}")
        return data

    def get_meta(self) -> dict[str, Any]:
        """The store's metadata; ``DataError`` if the store is incomplete or not ours."""
        with self._open().begin() as txn:
            done, meta = txn.get(DONE_KEY), txn.get(META_KEY)
        if done is None or meta is None:
            raise DataError(
                f"{self.root}: incomplete reidkit store (packing was interrupted?); pack it again"
            )
        return json.loads(meta)

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "decoded_cache": {}, "_env": None, "_pid": -1}

    def __repr__(self) -> str:
        return f"LmdbSource({self.root!r})"


def dataset_meta(ds: ReidDataset, layout: str) -> dict[str, Any]:
    """A JSON-able description of ``ds`` (everything but the image bytes)."""
    return {
        "format": FORMAT_VERSION,
        "name": ds.name,
        "layout": layout,
        "num_train_ids": ds.num_train_ids,
        "class_names": ds.class_names,
        "skipped": ds.skipped,
        "problems": ds.problems,
        "splits": {s: [[r.path, r.pid, r.camid] for r in recs] for s, recs in ds.splits.items()},
    }


def dataset_from_meta(meta: dict[str, Any], source: Any, where: str) -> ReidDataset:
    """Rebuild a ``ReidDataset`` from ``dataset_meta`` output; ``DataError`` if malformed."""
    try:
        splits = {
            s: [Record(str(p), int(i), int(c)) for p, i, c in meta["splits"][s]]
            for s in ("train", "query", "gallery")
        }
        return ReidDataset(
            meta["name"],
            splits["train"],
            splits["query"],
            splits["gallery"],
            int(meta["num_train_ids"]),
            source,
            class_names=meta.get("class_names"),
            skipped=int(meta.get("skipped", 0)),
            problems=list(meta.get("problems", [])),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: malformed reidkit dataset metadata ({e!r})") from None


def load_store(path: str | Path) -> ReidDataset:
    """The dataset packed in the LMDB file ``path``."""
    path = Path(path)
    if not path.is_file():
        hint = " (an interrupted pack left .partial)" if Path(f"{path}.partial").exists() else ""
        raise DataError(f"{path}: no such LMDB store{hint}")
    source = LmdbSource(path)
    return dataset_from_meta(source.get_meta(), source, str(path))


def load_manifest(root: str | Path) -> ReidDataset:
    """A dataset folder described by a ``reidkit_dataset.json`` manifest (from unpack)."""
    root = Path(root)
    path = root / MANIFEST
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot read dataset manifest ({e})") from None
    return dataset_from_meta(meta, FolderSource(root), str(path))
