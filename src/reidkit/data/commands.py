"""CLI verbs of the data package: ``reidkit synth``."""

from __future__ import annotations

import argparse
from typing import Any


def _synth(args: argparse.Namespace) -> int:
    from reidkit.data.synthetic import generate_synthetic, summary_lines

    summary = generate_synthetic(
        args.out,
        num_ids=args.ids,
        num_cameras=args.cameras,
        img_h=args.height,
        img_w=args.width,
        seed=args.seed,
        images_per_id=args.images_per_id,
        num_test_ids=args.test_ids,
    )
    print("\n".join(summary_lines(summary)))
    return 0


def register(subparsers: Any) -> None:
    """Add the data verbs to the ``reidkit`` parser."""
    p = subparsers.add_parser(
        "synth",
        help="write a synthetic person dataset in Market-1501 layout",
        description="Write a synthetic person ReID dataset (Market-1501 folders and file "
        "names: bounding_box_train/, query/, bounding_box_test/ with junk and distractors).",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--ids", type=int, default=50, help="training identities (default 50)")
    p.add_argument("--test-ids", type=int, default=None, help="test identities (default = --ids)")
    p.add_argument("--cameras", type=int, default=6, help="number of cameras (default 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument("--height", type=int, default=128, help="image height (default 128)")
    p.add_argument("--width", type=int, default=64, help="image width (default 64)")
    p.add_argument("--images-per-id", type=int, default=16, help="images per identity (default 16)")
    p.set_defaults(func=_synth)
