"""``reidkit data info``: what a dataset folder or store holds, and what is wrong with it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from reidkit.data.build import load_dataset
from reidkit.data.images import image_header
from reidkit.data.records import ReidDataset
from reidkit.data.video_records import all_frames, is_video


def _sizes(ds: ReidDataset, paths: list[str], limit: int) -> tuple[Counter, list[str]]:
    """(HxW counts, problems) of up to ``limit`` images, reading headers only."""
    sizes: Counter = Counter()
    bad: list[str] = []
    step = max(1, len(paths) // limit) if limit else 1
    for p in paths[::step]:
        try:
            header = image_header(ds.source.read(p), p)
            sizes[f"{header.height}x{header.width}"] += 1
            if header.mode not in ("RGB",):
                sizes[f"mode {header.mode}"] += 1
            if header.frames > 1:
                sizes[f"{header.format} of {header.frames} frames (the first is used)"] += 1
        except Exception as e:  # noqa: BLE001 - any unreadable image is a problem to report
            bad.append(f"{p}: unreadable ({type(e).__name__})")
    return sizes, bad


def split_stats(ds: ReidDataset, split: str) -> dict[str, Any]:
    """Counts of one split: images, identities, cameras, junk and distractors."""
    recs = ds.splits[split]
    pids = Counter(r.pid for r in recs)
    return {
        "images": len(recs),
        "identities": len([p for p in pids if p > 0 or split == "train"]),
        "cameras": len({r.camid for r in recs}),
        "junk": pids.get(-1, 0) if split != "train" else 0,
        "distractors": pids.get(0, 0) if split != "train" else 0,
        "single_image_ids": sum(1 for n in pids.values() if n == 1),
    }


def _problems(ds: ReidDataset, stats: dict[str, dict[str, Any]]) -> list[str]:
    out = list(ds.problems)
    if stats["train"]["single_image_ids"]:
        out.append(
            f"{stats['train']['single_image_ids']} train identities have a single image "
            "(PK sampling repeats it)"
        )
    gallery = {}
    for r in ds.gallery:
        gallery.setdefault(r.pid, set()).add(r.camid)
    no_match = [q for q in ds.query if not (gallery.get(q.pid, set()) - {q.camid})]
    if ds.gallery and no_match:
        out.append(
            f"{len(no_match)} query images have no gallery image of their identity in another "
            f"camera (first: {no_match[0].path}); the evaluator ignores them"
        )
    return out


def dataset_info(root: str | Path, layout: str = "auto", sample: int = 200) -> dict[str, Any]:
    """Identities / images / cameras per split, image sizes (``sample`` per split), problems;
    a video dataset also gets its tracklets per split (images are then its frames)."""
    ds = load_dataset(root, layout)
    tracklets = {s: len(t) for s, t in ds.splits.items()} if is_video(ds) else None
    if is_video(ds):
        ds = all_frames(ds)  # type: ignore[arg-type]
    stats = {s: split_stats(ds, s) for s in ds.splits}
    for split, n in (tracklets or {}).items():
        stats[split]["tracklets"] = n
    sizes: Counter = Counter()
    unreadable: list[str] = []
    for recs in ds.splits.values():
        s, bad = _sizes(ds, [r.path for r in recs], sample)
        sizes.update(s)
        unreadable += bad
    problems = _problems(ds, stats)
    if unreadable:
        problems.append(f"{len(unreadable)} sampled image(s) unreadable (first: {unreadable[0]})")
    return {
        "root": str(root),
        "source": ds.source.root,
        "name": ds.name,
        "num_train_ids": ds.num_train_ids,
        "classes": len(ds.class_names) if ds.class_names else None,
        "splits": stats,
        "image_sizes": dict(sizes.most_common(8)),
        "problems": problems,
    }


def format_info(info: dict[str, Any]) -> str:
    """The ``data info`` report as text."""
    lines = [f"{info['root']}: {info['name']} ({info['source']})"]
    video = any("tracklets" in s for s in info["splits"].values())
    head = f"{'split':<8} {'images':>8} {'ids':>6} {'cameras':>8} {'junk':>6} {'distr.':>7}"
    lines.append(head + (f" {'tracklets':>9}" if video else ""))
    for split, s in info["splits"].items():
        lines.append(
            f"{split:<8} {s['images']:>8} {s['identities']:>6} {s['cameras']:>8} "
            f"{s['junk']:>6} {s['distractors']:>7}"
            + (f" {s.get('tracklets', 0):>9}" if video else "")
        )
    if info["classes"]:
        lines.append(f"classes: {info['classes']}")
    sizes = ", ".join(f"{k} ({v})" for k, v in info["image_sizes"].items())
    lines.append(f"image sizes (sampled): {sizes or 'none'}")
    lines.append("problems: " + ("none" if not info["problems"] else ""))
    lines += [f"  - {p}" for p in info["problems"]]
    return "\n".join(lines)
