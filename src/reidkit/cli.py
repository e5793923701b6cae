"""The ``reidkit`` console script (``reidkit.cli:main``); the parser is ``reidkit.app.cli``."""

from reidkit.app.cli import build_parser, main

__all__ = ["build_parser", "main"]
