"""CLI verbs of the data package: ``synth``, ``crops``, ``data info``, ``data check``,
``pack``, ``unpack``."""

from __future__ import annotations

import argparse
from typing import Any

from reidkit.utils.choices import DEVICES


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
        plant=args.plant_problems,
    )
    print("\n".join(summary_lines(summary)))
    return 0


def _crops(args: argparse.Namespace) -> int:
    from reidkit.data.crops import summary_lines, video_to_dataset
    from reidkit.data.video import HogDetector

    detector = None
    if args.mot is None:
        detector = HogDetector(upscale=args.upscale, min_score=args.min_score)
    summary = video_to_dataset(
        args.video,
        args.out,
        mot=args.mot,
        labelled=args.labelled,
        frames=args.frames,
        stride=args.stride,
        min_height=args.min_height,
        min_track=args.min_track,
        max_crops_per_track=args.max_crops_per_track,
        split_frame=args.split_frame,
        camera=args.camera,
        overwrite=args.overwrite,
        detector=detector,
        max_gap=args.max_gap,
    )
    print("\n".join(summary_lines(summary)))
    return 0


def _add_crops(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "crops",
        help="cut person crops from a video into a ReID dataset (MOT boxes or HOG tracklets)",
        description="Cut the people of VIDEO into a dataset: boxes from a MOTChallenge file "
        "(--mot; track = identity) or found by OpenCV's HOG detector and linked into "
        "tracklets by overlap. Writes a flat folder of unlabeled crops, or with --labelled a "
        "Market-1501 folder (query = earlier half of each tracklet, gallery = later half). "
        "Needs the video extra: pip install 'reidkit[video]'.",
    )
    p.add_argument("video", help="video file (anything OpenCV reads, e.g. .avi, .mp4)")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--mot", help="MOTChallenge boxes 'frame,id,x,y,w,h,conf,...' (1-based frames)")
    p.add_argument("--labelled", action="store_true", help="Market layout, tracklets as ids")
    p.add_argument("--frames", help="frame range A:B, inclusive and 1-based (default: all)")
    p.add_argument(
        "--split-frame",
        type=int,
        metavar="F",
        help="with --labelled: frames < F -> bounding_box_train/, frames >= F -> query/gallery",
    )
    p.add_argument("--stride", type=int, default=1, help="use every Nth frame (default 1)")
    p.add_argument("--min-height", type=float, default=0, help="drop boxes shorter (pixels)")
    p.add_argument("--min-track", type=int, default=5, help="drop tracklets with fewer boxes")
    p.add_argument(
        "--max-crops-per-track",
        type=int,
        default=0,
        help="keep at most N crops per tracklet, spread in time (default 0: all)",
    )
    p.add_argument("--camera", help="camera number N, or name=N,... by video file name")
    p.add_argument("--max-gap", type=int, default=5, help="frames a tracklet may go unseen")
    p.add_argument("--upscale", type=float, default=1.5, help="HOG: scale frames first")
    p.add_argument("--min-score", type=float, default=0.5, help="HOG: minimum SVM score")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier crops output")
    p.set_defaults(func=_crops)


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
    p.add_argument(
        "--plant-problems",
        action="store_true",
        help="plant a copy and a near duplicate across splits, a wrong label and an id with "
        "one image (to try reidkit data check)",
    )
    p.set_defaults(func=_synth)


def _check(args: argparse.Namespace) -> int:
    from reidkit.app.data_check import parse_size, run_data_check
    from reidkit.data.check import CheckOptions, format_check

    options = CheckOptions(
        hash_distance=args.hash_distance,
        size_factor=args.size_factor,
        aspect_factor=args.aspect_factor,
        label_k=args.label_k,
    )
    result, paths = run_data_check(
        args.root,
        layout=args.layout,
        out=args.out,
        options=options,
        model=args.model,
        features=not args.no_labels and args.label_k > 0,
        feature_size=parse_size(args.feature_size),
        device=args.device,
        max_shown=args.max_shown,
        progress=not args.quiet,
    )
    print(format_check(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 1 if result["leakage"] else 0


CHECK_HELP = """\
Reads every image once and reports: leakage between splits (identical files, and near
duplicates by a 256-bit perceptual hash), duplicates within a split, train ids with one
image, query ids with no gallery image in another camera, images per camera and per id,
size and aspect-ratio outliers, and suspected label mistakes (an image whose --label-k
nearest neighbours all carry one other id; features of --model, or ImageNet MobileNetV2).
Writes check.json and check.html (thumbnails of every finding) to --out.
Exit status: 0 no leakage, 1 leakage found, 2 error (an internal error also exits 1,
printing an 'internal error' line instead of the table)."""


def _add_check(verbs: Any) -> None:
    c = verbs.add_parser(
        "check",
        help="leakage, duplicates, label mistakes, outliers (exit 1 on leakage)",
        description=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("root", help="dataset folder or packed .lmdb store")
    c.add_argument("--layout", default="auto", help="layout name (default: detect)")
    c.add_argument("-o", "--out", help="output folder (default: ./<dataset name>_check)")
    c.add_argument(
        "--hash-distance",
        type=int,
        default=16,
        help="near duplicates: at most this many of 256 perceptual-hash bits differ "
        "(default 16; 0 = identical hashes only)",
    )
    c.add_argument(
        "--size-factor",
        type=float,
        default=4.0,
        help="size outlier: area this many times above or below the median (default 4)",
    )
    c.add_argument(
        "--aspect-factor",
        type=float,
        default=1.5,
        help="aspect outlier: width/height this many times off the median (default 1.5)",
    )
    c.add_argument(
        "--label-k",
        type=int,
        default=3,
        help="label suspect: its K nearest neighbours all carry one other id (default 3)",
    )
    c.add_argument(
        "--model",
        metavar="RUN",
        help="features of this run folder / checkpoint (default: ImageNet MobileNetV2)",
    )
    c.add_argument(
        "--feature-size",
        default="256x128",
        help="HxW the ImageNet features are computed at (default 256x128; 128x64 is 4x "
        "quicker and coarser)",
    )
    c.add_argument("--no-labels", action="store_true", help="skip the label check (no model)")
    c.add_argument("--max-shown", type=int, default=50, help="findings per kind drawn in html")
    c.add_argument("--device", default="auto", choices=DEVICES)
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_check)


def register(subparsers: Any) -> None:
    """Add the data verbs to the ``reidkit`` parser."""
    _add_synth(subparsers)
    _add_crops(subparsers)
    data = subparsers.add_parser("data", help="inspect datasets (data info / data check ROOT)")
    verbs = data.add_subparsers(dest="data_command", metavar="VERB")
    verbs.required = True
    info = verbs.add_parser(
        "info", help="identities / images / cameras per split, image sizes, problems"
    )
    info.add_argument("root", help="dataset folder or packed .lmdb store")
    info.add_argument("--layout", default="auto", help="layout name (default: detect)")
    info.add_argument("--sample", type=int, default=200, help="images per split read for sizes")
    info.set_defaults(func=_info)
    _add_check(verbs)
    pack = subparsers.add_parser("pack", help="pack a dataset folder into one LMDB file (atomic)")
    pack.add_argument("root", help="dataset folder")
    pack.add_argument("out", help="output store, e.g. market.lmdb")
    pack.add_argument("--layout", default="auto", help="layout name (default: detect)")
    pack.set_defaults(func=_pack)
    unpack = subparsers.add_parser("unpack", help="write a packed store back to a folder")
    unpack.add_argument("store", help="packed .lmdb store")
    unpack.add_argument("out", help="output folder")
    unpack.set_defaults(func=_unpack)
