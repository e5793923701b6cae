"""Reading every image once for ``reidkit data check``, and finding its duplicates.

Each image is read through the dataset's ``ImageSource`` (folder or LMDB store) and gives
a content digest of its encoded bytes (identical files), a 256-bit perceptual hash
(``imagehash.phash`` with hash size 16: images that look the same after re-encoding or
resizing are a few bits apart) and its size. Pairs of images are then classified:

* both in one split: a duplicate within the split;
* train and query / gallery: a leak (the model has seen a test image);
* query and gallery: a leak, except where the Market protocol already removes the pair
  (the gallery image is junk, pid -1, or has the query's identity *and* camera).

Pairs are grouped into clusters (connected components), one finding each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

from reidkit.data.images import decode_rgb
from reidkit.data.records import Record, ReidDataset
from reidkit.utils.errors import DataError

HASH_SIZE = 16  # phash of a 16x16 DCT block: 256 bits
HASH_WORDS = HASH_SIZE * HASH_SIZE // 64
BLOCK_ROWS = 256  # rows of the pairwise Hamming block (256 x N uint8 per word)


@dataclass
class ScannedImage:
    """One image of the dataset as the check sees it."""

    split: str
    record: Record
    digest: str | None = None  # blake2b of the encoded bytes
    width: int = 0
    height: int = 0
    error: str | None = None  # why it could not be read / decoded


def _phash_words(image: Image.Image) -> np.ndarray:
    """The 256-bit perceptual hash of ``image`` as 4 uint64 words."""
    try:
        import imagehash  # optional dependency (the 'check' extra)
    except ImportError:
        raise DataError(
            "data check needs imagehash: pip install 'reidkit[check]' (imagehash, scikit-learn)"
        ) from None

    bits = imagehash.phash(image, hash_size=HASH_SIZE).hash.flatten()
    return np.packbits(bits).view(">u8").astype(np.uint64)


def scan_images(ds: ReidDataset, progress: bool = False) -> tuple[list[ScannedImage], np.ndarray]:
    """Read every record once: ``(images, hashes)``; ``hashes[i]`` are image i's 4 hash words
    (zeros for an unreadable image, which is marked by ``error``)."""
    recs = [(split, r) for split, rs in ds.splits.items() for r in rs]
    out: list[ScannedImage] = []
    hashes = np.zeros((len(recs), HASH_WORDS), dtype=np.uint64)
    for i, (split, r) in enumerate(tqdm(recs, desc="reading", disable=not progress)):
        item = ScannedImage(split, r)
        try:
            data = ds.source.read(r.path)
        except DataError as e:
            item.error = str(e)
            out.append(item)
            continue
        item.digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        try:
            pixels = decode_rgb(data, r.path)  # the package's decoder: any mode, a pixel cap
        except DataError as e:
            item.error = str(e)
        else:
            item.height, item.width = pixels.shape[:2]
            hashes[i] = _phash_words(Image.fromarray(pixels))
        out.append(item)
    return out, hashes


def pair_kind(a: ScannedImage, b: ScannedImage) -> str | None:
    """``"leak"``, ``"in_split"`` or None (a query/gallery pair the protocol removes)."""
    if a.split == b.split:
        return "in_split"
    if "train" in (a.split, b.split):
        return "leak"
    q, g = (a, b) if a.split == "query" else (b, a)
    qr, gr = q.record, g.record
    if gr.pid == -1 or (gr.pid == qr.pid and gr.camid == qr.camid):
        return None
    return "leak"


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element (numpy >= 2 has it built in)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.uint8)


def near_pairs(
    hashes: np.ndarray, usable: np.ndarray, max_distance: int
) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` with ``i < j`` for every pair of usable images whose hashes are at
    most ``max_distance`` bits apart, computed block by block (bounded memory)."""
    idx = np.flatnonzero(usable)
    h = hashes[idx]
    n = len(idx)
    out: list[tuple[int, int, int]] = []
    for s in range(0, n, BLOCK_ROWS):
        e = min(n, s + BLOCK_ROWS)
        dist = np.zeros((e - s, n - s), dtype=np.uint16)
        for w in range(h.shape[1]):
            dist += _popcount(h[s:e, w, None] ^ h[None, s:, w])
        rows, cols = np.nonzero(dist <= max_distance)
        keep = cols > rows  # cols are offset by s, so this is j > i
        for r, c in zip(rows[keep], cols[keep], strict=True):
            out.append((int(idx[s + r]), int(idx[s + c]), int(dist[r, c])))
    return out


def _components(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components (sorted lists of nodes, sorted by first node) with > 1 node."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(find(x), []).append(x)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def duplicate_clusters(
    images: Sequence[ScannedImage], hashes: np.ndarray, max_distance: int
) -> dict[str, list[tuple[list[int], int]]]:
    """Clusters of duplicates by kind: ``identical_leak``, ``identical_in_split``,
    ``near_duplicate_leak``, ``near_duplicate_in_split``; each ``(image indices, largest
    hash distance in the cluster)`` (0 for identical bytes)."""
    by_digest: dict[str, list[int]] = {}
    for i, im in enumerate(images):
        if im.digest is not None:
            by_digest.setdefault(im.digest, []).append(i)
    out: dict[str, list[tuple[list[int], int]]] = {
        k: [] for k in ("identical_leak", "identical_in_split")
    }
    for members in by_digest.values():
        kinds = {
            pair_kind(images[a], images[b]) for x, a in enumerate(members) for b in members[x + 1 :]
        }
        if "leak" in kinds:
            out["identical_leak"].append((members, 0))
        elif "in_split" in kinds:
            out["identical_in_split"].append((members, 0))
    usable = np.array([im.error is None for im in images], dtype=bool)
    edges: dict[str, list[tuple[int, int, int]]] = {"leak": [], "in_split": []}
    for i, j, d in near_pairs(hashes, usable, max_distance):
        kind = pair_kind(images[i], images[j])
        if images[i].digest != images[j].digest and kind is not None:
            edges[kind].append((i, j, d))
    for kind, found in edges.items():
        worst = {}
        for i, j, d in found:
            worst[i], worst[j] = max(worst.get(i, 0), d), max(worst.get(j, 0), d)
        clusters = _components(len(images), ((i, j) for i, j, _ in found))
        out[f"near_duplicate_{kind}"] = [(c, max(worst.get(x, 0) for x in c)) for c in clusters]
    return out
