"""Market-1501 layout (also DukeMTMC-reID, which uses the same file naming).

``bounding_box_train/``, ``query/``, ``bounding_box_test/`` hold files named
``0002_c1s1_000451_03.jpg``: a 4-digit person id (``-1`` = junk, ``0000`` = distractor),
``c<N>`` the 1-based camera (camid ``N-1``), then sequence / frame / box numbers
(DukeMTMC: ``0001_c2_f0046182.jpg``). Junk and distractors are kept in the gallery (the
evaluator handles them) and left out of training. Without ``bounding_box_train/`` (or with an
empty one) the dataset is test-only: it can be evaluated on, not trained on.
"""

from __future__ import annotations

import re
from pathlib import Path

from reidkit.data.layouts.common import SkipLog, list_images, optional_train, require_nonempty
from reidkit.data.records import Record, ReidDataset, relabel
from reidkit.data.sources import FolderSource

MARKET_NAME = re.compile(r"^(-1|\d+)_c(\d+)")
MARKET_SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


def parse_market_name(name: str) -> tuple[int, int] | None:
    """``(pid, camid)`` of a Market/Duke file name, or ``None`` when it does not parse.

    Camera numbers are 1-based in file names; camid is 0-based. ``c0`` does not parse.
    """
    m = MARKET_NAME.match(name)
    if m is None:
        return None
    pid, cam = int(m.group(1)), int(m.group(2))
    if cam < 1:
        return None
    return pid, cam - 1


def read_market_split(root: Path, folder: str, skips: SkipLog, *, keep_junk: bool) -> list[Record]:
    """Records of one Market split folder; names that do not parse go to ``skips``."""
    records = []
    for path in list_images(root / folder):
        parsed = parse_market_name(path.name)
        if parsed is None:
            skips.add("file name does not parse as <pid>_c<camera>...", path)
            continue
        if path.stat().st_size == 0:
            skips.add("empty file (0 bytes)", path)
            continue
        pid, camid = parsed
        if not keep_junk and pid <= 0:
            continue
        records.append(Record(f"{folder}/{path.name}", pid, camid))
    return records


def load_market(root: str | Path, name: str = "market1501") -> ReidDataset:
    """Read a Market-1501-style folder into a ``ReidDataset`` (train pids relabelled)."""
    root = Path(root)
    skips = SkipLog()
    train_dir = root / MARKET_SPLITS["train"]
    train = []
    if not optional_train(train_dir):
        train = read_market_split(root, MARKET_SPLITS["train"], skips, keep_junk=False)
        require_nonempty(train, train_dir, "train", skips)
    query = read_market_split(root, MARKET_SPLITS["query"], skips, keep_junk=True)
    gallery = read_market_split(root, MARKET_SPLITS["gallery"], skips, keep_junk=True)
    for split, records in (("query", query), ("gallery", gallery)):
        require_nonempty(records, root / MARKET_SPLITS[split], split, skips)
    skips.warn()
    train, mapping = relabel(train)
    return ReidDataset(
        name=name,
        train=train,
        query=query,
        gallery=gallery,
        num_train_ids=len(mapping),
        source=FolderSource(root),
        skipped=skips.total,
        problems=skips.lines(),
    )
