"""reidkit: train, evaluate and deploy re-identification models."""

from typing import Any

__version__ = "0.1.0"

# Heavy names load on first use so that ``import reidkit`` (and ``reidkit --help``) stays fast.
_LAZY = {"Embedder": "reidkit.deploy.embedder"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reidkit' has no attribute {name!r}")
