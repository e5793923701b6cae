"""A synthetic person ReID dataset written in the exact Market-1501 layout and naming.

``generate_synthetic(out_dir, num_ids=50)`` writes ``bounding_box_train/`` (training ids),
``query/`` (one image per test id per camera it appears in) and ``bounding_box_test/`` (the
other images of the test ids, plus junk ``-1_c...`` bad detections and distractor
``0000_c...`` people), file names like ``0002_c1s1_000451_01.jpg``. Same arguments, same bytes.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.data.synthetic_draw import Camera, Identity, random_camera, random_identity, render
from reidkit.data.synthetic_plant import plant_problems
from reidkit.utils.errors import DataError

SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")
MARKER = ".reidkit_synth.json"  # arguments + summary of a completed generation
SYNTH_VERSION = 4  # bump when the drawing changes, so old folders are regenerated


def _prepare(root: Path, args: dict[str, Any]) -> dict[str, Any] | None:
    """Make ``root`` ready to write into; the old summary if it already holds this dataset.

    A folder written by an earlier ``generate_synthetic`` (it has the marker) is reused when
    the arguments match and regenerated otherwise; a folder holding other images is refused.
    """
    marker = root / MARKER
    old = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
    if old is not None and old.get("args") == args:
        return {**old["summary"], "seconds": 0.0, "reused": True}
    existing = [f for d in SPLIT_DIRS if (root / d).is_dir() for f in (root / d).iterdir()]
    if existing and old is None:
        raise DataError(
            f"{root}: already holds {len(existing)} files that reidkit synth did not write; "
            "choose an empty or new folder"
        )
    marker.unlink(missing_ok=True)
    for f in existing:
        f.unlink()
    for d in SPLIT_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    return None


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *keys])


def _counts(n_ids: int, per_id: int, total: int | None, rng: np.random.Generator) -> list[int]:
    """Images per identity: ``total`` spread evenly, or ``per_id`` +-25% each."""
    if total is not None:
        base, extra = divmod(total, n_ids)
        return [base + (i < extra) for i in range(n_ids)]
    lo, hi = max(1, round(per_id * 0.75)), max(1, round(per_id * 1.25))
    return [int(x) for x in rng.integers(lo, hi + 1, size=n_ids)]


class _Writer:
    """Renders and writes JPEGs with Market-style names, counting frames per camera."""

    def __init__(self, root: Path, h: int, w: int, cams: list[Camera], quality: int) -> None:
        self.root, self.h, self.w, self.cams, self.quality = root, h, w, cams, quality
        self.frame = [0] * len(cams)
        self.written = 0

    def write(
        self,
        split: str,
        pid: int,
        cam: int,
        ident: Identity | None,
        rng: np.random.Generator,
        junk: bool = False,
    ) -> None:
        self.frame[cam] += int(rng.integers(1, 40))
        f = self.frame[cam]
        tag = "-1" if pid < 0 else f"{pid:04d}"
        name = f"{tag}_c{cam + 1}s{1 + f // 100000}_{f % 1000000:06d}_01.jpg"
        img = render(ident, self.cams[cam], self.h, self.w, rng, junk=junk)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=min(self.quality, self.cams[cam].quality))
        (self.root / split / name).write_bytes(buf.getvalue())
        self.written += 1

    def identity(self, seed: int, pid: int, n: int, test: bool) -> int:
        """Write ``n`` images of identity ``pid``; returns how many went to ``query/``.

        A test identity gets one query image per camera it appears in and at least one
        gallery image in each of those cameras.
        """
        ident, rng = random_identity(_rng(seed, 1, pid)), _rng(seed, 3, pid)
        id_cams = _id_cameras(rng, len(self.cams))
        if test:
            n = max(n, 2 * len(id_cams))
        queries = 0
        for j in range(n):
            split = "bounding_box_train"
            if test:
                split = "query" if j < len(id_cams) else "bounding_box_test"
            queries += split == "query"
            self.write(split, pid, id_cams[j % len(id_cams)], ident, rng)
        return queries

    def extras(self, seed: int, test_pids: list[int], junk: int, distractors: int) -> None:
        """Gallery junk (bad crops of test identities, pid -1) and distractors (pid 0)."""
        rng = _rng(seed, 6)
        for _ in range(junk):
            ident = random_identity(_rng(seed, 1, test_pids[int(rng.integers(len(test_pids)))]))
            self.write("bounding_box_test", -1, int(rng.integers(len(self.cams))), ident, rng, True)
        for _ in range(distractors):
            cam = int(rng.integers(len(self.cams)))
            self.write("bounding_box_test", 0, cam, random_identity(rng), rng)


def _id_cameras(rng: np.random.Generator, num_cameras: int) -> list[int]:
    k = int(rng.integers(2, min(num_cameras, 4) + 1))
    return sorted(int(c) for c in rng.choice(num_cameras, size=k, replace=False))


def _check(num_ids: int, num_test: int, num_cameras: int, h: int, w: int) -> None:
    if num_ids < 1 or num_test < 1:
        raise DataError(f"synth: --ids {num_ids} / test ids {num_test}: need at least 1 of each")
    if num_ids + num_test > 9999:
        raise DataError(
            f"synth: {num_ids} + {num_test} identities exceed the 4-digit pid limit 9999"
        )
    if num_cameras < 2 or num_cameras > 9:
        raise DataError(f"synth: --cameras {num_cameras}: use 2..9 (queries need another camera)")
    if h < 16 or w < 8:
        raise DataError(f"synth: image size {h}x{w} is too small; use at least 16x8")


def generate_synthetic(
    out_dir: str | Path,
    num_ids: int = 50,
    num_cameras: int = 6,
    img_h: int = 128,
    img_w: int = 64,
    seed: int = 0,
    images_per_id: int = 16,
    num_test_ids: int | None = None,
    train_images: int | None = None,
    num_junk: int | None = None,
    num_distractors: int | None = None,
    quality: int = 90,
    plant: bool = False,
) -> dict[str, Any]:
    """Write the dataset under ``out_dir`` and return a summary of what was written.

    ``num_ids`` training identities and ``num_test_ids`` (default: as many) disjoint test
    identities, each seen by 2-4 of ``num_cameras`` cameras; ``train_images`` fixes the total
    number of training images (spread evenly) instead of ``images_per_id`` +-25%.
    ``plant`` then plants known problems for ``reidkit data check`` (``synthetic_plant``).
    """
    num_test = num_ids if num_test_ids is None else num_test_ids
    _check(num_ids, num_test, num_cameras, img_h, img_w)
    start = time.perf_counter()
    root = Path(out_dir)
    args = {
        "version": SYNTH_VERSION,
        "num_ids": num_ids,
        "num_test_ids": num_test,
        "num_cameras": num_cameras,
        "img_h": img_h,
        "img_w": img_w,
        "seed": seed,
        "images_per_id": images_per_id,
        "train_images": train_images,
        "num_junk": num_junk,
        "num_distractors": num_distractors,
        "quality": quality,
        **({"plant": True} if plant else {}),
    }
    previous = _prepare(root, args)
    if previous is not None:
        return previous
    cams = [random_camera(_rng(seed, 2, c)) for c in range(num_cameras)]
    writer = _Writer(root, img_h, img_w, cams, quality)
    pids = (_rng(seed, 0).permutation(num_ids + num_test) + 1).tolist()
    train_pids, test_pids = sorted(pids[:num_ids]), sorted(pids[num_ids:])
    counts = _counts(num_ids, images_per_id, train_images, _rng(seed, 4))
    for pid, n in zip(train_pids, counts, strict=True):
        writer.identity(seed, pid, n, test=False)
    test_counts = _counts(num_test, images_per_id, None, _rng(seed, 5))
    n_query = sum(
        writer.identity(seed, pid, n, test=True)
        for pid, n in zip(test_pids, test_counts, strict=True)
    )
    n_gallery = writer.written - sum(counts) - n_query
    junk = max(1, num_test // 2) if num_junk is None else num_junk
    distractors = max(1, num_test // 2) if num_distractors is None else num_distractors
    writer.extras(seed, test_pids, junk, distractors)
    seconds = time.perf_counter() - start
    summary = {
        "root": str(root),
        "train_ids": num_ids,
        "train_images": sum(counts),
        "test_ids": num_test,
        "query_images": n_query,
        "gallery_images": n_gallery + junk + distractors,
        "junk_images": junk,
        "distractor_images": distractors,
        "cameras": num_cameras,
        "image_size": [img_h, img_w],
        "images": writer.written,
        "seconds": round(seconds, 2),
        "images_per_s": round(writer.written / max(seconds, 1e-9), 1),
    }
    if plant:
        summary["planted"] = plant_problems(root)
    (root / MARKER).write_text(json.dumps({"args": args, "summary": summary}), encoding="utf-8")
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines describing a ``generate_synthetic`` summary."""
    h, w = summary["image_size"]
    if summary.get("reused"):
        return [
            f"{summary['root']} already holds this synthetic dataset "
            f"({summary['images']} images, same arguments); nothing written"
        ]
    return [
        f"wrote {summary['images']} images ({h}x{w}, {summary['cameras']} cameras) to "
        f"{summary['root']} in {summary['seconds']:.1f}s ({summary['images_per_s']:.0f} img/s)",
        f"  bounding_box_train: {summary['train_images']} images of {summary['train_ids']} ids",
        f"  query:              {summary['query_images']} images of {summary['test_ids']} ids",
        f"  bounding_box_test:  {summary['gallery_images']} images (incl. "
        f"{summary['junk_images']} junk -1, {summary['distractor_images']} distractors 0000)",
    ] + [
        f"  planted {kind}: {', '.join(paths)}"
        for kind, paths in summary.get("planted", {}).items()
    ]
