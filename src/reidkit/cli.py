"""The ``reidkit`` command: parse arguments, then call one public function per verb.

Verbs of each area live in ``reidkit.<area>.commands`` (a ``register(subparsers)`` function),
so this file stays a thin dispatcher. Any ``ReidkitError`` is printed as one line
(``error: ...``) with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from reidkit import __version__
from reidkit.utils.errors import ReidkitError

AREA_COMMANDS = (
    "reidkit.engine.commands",
    "reidkit.data.commands",
    "reidkit.models.commands",
    "reidkit.evaluation.commands",
    "reidkit.deploy.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every area's verbs."""
    parser = argparse.ArgumentParser(
        prog="reidkit",
        description="Train, evaluate and deploy re-identification models.",
    )
    parser.add_argument("--version", action="version", version=f"reidkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in AREA_COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ReidkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
