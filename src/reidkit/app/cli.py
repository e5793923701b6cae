"""The ``reidkit`` command: parse arguments, then call one public function per verb.

Verbs live in ``reidkit.app.commands.<area>`` (a ``register(subparsers)`` function each), so
this file stays a thin dispatcher. Any ``ReidkitError`` is printed as one line
(``error: ...``) with exit status 2.

The verb modules import the library inside their handlers: ``reidkit --help`` then loads no
torch (about 0.1 s instead of several seconds). This is the one place in the package where
reidkit modules are imported inside functions (``tests/test_architecture.py`` enforces it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from reidkit import __version__
from reidkit.app.commands import data as data_verbs
from reidkit.app.commands import deploy as deploy_verbs
from reidkit.app.commands import evaluate as evaluate_verbs
from reidkit.app.commands import models as models_verbs
from reidkit.app.commands import train as train_verbs
from reidkit.utils.errors import ReidkitError

VERB_MODULES = (train_verbs, data_verbs, models_verbs, evaluate_verbs, deploy_verbs)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every area's verbs."""
    parser = argparse.ArgumentParser(
        prog="reidkit",
        description="Train, evaluate and deploy re-identification models.",
    )
    parser.add_argument("--version", action="version", version=f"reidkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in VERB_MODULES:
        module.register(sub)
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
