"""Features files: ``.npz`` with ``feats`` (N, D) float32, ``paths`` and, when known, ids.

Keys: ``feats``; ``paths`` (N,) unicode; ``pids`` / ``camids`` (N,) int64, present only when every
file name parsed as Market-style ``<pid>_c<camera>...``; ``meta`` a JSON string (model, distance,
embedding_dim, reidkit version). Everything loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from reidkit.utils.errors import DataError
from reidkit.utils.files import atomic_path


@dataclass
class Features:
    """Embeddings of a list of images, with their keys and (optional) identities."""

    feats: np.ndarray
    paths: list[str]
    pids: np.ndarray | None = None
    camids: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feats = np.ascontiguousarray(self.feats, dtype=np.float32)
        n = len(self.paths)
        if self.feats.ndim != 2 or self.feats.shape[0] != n:
            raise DataError(
                f"features of shape {self.feats.shape} do not match {n} paths; expected (N, D)"
            )
        for name in ("pids", "camids"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.int64).reshape(-1)
                if value.shape[0] != n:
                    raise DataError(f"{name} has {value.shape[0]} entries for {n} features")
                setattr(self, name, value)

    @property
    def dim(self) -> int:
        """D, the embedding size."""
        return int(self.feats.shape[1])

    def __len__(self) -> int:
        return len(self.paths)


def save_features(features: Features, path: Union[str, Path]) -> Path:
    """Write ``features`` to ``path`` (.npz) atomically; returns the path."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "feats": features.feats,
        "paths": np.asarray(features.paths, dtype=np.str_),
        "meta": np.asarray(json.dumps(features.meta, sort_keys=True)),
    }
    if features.pids is not None and features.camids is not None:
        arrays["pids"], arrays["camids"] = features.pids, features.camids
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def open_npz(path: Union[str, Path], what: str) -> Any:
    """``np.load`` of an .npz archive (arrays only, never pickles); ``DataError`` naming the
    file and ``what`` was expected when it holds a single array instead."""
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single array, not {what}")
    return loaded


def load_features(path: Union[str, Path]) -> Features:
    """Read a features file; ``DataError`` naming the file when it is missing or not ours."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: features file not found")
    try:
        with open_npz(path, "a reidkit features file (.npz with 'feats' and 'paths')") as data:
            if "feats" not in data or "paths" not in data:
                raise DataError(
                    f"{path}: not a reidkit features file (needs 'feats' and 'paths', has "
                    f"{sorted(data.files)}); make one with `reidkit extract`"
                )
            feats, paths = data["feats"], [str(p) for p in data["paths"]]
            pids = data.get("pids")
            camids = data.get("camids")
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable features file ({type(e).__name__})") from None
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.floating):
        raise DataError(f"{path}: 'feats' has shape {feats.shape} {feats.dtype}; expected (N, D)")
    try:
        return Features(feats, paths, pids, camids, meta)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
