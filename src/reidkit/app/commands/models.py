"""CLI verb of the models area: ``reidkit models`` lists the backbones."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``models`` to the ``reidkit`` command."""
    p = sub.add_parser("models", help="list the available backbones with parameter counts")
    p.add_argument("names", nargs="*", help="only these backbones (default: all)")
    p.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    from reidkit.models.catalog import backbone_table

    print(backbone_table(args.names or None))
    return 0
