"""``ImportPlan``: a SOURCE in reidkit terms (config keys, key renames, fixed tensors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from reidkit.models.importers.mapping import Rule
from reidkit.utils.errors import ConfigError


class UnsupportedSourceError(ConfigError):
    """A SOURCE (framework, architecture or config setting) reidkit cannot reproduce."""


@dataclass
class ImportPlan:
    """How to turn one source checkpoint into a reidkit run.

    ``model_params`` / ``config`` are reidkit config keys (``config`` holds top-level ones:
    img_h, img_w, data, evaluation_params); ``rules`` rename source keys; ``fixed`` are
    reidkit tensors with values that are constants in the source (a non-learnable GeM p);
    ``classifier_prefixes`` are the source keys of the identity classifier (left out on
    request); ``num_classes`` its number of classes (0: no classifier in the checkpoint).
    """

    source: str
    model_params: dict[str, Any]
    config: dict[str, Any]
    rules: list[Rule]
    classifier_prefixes: tuple[str, ...] = ()
    num_classes: int = 0
    fixed: dict[str, torch.Tensor] = field(default_factory=dict)
    ignore: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    size_note: str = ""  # said when the user did not set img_h / img_w


def refuse(source: str, what: str) -> UnsupportedSourceError:
    """The one-line error for something of ``source`` reidkit does not reproduce."""
    return UnsupportedSourceError(f"{source}: {what}")
