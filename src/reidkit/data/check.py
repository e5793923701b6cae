"""``reidkit data check``: look at a dataset before training on it.

``check_dataset(ds, options, embed)`` reads every image once and returns a JSON-ready dict:
counts (per split, per camera, images per identity) and a list of findings, each naming its
images (split, path, pid, camid). Kinds of finding:

* ``identical_leak`` / ``near_duplicate_leak``: the same picture in train and query/gallery
  (or in query and gallery where the protocol would not remove the pair): **leakage**;
* ``identical_in_split`` / ``near_duplicate_in_split``: duplicates within one split;
* ``single_image_id``: a train identity with one image (PK sampling repeats it);
* ``query_id_not_in_gallery``: query images whose identity has no gallery image in another
  camera (the evaluator leaves them out);
* ``size_outlier`` / ``aspect_outlier``: images far from the median size or aspect ratio;
* ``label_suspect``: an image whose ``label_k`` nearest neighbours (features from ``embed``)
  all carry one other identity;
* ``unreadable``: images that cannot be read or decoded.

Near duplicates compare 256-bit perceptual hashes (``check_dups``); neighbours come from
scikit-learn's ``NearestNeighbors`` over L2-normalised features, within the train split and
within query + gallery (junk and distractors left out).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from reidkit.data.check_dups import ScannedImage, duplicate_clusters, scan_images
from reidkit.data.records import ImageSource, Record, ReidDataset
from reidkit.utils.errors import DataError

# ``embed(records, source) -> (features (N, D), paths of the rows)``; undecodable images
# may be left out, so the paths say which record each row belongs to.
Embed = Callable[[Sequence[Record], ImageSource], tuple[np.ndarray, list[str]]]

KINDS = {
    "identical_leak": "identical files in two splits (leakage)",
    "near_duplicate_leak": "near-duplicate images in two splits (leakage)",
    "identical_in_split": "identical files within one split",
    "near_duplicate_in_split": "near-duplicate images within one split",
    "single_image_id": "train identities with a single image",
    "query_id_not_in_gallery": "query identities with no gallery image in another camera",
    "size_outlier": "images far from the median size",
    "aspect_outlier": "images far from the median aspect ratio",
    "label_suspect": "images whose nearest neighbours all carry another identity",
    "unreadable": "images that cannot be read or decoded",
}
LEAK_KINDS = ("identical_leak", "near_duplicate_leak")


@dataclass(frozen=True)
class CheckOptions:
    """Thresholds of the check (the CLI options of the same names)."""

    hash_distance: int = 16  # bits (of 256) between perceptual hashes of near duplicates
    size_factor: float = 4.0  # area more than this many times above / below the median
    aspect_factor: float = 1.5  # width/height more than this many times off the median
    label_k: int = 3  # neighbours that must all carry another identity (0 = no label check)

    def validate(self) -> CheckOptions:
        """Raise a one-line ``DataError`` for an option out of range; returns self."""
        if not 0 <= self.hash_distance <= 128:
            raise DataError(f"--hash-distance {self.hash_distance}: expected 0..128 (of 256 bits)")
        for name in ("size_factor", "aspect_factor"):
            if not getattr(self, name) > 1.0:
                flag = "--" + name.replace("_", "-")
                raise DataError(f"{flag} {getattr(self, name)}: expected a factor above 1.0")
        if self.label_k < 0:
            raise DataError(f"--label-k {self.label_k}: expected 0 (off) or a positive count")
        return self


def _image(im: ScannedImage) -> dict[str, Any]:
    r = im.record
    return {"split": im.split, "path": r.path, "pid": r.pid, "camid": r.camid}


def _finding(kind: str, images: Sequence[ScannedImage], message: str, **extra: Any) -> dict:
    return {"kind": kind, "message": message, "images": [_image(im) for im in images], **extra}


def split_counts(ds: ReidDataset) -> dict[str, dict[str, Any]]:
    """Per split: images, identities, cameras, images per camera and per identity."""
    out = {}
    for split, recs in ds.splits.items():
        per_id = Counter(r.pid for r in recs)
        per_cam = Counter(r.camid for r in recs)
        sizes = sorted(per_id.values())
        out[split] = {
            "images": len(recs),
            "ids": len(per_id),
            "cameras": len(per_cam),
            "per_camera": {str(c): per_cam[c] for c in sorted(per_cam)},
            "images_per_id": {
                "min": sizes[0] if sizes else 0,
                "median": statistics.median(sizes) if sizes else 0,
                "max": sizes[-1] if sizes else 0,
                "histogram": {str(k): v for k, v in sorted(Counter(sizes).items())},
            },
        }
    return out


def _duplicates(images: list[ScannedImage], hashes: np.ndarray, opt: CheckOptions) -> list[dict]:
    found = []
    for kind, clusters in duplicate_clusters(images, hashes, opt.hash_distance).items():
        for members, dist in clusters:
            group = [images[i] for i in members]
            present = {im.split for im in group}
            splits = "/".join(s for s in ("train", "query", "gallery") if s in present)
            what = "identical files" if kind.startswith("identical") else "near duplicates"
            msg = f"{len(group)} {what} in {splits}"
            if dist > 0:
                msg += f" (hash distance <= {dist} bits)"
            found.append(_finding(kind, group, msg, distance=dist))
    return found


def _singletons(images: list[ScannedImage]) -> list[dict]:
    train = [im for im in images if im.split == "train"]
    counts = Counter(im.record.pid for im in train)
    return [
        _finding("single_image_id", [im], f"train id {im.record.pid} has a single image")
        for im in train
        if counts[im.record.pid] == 1
    ]


def _unmatched_queries(images: list[ScannedImage]) -> list[dict]:
    cams: dict[int, set[int]] = {}
    for im in images:
        if im.split == "gallery":
            cams.setdefault(im.record.pid, set()).add(im.record.camid)
    lonely: dict[int, list[ScannedImage]] = {}
    for im in images:
        r = im.record
        if im.split == "query" and not (cams.get(r.pid, set()) - {r.camid}):
            lonely.setdefault(r.pid, []).append(im)
    return [
        _finding(
            "query_id_not_in_gallery",
            group,
            f"query id {pid}: {len(group)} image(s) with no gallery image of the id in another "
            f"camera ({'no gallery image at all' if pid not in cams else 'same camera only'})",
        )
        for pid, group in sorted(lonely.items())
    ]


def _outliers(images: list[ScannedImage], opt: CheckOptions) -> list[dict]:
    ok = [im for im in images if im.error is None and im.width and im.height]
    if not ok:
        return []
    area = statistics.median(im.width * im.height for im in ok)
    aspect = statistics.median(im.width / im.height for im in ok)
    found = []
    for im in ok:
        size = f"{im.width}x{im.height} (WxH)"
        ratio = im.width * im.height / area
        if ratio > opt.size_factor or ratio < 1 / opt.size_factor:
            msg = f"{size}: area {ratio:.2f}x the median"
            found.append(_finding("size_outlier", [im], msg, ratio=ratio))
        a = (im.width / im.height) / aspect
        if a > opt.aspect_factor or a < 1 / opt.aspect_factor:
            msg = f"{size}: aspect ratio {a:.2f}x the median ({aspect:.2f})"
            found.append(_finding("aspect_outlier", [im], msg, ratio=a))
    return found


def label_suspects(
    features: np.ndarray, pids: Sequence[int], k: int
) -> list[tuple[int, list[int], int]]:
    """``(image, its k neighbours, their id)`` for each image whose ``k`` nearest neighbours
    (by Euclidean distance of L2-normalised ``features``, itself excluded) all carry one
    identity other than its own, and which is also nearer to that identity's mean feature than
    to the mean of its own identity's other images (neighbours alone also flag an image whose
    look merely resembles a few images of another person). Images whose identity has no other
    image are skipped."""
    try:
        from sklearn.neighbors import NearestNeighbors  # optional dependency ('check' extra)
    except ImportError:
        raise DataError(
            "the label check needs scikit-learn: pip install 'reidkit[check]' (or --label-k 0)"
        ) from None

    n = len(pids)
    if k < 1 or n <= k:
        return []
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(f).kneighbors(f)
    p = np.asarray(pids)
    count = Counter(p.tolist())
    sums = {pid: f[p == pid].sum(0) for pid in count}
    out = []
    for i in range(n):
        nb = [int(j) for j in idx[i] if j != i][:k]
        ids = {int(p[j]) for j in nb}
        own = int(p[i])
        if count[own] > 1 and len(ids) == 1 and own not in ids:
            other = ids.pop()
            own_mean = (sums[own] - f[i]) / (count[own] - 1)
            other_mean = sums[other] / count[other]
            if np.linalg.norm(f[i] - other_mean) < np.linalg.norm(f[i] - own_mean):
                out.append((i, nb, other))
    return out


def _labels(ds: ReidDataset, images: list[ScannedImage], embed: Embed, k: int) -> list[dict]:
    pools = {
        "train": [im for im in images if im.split == "train"],
        "query+gallery": [
            im for im in images if im.split in ("query", "gallery") and im.record.pid > 0
        ],
    }
    found = []
    for name, pool in pools.items():
        pool = [im for im in pool if im.error is None]
        if len(pool) <= k:
            continue
        feats, paths = embed([im.record for im in pool], ds.source)
        by_path = {im.record.path: im for im in pool}  # record paths are unique keys
        rows = [by_path[p] for p in paths]
        for i, nb, other in label_suspects(feats, [im.record.pid for im in rows], k):
            im = rows[i]
            msg = (
                f"{im.split} image labelled {im.record.pid}: its {k} nearest neighbours "
                f"in {name} all carry id {other}"
            )
            found.append(_finding("label_suspect", [im] + [rows[j] for j in nb], msg, other=other))
    return found


def check_dataset(
    ds: ReidDataset,
    options: CheckOptions | None = None,
    embed: Embed | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Counts and findings of ``ds`` (see the module docstring); ``embed`` None skips the
    label check. The result is plain JSON data."""
    opt = (options or CheckOptions()).validate()
    images, hashes = scan_images(ds, progress=progress)
    findings = [_finding("unreadable", [im], im.error or "unreadable") for im in images if im.error]
    findings += _duplicates(images, hashes, opt)
    findings += _singletons(images)
    findings += _unmatched_queries(images)
    findings += _outliers(images, opt)
    label_check = embed is not None and opt.label_k > 0
    if label_check:
        findings += _labels(ds, images, embed, opt.label_k)
    summary = {k: sum(f["kind"] == k for f in findings) for k in KINDS}
    return {
        "root": str(ds.source.root),
        "name": ds.name,
        "options": asdict(opt),
        "label_check": label_check,
        "splits": split_counts(ds),
        "listing_problems": list(ds.problems),
        "summary": summary,
        "leakage": any(summary[k] for k in LEAK_KINDS),
        "findings": findings,
    }


def format_check(result: dict[str, Any]) -> str:
    """The summary table printed by ``reidkit data check``."""
    lines = [f"{result['root']}: {result['name']}"]
    lines.append(f"{'split':<8} {'images':>7} {'ids':>5} {'cams':>5}  images/id min/med/max")
    for split, s in result["splits"].items():
        per = s["images_per_id"]
        lines.append(
            f"{split:<8} {s['images']:>7} {s['ids']:>5} {s['cameras']:>5}  "
            f"{per['min']}/{_num(per['median'])}/{per['max']}"
        )
    width = max(len(k) for k in KINDS)
    lines.append("")
    lines.append(f"{'finding':<{width}}  {'count':>5}  what")
    for kind, what in KINDS.items():
        n = result["summary"][kind]
        skipped = kind == "label_suspect" and not result["label_check"]
        lines.append(f"{kind:<{width}}  {'-' if skipped else n:>5}  {what}")
    total = sum(result["summary"].values())
    verdict = "LEAKAGE found" if result["leakage"] else "no leakage"
    lines.append(f"{total} finding(s); {verdict}")
    return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"
