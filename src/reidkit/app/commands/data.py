"""CLI verbs of the data package: ``synth``, ``data info``, ``pack``, ``unpack``."""

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


def _info(args: argparse.Namespace) -> int:
    from reidkit.data.info import dataset_info, format_info

    print(format_info(dataset_info(args.root, args.layout, sample=args.sample)))
    return 0


def _pack(args: argparse.Namespace) -> int:
    from reidkit.data.pack import pack_dataset

    s = pack_dataset(args.root, args.out, args.layout)
    print(
        f"packed {s['images']} images ({s['layout']}: train {s['train']}, query {s['query']}, "
        f"gallery {s['gallery']}) into {s['store']} ({s['bytes'] / 2**20:.1f} MiB)"
    )
    return 0


def _unpack(args: argparse.Namespace) -> int:
    from reidkit.data.pack import unpack_store

    s = unpack_store(args.store, args.out)
    print(f"unpacked {s['images']} images into {s['folder']}")
    return 0


def _add_synth(subparsers: Any) -> None:
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


def register(subparsers: Any) -> None:
    """Add the data verbs to the ``reidkit`` parser."""
    _add_synth(subparsers)
    data = subparsers.add_parser("data", help="inspect datasets (data info ROOT)")
    verbs = data.add_subparsers(dest="data_command", metavar="VERB")
    verbs.required = True
    info = verbs.add_parser(
        "info", help="identities / images / cameras per split, image sizes, problems"
    )
    info.add_argument("root", help="dataset folder or packed .lmdb store")
    info.add_argument("--layout", default="auto", help="layout name (default: detect)")
    info.add_argument("--sample", type=int, default=200, help="images per split read for sizes")
    info.set_defaults(func=_info)
    pack = subparsers.add_parser("pack", help="pack a dataset folder into one LMDB file (atomic)")
    pack.add_argument("root", help="dataset folder")
    pack.add_argument("out", help="output store, e.g. market.lmdb")
    pack.add_argument("--layout", default="auto", help="layout name (default: detect)")
    pack.set_defaults(func=_pack)
    unpack = subparsers.add_parser("unpack", help="write a packed store back to a folder")
    unpack.add_argument("store", help="packed .lmdb store")
    unpack.add_argument("out", help="output folder")
    unpack.set_defaults(func=_unpack)
