"""CLI verb of distillation: ``distill``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``distill`` to the ``reidkit`` command."""
    p = sub.add_parser(
        "distill",
        help="train a small student from a trained teacher (KD, feature, relation; "
        "docs/distillation.md)",
    )
    p.add_argument("-c", "--config", required=True, help="the student's params.json or .yaml")
    p.add_argument(
        "--teacher", metavar="RUN", help="teacher run folder or checkpoint (distill.teacher)"
    )
    p.add_argument(
        "--unlabeled",
        metavar="DIR",
        help="label-free: learn from the teacher's features on these crops (distill.unlabeled)",
    )
    p.add_argument("--sub-working-dir", "--sub_working_dir", dest="sub_working_dir")
    p.add_argument(
        "--resume", nargs="?", const="auto", default=None, help="continue (as train --resume)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace the run in the run folder")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    p.set_defaults(func=_distill)


def _distill(args: argparse.Namespace) -> int:
    from reidkit.app.distill import distill, distill_config

    overrides = list(args.overrides)
    if args.resume and "=" in args.resume and not Path(args.resume).exists():
        overrides.insert(0, args.resume)  # `--resume key=value`: an override, not a file
        args.resume = "auto"
    cfg = distill_config(
        args.config,
        overrides,
        teacher=args.teacher,
        unlabeled=args.unlabeled,
        sub_working_dir=args.sub_working_dir,
    )
    distill(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
