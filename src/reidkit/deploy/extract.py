"""``reidkit extract``: a folder, a file list or an LMDB store -> one features ``.npz`` file.

Large inputs are cut into shards of ``shard_size`` images (in sorted order). Each finished shard
is written atomically to ``OUT.parts/shard_NNNNNN.npz``; a rerun skips shards already there
(resume), and the last step merges them into ``OUT`` and removes the parts folder. A
``manifest.json`` beside the shards names the inputs (hash) and model, so a rerun with other
inputs or another model is refused instead of mixing features.

Under ``torchrun`` (or with explicit ``rank`` / ``world_size``) rank r embeds the shards whose
index is r modulo the world size; after a barrier rank 0 merges. Without a process group, rank 0
merges once every shard exists (so ranks can also run one after another).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from reidkit import __version__
from reidkit.data.images import decode_rgb
from reidkit.data.layouts.market import parse_market_name
from reidkit.data.store import load_store
from reidkit.deploy.embedder import Embedder
from reidkit.deploy.features_io import Features, load_features, save_features
from reidkit.deploy.preprocess import IMAGE_SUFFIXES, list_images, load_image
from reidkit.utils.distributed import (
    barrier,
    destroy_process_group,
    env_world,
    init_process_group,
    rank_and_world,
)
from reidkit.utils.errors import DataError
from reidkit.utils.files import atomic_write_text


@dataclass
class ImageList:
    """The images to embed: keys (absolute paths or store keys) and how to decode one."""

    keys: list[str]
    read: Callable[[str], np.ndarray]
    source: str


def open_inputs(source: Union[str, Path]) -> ImageList:
    """A folder (recursive), a text file of image paths or an ``.lmdb`` store -> ``ImageList``.

    ``STORE.lmdb:query`` takes one split of a packed store (keys as stored).

    Paths in a list file are relative to the list file's folder unless absolute; blank lines
    and ``#`` comments are skipped. ``DataError`` names a missing input or listed file.
    """
    source = Path(source)
    if source.is_dir() and source.suffix.lower() != ".lmdb":
        keys = [str(p.resolve()) for p in list_images(source)]
        return ImageList(keys, load_image, str(source))
    if source.suffix.lower() == ".lmdb":
        return _open_lmdb(source, None)
    store, _, split = str(source).rpartition(":")
    if store.lower().endswith(".lmdb") and split:
        return _open_lmdb(Path(store), split)
    if not source.is_file():
        raise DataError(f"{source}: no such image folder, file list or .lmdb store")
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return ImageList([str(source.resolve())], load_image, str(source))
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(
            f"{source}: not a text file list (expected one image path per line)"
        ) from None
    keys = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry) if Path(entry).is_absolute() else source.parent / entry
        if not path.is_file():
            raise DataError(f"{source}:{number}: listed image {entry!r} not found")
        keys.append(str(path.resolve()))
    if not keys:
        raise DataError(f"{source}: the file list names no images")
    return ImageList(keys, load_image, str(source))


def _open_lmdb(path: Path, split: str | None) -> ImageList:
    """Images of a packed store (``reidkit data pack``): all of them, or one split's."""

    dataset = load_store(path)
    if split is not None and split not in dataset.splits:
        raise DataError(f"{path}:{split}: no such split; valid: {', '.join(dataset.splits)}")
    chosen = [dataset.splits[split]] if split else list(dataset.splits.values())
    keys = sorted({r.path for records in chosen for r in records})
    if not keys:
        raise DataError(f"{path}{':' + split if split else ''}: the store holds no images")

    def read(key: str) -> np.ndarray:
        name = f"{path}[{key}]"
        return load_image(decode_rgb(dataset.source.read(key), name), name=name)

    return ImageList(keys, read, f"{path}:{split}" if split else str(path))


