"""The ``reidkit`` command: parse arguments, then call one public function per verb.

Verbs live in ``reidkit.app.commands.<area>`` (a ``register(subparsers)`` function each), so
this file stays a thin dispatcher. Every failure ends as one line (``reidkit.app.boundary``):
expected ones exit 2, bugs exit 3 with the path of a crash log, usage errors exit 2.

The verb modules import the library inside their handlers: ``reidkit --help`` then loads no
torch (about 0.1 s instead of several seconds). This is the one place in the package where
reidkit modules are imported inside functions (``tests/test_architecture.py`` enforces it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from reidkit import __version__
from reidkit.app.boundary import run_guarded
from reidkit.app.commands import data as data_verbs
from reidkit.app.commands import deploy as deploy_verbs
from reidkit.app.commands import distill as distill_verbs
from reidkit.app.commands import evaluate as evaluate_verbs
from reidkit.app.commands import models as models_verbs
from reidkit.app.commands import train as train_verbs

VERB_MODULES = (
    train_verbs,
    distill_verbs,
    data_verbs,
    models_verbs,
    evaluate_verbs,
    deploy_verbs,
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit 2), like every error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every area's verbs."""
    parser = OneLineParser(
        prog="reidkit",
        description="Train, evaluate and deploy re-identification models.",
    )
    parser.add_argument("--version", action="version", version=f"reidkit {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in VERB_MODULES:
        module.register(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; ``key=value`` overrides may stand anywhere after the verb (argparse
    alone rejects them after an option such as ``-c params.json``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status (see ``app.boundary``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere on the line
    args = parse(build_parser(), argv)
    return run_guarded(lambda: args.func(args), argv, debug)


if __name__ == "__main__":
    sys.exit(main())
