"""CLI verbs of the models area: ``reidkit models`` lists the backbones; ``reidkit import``
turns a torchreid / fast-reid checkpoint into a reidkit run folder."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``models`` and ``import`` to the ``reidkit`` command."""
    p = sub.add_parser("models", help="list the available backbones with parameter counts")
    p.add_argument("names", nargs="*", help="only these backbones (default: all)")
    p.set_defaults(func=_models)

    i = sub.add_parser(
        "import",
        help="make a reidkit run folder from a torchreid / fast-reid checkpoint",
        description="Map a torchreid or fast-reid checkpoint onto reidkit's modules and write "
        "RUN_DIR (config.json, best.pth, import.json) for reidkit eval / export / the "
        "Embedder. SOURCE: torchreid:<arch>, fastreid:<preset>, fastreid:<config.yaml> or "
        "fastreid (config.yaml beside the checkpoint). See docs/importing.md.",
    )
    i.add_argument("source", help="e.g. torchreid:osnet_x1_0, fastreid:sbs_r50_ibn")
    i.add_argument("checkpoint", help="the checkpoint file (.pth, .pth.tar)")
    i.add_argument("--out", required=True, help="run folder to write")
    i.add_argument(
        "--drop-classifier",
        action="store_true",
        help="leave the identity classifier out (retrieval does not use it)",
    )
    i.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    i.add_argument(
        "overrides",
        nargs="*",
        metavar="key.sub=value",
        help="config overrides, e.g. batches_dir=data/market1501 img_h=384",
    )
    i.set_defaults(func=_import)


def _models(args: argparse.Namespace) -> int:
    from reidkit.models.catalog import backbone_table

    print(backbone_table(args.names or None))
    return 0


def _import(args: argparse.Namespace) -> int:
    from reidkit.models.importers import import_checkpoint

    report = import_checkpoint(
        args.source,
        args.checkpoint,
        args.out,
        drop_classifier=args.drop_classifier,
        overrides=args.overrides,
        overwrite=args.overwrite,
    )
    print(report.summary())
    print(f"run folder: {args.out}")
    return 0