def identities(keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(pids, camids)`` parsed from Market-style file names, or ``None`` if any fails."""
    parsed = [parse_market_name(Path(k.replace("\\", "/")).name) for k in keys]
    if not parsed or any(p is None for p in parsed):
        return None
    pids, camids = zip(*parsed, strict=True)  # type: ignore[misc]
    return np.asarray(pids, dtype=np.int64), np.asarray(camids, dtype=np.int64)


def _manifest(images: ImageList, embedder: Embedder, shard_size: int) -> dict[str, Any]:
    digest = hashlib.sha256("\n".join(images.keys).encode("utf-8")).hexdigest()
    return {
        "inputs_sha256": digest,
        "count": len(images.keys),
        "shard_size": shard_size,
        "model": embedder.name,
        "embedding_dim": embedder.embedding_dim,
    }


def _check_manifest(parts: Path, manifest: dict[str, Any], resume: bool) -> None:
    file = parts / "manifest.json"
    if not file.is_file():
        return
    if not resume:
        shutil.rmtree(parts, ignore_errors=True)
        return
    try:
        old = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        old = {}
    if old != manifest:
        raise DataError(
            f"{parts}: holds shards of another extraction (other inputs, model or shard size); "
            "delete it or pass --no-resume"
        )


def _shard_done(file: Path, keys: list[str]) -> bool:
    if not file.is_file():
        return False
    try:
        return load_features(file).paths == keys
    except DataError:
        return False


def _embed_shard(
    images: ImageList, keys: list[str], embedder: Embedder, pool: ThreadPoolExecutor, bar: Any
) -> np.ndarray:
    """Embed one shard; the next batch is decoded by the pool while this one is embedded."""
    out = np.empty((len(keys), embedder.embedding_dim), dtype=np.float32)
    step = embedder.batch_size
    decoding = pool.map(images.read, keys[:step])  # map submits at once: runs ahead
    for s in range(0, len(keys), step):
        arrays = list(decoding)
        decoding = pool.map(images.read, keys[s + step : s + 2 * step])
        out[s : s + len(arrays)] = embedder.embed_arrays(arrays)
        bar.update(len(arrays))
    return out


def _dist_info(rank: int | None, world_size: int | None) -> tuple[int, int, Any]:
    """(rank, world, barrier) from the arguments, an initialised group, or torchrun's env."""
    if rank is not None or world_size is not None:
        world = int(world_size or 1)
        rank = int(rank or 0)
        if not 0 <= rank < world:
            raise DataError(f"rank = {rank} is not valid for world_size = {world}")
        return rank, world, None
    if rank_and_world()[1] == 1 and env_world()[2] > 1:
        init_process_group(use_cuda=False)  # torchrun: a CPU group is enough for one barrier

        def barrier_and_close() -> None:
            barrier()
            destroy_process_group()

        return *rank_and_world(), barrier_and_close
    rank, world = rank_and_world()
    return rank, world, barrier if world > 1 else None


def extract(
    model: Union[str, Path, Embedder],
    source: Union[str, Path],
    out: Union[str, Path],
    *,
    device: str = "cpu",
    batch_size: int = 64,
    threads: int | None = None,
    workers: int = 4,
    shard_size: int = 4096,
    resume: bool = True,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
) -> Path | None:
    """Embed every image of ``source`` with ``model`` and write the features file ``out``.

    ``model`` is an ``Embedder``, an exported ``.onnx`` (onnxruntime; ``device`` cuda uses the
    CUDA provider), an OpenVINO ``.xml`` (CPU) or a checkpoint / run folder (PyTorch on
    ``device``). ``workers`` threads decode images. Returns ``out`` on the rank that merged,
    ``None`` on the others.
    """
    from tqdm import tqdm

    if shard_size < 1:
        raise DataError(f"shard_size = {shard_size} is not valid: expected >= 1")
    rank, world, barrier = _dist_info(rank, world_size)
    images = open_inputs(source)
    embedder = _embedder(model, device, batch_size, threads, rank)
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    manifest = _manifest(images, embedder, shard_size)
    _check_manifest(parts, manifest, resume)
    n = len(images.keys)
    shards = [(i, images.keys[s : s + shard_size]) for i, s in enumerate(range(0, n, shard_size))]
    todo = [(i, k) for i, k in shards if i % world == rank]
    total = sum(len(k) for _, k in todo)
    with (
        tqdm(total=total, desc=f"extract[{rank}]", unit="img", disable=not progress) as bar,
        ThreadPoolExecutor(max(1, workers)) as pool,
    ):
        for i, keys in todo:
            file = parts / f"shard_{i:06d}.npz"
            if _shard_done(file, keys):
                bar.update(len(keys))
                continue
            feats = _embed_shard(images, keys, embedder, pool, bar)
            parts.mkdir(parents=True, exist_ok=True)
            atomic_write_text(parts / "manifest.json", json.dumps(manifest, sort_keys=True))
            save_features(Features(feats, keys), file)
    if barrier is not None:
        barrier()
    if rank != 0:
        return None
    return _merge(parts, shards, out, embedder, images.source)


def _embedder(
    model: Union[str, Path, Embedder], device: str, batch_size: int, threads: int | None, rank: int
) -> Embedder:
    if isinstance(model, Embedder):
        return model
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    return Embedder.load(model, device=device, threads=threads, batch_size=batch_size)


def _merge(
    parts: Path,
    shards: list[tuple[int, list[str]]],
    out: Path,
    embedder: Embedder,
    source: str,
) -> Path:
    """Concatenate every shard (in order) into ``out``; remove the parts folder."""
    missing = [i for i, keys in shards if not _shard_done(parts / f"shard_{i:06d}.npz", keys)]
    if missing:
        raise DataError(
            f"{parts}: shards {missing[:5]} are not done yet (run the other ranks, or rerun "
            "to resume); the features file was not written"
        )
    feats = [load_features(parts / f"shard_{i:06d}.npz").feats for i, _ in shards]
    keys = [k for _, ks in shards for k in ks]
    ids = identities(keys)

    meta = {
        "model": embedder.name,
        "distance": embedder.distance,
        "embedding_dim": embedder.embedding_dim,
        "source": source,
        "input_size": [embedder.img_h, embedder.img_w],
        "reidkit_version": __version__,
    }
    merged = Features(np.concatenate(feats), keys, *(ids or (None, None)), meta=meta)
    save_features(merged, out)
    shutil.rmtree(parts, ignore_errors=True)
    return out
