"""Gallery search: exact (torch) or approximate (faiss flat / IVF / IVF-PQ) nearest neighbours.

``exact`` ranks with ``reidkit.evaluation.metrics.pairwise_distance`` (the evaluator's own
distances) and breaks ties by gallery order, so a search reproduces the evaluator's ranking.
``flat`` / ``ivf`` / ``ivfpq`` need faiss (``pip install reidkit[faiss]``); IVF-PQ compresses a
vector to ``m`` bytes (nbits 8), which is what makes galleries of millions fit in memory.

Returned distances are Euclidean (not squared) or ``1 - cosine``. An index is a folder:
``index.json`` (kind, distance, dim, parameters), ``meta.npz`` (paths, pids, camids) and
``feats.npy`` (exact) or ``index.faiss``; it is written to a temporary folder and swapped in.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Union
from zipfile import BadZipFile

import numpy as np
import torch

from reidkit import __version__
from reidkit.deploy.features_io import Features, open_npz
from reidkit.evaluation.metrics import pairwise_distance
from reidkit.utils.choices import INDEX_KINDS
from reidkit.utils.errors import DataError
from reidkit.utils.files import temp_folder
from reidkit.utils.write_errors import write_guard

INDEX_FORMAT = 1
_BLOCK = 1 << 24  # distances per exact-search block (64 MB of float32)
_GALLERY_BLOCK = 1 << 16  # gallery rows per block; smaller galleries are one block


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise DataError(
            "this index kind needs faiss: pip install 'reidkit[faiss]' (or use --kind exact)"
        ) from None
    return faiss


def check_finite(feats: np.ndarray, what: str) -> None:
    """``DataError`` naming the first row with a NaN / inf value (a broken model or file)."""
    bad = ~np.isfinite(feats).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{what}: {int(bad.sum())} row(s) hold NaN or inf values (first: row {first}); "
            "they cannot be searched (check the model or the features file)"
        )


class GalleryIndex:
    """Gallery embeddings (+ their paths and ids) that answer k-nearest-neighbour queries."""

    def __init__(
        self,
        dim: int,
        kind: str = "exact",
        distance: str = "euclidean",
        *,
        nlist: int = 0,
        m: int = 0,
        nbits: int = 8,
        max_train: int = 0,
    ) -> None:
        if kind not in INDEX_KINDS:
            raise DataError(f"index kind = {kind!r} is not valid: expected one of {INDEX_KINDS}")
        if distance not in ("euclidean", "cosine"):
            raise DataError(f"distance = {distance!r} is not valid: expected euclidean or cosine")
        if kind == "ivfpq" and m and dim % m:
            raise DataError(f"ivfpq m = {m} must divide the embedding size {dim}")
        self.dim, self.kind, self.distance = int(dim), kind, distance
        self.nlist, self.m, self.nbits = int(nlist), int(m), int(nbits)
        self.max_train = int(max_train)  # IVF training sample (0 = every vector of the first add)
        self.paths: list[str] = []
        self.pids: list[np.ndarray] | None = []
        self.camids: list[np.ndarray] | None = []
        self._feats: list[np.ndarray] = []  # exact: chunks, concatenated lazily
        self._faiss: Any = None
        self.nprobe = 16

    def __len__(self) -> int:
        return len(self.paths)

    # ------------------------------------------------------------------ adding
    def add(self, features: Features) -> None:
        """Append gallery items; trains an IVF index on the first batch added.

        ``DataError`` (and no change) when the dimension differs from the index's.
        """
        if features.dim != self.dim:
            source = features.meta.get("source", "features")
            raise DataError(
                f"{source}: embeddings have D={features.dim} but the index holds D={self.dim}; "
                "extract them with the same model"
            )
        check_finite(features.feats, str(features.meta.get("source", "gallery features")))
        x = self._prepare(features.feats)
        if self.kind == "exact":
            self._feats.append(x)
        else:
            if self._faiss is None:
                self._faiss = self._new_faiss(x)
            self._faiss.add(x)
        self.paths.extend(features.paths)
        if features.pids is None or features.camids is None or self.pids is None:
            self.pids = self.camids = None
        else:
            self.pids.append(features.pids)
            self.camids.append(features.camids)  # type: ignore[union-attr]

    def _prepare(self, feats: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(feats, dtype=np.float32)
        if self.distance == "cosine" and self.kind != "exact":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def _new_faiss(self, train: np.ndarray) -> Any:
        faiss = _faiss()
        metric = faiss.METRIC_INNER_PRODUCT if self.distance == "cosine" else faiss.METRIC_L2
        if self.kind == "flat":
            return faiss.IndexFlat(self.dim, metric)
        n = train.shape[0]
        self.nlist = self.nlist or max(1, min(65536, int(4 * math.sqrt(n))))
        self.m = self.m or _default_m(self.dim)
        need = max(self.nlist, 2**self.nbits if self.kind == "ivfpq" else 0)
        if n < need:
            raise DataError(
                f"{self.kind} index needs at least {need} vectors to train (nlist={self.nlist}"
                f"{f', 2^nbits={2**self.nbits}' if self.kind == 'ivfpq' else ''}), got {n}; "
                "add more, lower --nlist / --nbits, or use --kind exact"
            )
        quantizer = faiss.IndexFlat(self.dim, metric)
        if self.kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, self.dim, self.nlist, metric)
        else:
            index = faiss.IndexIVFPQ(quantizer, self.dim, self.nlist, self.m, self.nbits, metric)
        if self.max_train and n > self.max_train:
            pick = np.random.default_rng(0).choice(n, self.max_train, replace=False)
            train = train[np.sort(pick)]
        index.train(train)
        self._quantizer = quantizer  # the IVF index refers to it; keep it alive
        return index

    # ------------------------------------------------------------------ searching
    def search(
        self, queries: np.ndarray, k: int = 10, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, indices)`` of the ``k`` nearest gallery items per query (Q, k).

        Missing results (approximate kinds with few probed lists) have index -1 and
        distance inf.
        """
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise DataError(
                f"query features of shape {q.shape} do not fit the index (D={self.dim})"
            )
        if not len(self):
            raise DataError("the index is empty; add gallery features first")
        if int(k) < 1:
            raise DataError(f"-k {k}: the number of results per query must be at least 1")
        check_finite(q, "query features")
        k = min(int(k), len(self))
        if self.kind == "exact":
            return self._exact(q, k)
        if self.kind != "flat":
            self._faiss.nprobe = int(nprobe or self.nprobe)
        dist, idx = self._faiss.search(self._prepare(q), k)
        if self.distance == "cosine":
            dist = 1.0 - dist
        else:
            dist = np.sqrt(np.maximum(dist, 0))
        dist[idx < 0] = np.inf
        return dist.astype(np.float32), idx.astype(np.int64)

    def _exact(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Blocked brute force: query chunks x gallery blocks (each gallery block is read once
        per query chunk, not once per few queries), keeping a running top-k."""
        gallery = torch.from_numpy(self.gallery_features())
        g_step = min(len(self), _GALLERY_BLOCK)
        q_step = max(1, _BLOCK // g_step)
        dists, idxs = [], []
        for s in range(0, q.shape[0], q_step):
            query = torch.from_numpy(q[s : s + q_step])
            best_d = best_i = None
            for g in range(0, len(self), g_step):
                val, ind = self._block_topk(query, gallery[g : g + g_step], k)
                ind = ind + g
                if best_d is not None:
                    val, ind = np.concatenate([best_d, val], 1), np.concatenate([best_i, ind], 1)
                order = np.lexsort((ind, val), axis=1)[:, :k]  # ties: gallery order
                best_d = np.take_along_axis(val, order, 1)
                best_i = np.take_along_axis(ind, order, 1)
            dists.append(best_d)
            idxs.append(best_i)
        dist, idx = np.concatenate(dists), np.concatenate(idxs).astype(np.int64)
        if self.distance == "euclidean":
            dist = np.sqrt(np.maximum(dist, 0))  # pairwise_distance is squared
        return dist.astype(np.float32), idx

    def _block_topk(
        self, query: torch.Tensor, block: torch.Tensor, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        d = pairwise_distance(query, block, self.distance)
        val, ind = torch.topk(d, min(k, block.shape[0]), dim=1, largest=False, sorted=True)
        return val.numpy(), ind.numpy()

    def gallery_features(self) -> np.ndarray:
        """All gallery embeddings (N, D) of an exact index."""
        if self.kind != "exact":
            raise DataError(f"a {self.kind} index does not keep raw features")
        if len(self._feats) != 1:
            self._feats = [
                np.concatenate(self._feats) if self._feats else np.empty((0, self.dim), np.float32)
            ]
        return self._feats[0]

    def identities(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(pids, camids)`` of the gallery, when every added file had them."""
        if self.pids is None or self.camids is None or not self.pids:
            return None
        return np.concatenate(self.pids), np.concatenate(self.camids)

    # ------------------------------------------------------------------ persistence
    def describe(self) -> dict[str, Any]:
        """The ``index.json`` content."""
        return {
            "format": INDEX_FORMAT,
            "kind": self.kind,
            "distance": self.distance,
            "dim": self.dim,
            "count": len(self),
            "nlist": self.nlist,
            "m": self.m,
            "nbits": self.nbits,
            "max_train": self.max_train,
            "nprobe": self.nprobe,
            "reidkit_version": __version__,
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write the index folder atomically (a temporary folder renamed over ``path``)."""
        path = Path(path)
        if path.exists() and not (path / "index.json").is_file():
            raise DataError(f"{path}: exists and is not a reidkit index folder; choose another")
        tmp = temp_folder(path)  # DiskError when the folder is read-only, full ...
        try:
            with write_guard(path):
                self._write(tmp)
                _swap_dir(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    def _write(self, tmp: Path) -> None:
        """Write the index files into the empty folder ``tmp``."""
        (tmp / "index.json").write_text(json.dumps(self.describe(), indent=2) + "\n")
        ids = self.identities()
        meta: dict[str, np.ndarray] = {"paths": np.asarray(self.paths, dtype=np.str_)}
        if ids is not None:
            meta["pids"], meta["camids"] = ids
        np.savez(tmp / "meta.npz", **meta)
        if self.kind == "exact":
            np.save(tmp / "feats.npy", self.gallery_features())
        else:
            _faiss().write_index(self._faiss, str(tmp / "index.faiss"))

    @classmethod
    def load(cls, path: Union[str, Path]) -> GalleryIndex:
        """Read an index folder written by ``save``; ``DataError`` naming it when broken."""
        path = Path(path)
        try:
            info = json.loads((path / "index.json").read_text())
            index = cls(
                info["dim"],
                info["kind"],
                info["distance"],
                nlist=info["nlist"],
                m=info["m"],
                nbits=info["nbits"],
                max_train=info.get("max_train", 0),
            )
            index.nprobe = int(info.get("nprobe", 16))
            with open_npz(path / "meta.npz", "a reidkit index's meta.npz") as meta:
                index.paths = [str(p) for p in meta["paths"]]
                has_ids = "pids" in meta
                index.pids = [meta["pids"]] if has_ids else None
                index.camids = [meta["camids"]] if has_ids else None
            if index.kind == "exact":
                index._feats = [np.load(path / "feats.npy", allow_pickle=False)]
            else:
                index._faiss = _faiss().read_index(str(path / "index.faiss"))
            _check_loaded(index, path)
        except DataError:
            raise
        except (OSError, EOFError, KeyError, TypeError, ValueError, RuntimeError, BadZipFile) as e:
            raise DataError(
                f"{path}: not a readable reidkit index ({type(e).__name__}); build one with "
                "`reidkit search build FEATS --index DIR`"
            ) from None
        return index


def _check_loaded(index: GalleryIndex, path: Path) -> None:
    """The files of an index folder agree: one gallery row per path, of the index's width."""
    rows = int(getattr(index._faiss, "ntotal", 0))
    if index.kind == "exact":
        feats = index._feats[0]
        if (
            feats.ndim != 2
            or feats.shape[1] != index.dim
            or not np.issubdtype(feats.dtype, np.floating)
        ):
            raise DataError(
                f"{path}: feats.npy has shape {feats.shape} {feats.dtype}, the index says "
                f"(N, {index.dim}) floats; rebuild it with `reidkit search build`"
            )
        rows = feats.shape[0]
    if rows != len(index.paths) or (index.pids is not None and len(index.pids[0]) != rows):
        raise DataError(
            f"{path}: {rows} gallery rows but {len(index.paths)} paths in meta.npz (a damaged "
            "index); rebuild it with `reidkit search build`"
        )


def _default_m(dim: int) -> int:
    """Largest of 64, 32, 16, 8 ... dividing ``dim`` (bytes per vector of IVF-PQ)."""
    for m in (64, 32, 16, 8, 4, 2, 1):
        if dim % m == 0 and m <= dim:
            return m
    return 1


def _swap_dir(new: Path, path: Path) -> None:
    """Move folder ``new`` to ``path``, replacing an existing index folder safely."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
    new.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
