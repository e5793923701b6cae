"""Plant known problems in a synthetic Market-1501 folder, to see ``reidkit data check`` work.

``plant_problems(root)`` changes a folder written by ``generate_synthetic`` in four ways and
returns (and saves as ``.reidkit_planted.json``) which files it touched:

* ``identical_leak``: a train image copied byte for byte into ``bounding_box_test/``;
* ``near_duplicate_leak``: another train image, resized to 90% and re-encoded as JPEG
  quality 60, written into ``bounding_box_test/``;
* ``label_suspect``: a train image of the identity with most images renamed to another
  identity (a wrong label);
* ``single_image_id``: a train identity reduced to one image.

The identities involved are all different, chosen deterministically from the file names.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from PIL import Image

from reidkit.data.images import read_rgb
from reidkit.data.layouts.market import parse_market_name
from reidkit.utils.errors import DataError

PLANTED = ".reidkit_planted.json"


def _train_by_id(train: Path) -> dict[int, list[Path]]:
    by_id: dict[int, list[Path]] = {}
    for p in sorted(train.glob("*.jpg")):
        parsed = parse_market_name(p.name)
        if parsed is not None:
            by_id.setdefault(parsed[0], []).append(p)
    return by_id


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or the same name with a higher ``_NN`` suffix if taken."""
    stem, ext = name.rsplit(".", 1)
    base, n = stem.rsplit("_", 1)
    k = int(n)
    while (folder / f"{base}_{k:02d}.{ext}").exists():
        k += 1
    return folder / f"{base}_{k:02d}.{ext}"


def plant_problems(root: str | Path) -> dict[str, list[str]]:
    """Plant the four problems under ``root``; returns ``kind -> paths`` (relative to root)."""
    root = Path(root)
    train, gallery = root / "bounding_box_train", root / "bounding_box_test"
    by_id = _train_by_id(train)
    if len(by_id) < 5 or not gallery.is_dir():
        raise DataError(
            f"{root}: planting needs a synthetic Market folder with at least 5 train ids "
            f"(found {len(by_id)}); write one with reidkit synth --ids 5 or more"
        )
    order = sorted(by_id, key=lambda pid: (-len(by_id[pid]), pid))
    big, other, single, copied, blurred = order[:5]
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    planted: dict[str, list[str]] = {}

    wrong = by_id[big][-1]
    renamed = _free_name(train, f"{other:04d}{wrong.name[4:]}")
    wrong.rename(renamed)
    planted["label_suspect"] = [rel(renamed)]

    for p in by_id[single][1:]:
        p.unlink()
    planted["single_image_id"] = [rel(by_id[single][0])]

    src = by_id[copied][0]
    shutil.copyfile(src, gallery / src.name)
    planted["identical_leak"] = [rel(src), rel(gallery / src.name)]

    src = by_id[blurred][0]
    im = Image.fromarray(read_rgb(src))
    small = im.resize((round(im.width * 0.9), round(im.height * 0.9)))
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=60)
    (gallery / src.name).write_bytes(buf.getvalue())
    planted["near_duplicate_leak"] = [rel(src), rel(gallery / src.name)]

    (root / PLANTED).write_text(json.dumps(planted, indent=1) + "\n", encoding="utf-8")
    return planted
