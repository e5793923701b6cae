"""Renaming a foreign state dict onto a reidkit model, with a report of what went where.

A ``Rule`` is a regular expression matched at the start of a source key and a replacement
template (``\\1`` ... refer to its groups); the rest of the key is kept. The first matching
rule wins. Every source key must land on a tensor of the reidkit model with the same shape
(or the same shape with trailing unit dimensions, e.g. a 1x1 convolution onto a Linear), and
every tensor of the model must receive one: anything else is a ``SourceMismatchError`` that
names the first offending keys. Keys the plan deliberately drops (a classifier the user does
not want) are "left out", with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from reidkit.utils.errors import CheckpointError

MAX_NAMED = 3  # keys quoted in a one-line error


class SourceMismatchError(CheckpointError):
    """A checkpoint's keys or shapes do not match the architecture its SOURCE names."""


@dataclass(frozen=True)
class Rule:
    """Source keys matching ``pattern`` (at their start) are renamed by ``target``."""

    pattern: str
    target: str

    def apply(self, key: str) -> str | None:
        """The reidkit key of ``key``, or None when the rule does not match it."""
        m = re.match(self.pattern, key)
        return None if m is None else m.expand(self.target) + key[m.end() :]


@dataclass
class ImportReport:
    """What an import did: source -> reidkit keys, keys left out (with why), and failures."""

    source: str
    checkpoint: str
    mapped: list[tuple[str, str]] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Human-readable lines: counts, left-out keys with reasons, notes."""
        lines = [
            f"imported {self.checkpoint} as {self.source}: {len(self.mapped)} tensors mapped"
            + (f", {len(self.filled)} filled with defaults" if self.filled else "")
        ]
        for key, why in self.left_out:
            lines.append(f"  left out {key}: {why}")
        lines += [f"  unmatched {k}" for k in self.unmatched]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able form (written as import.json in the run folder)."""
        return {
            "source": self.source,
            "checkpoint": self.checkpoint,
            "mapped": [{"from": a, "to": b} for a, b in self.mapped],
            "left_out": [{"key": k, "reason": r} for k, r in self.left_out],
            "unmatched": self.unmatched,
            "filled": self.filled,
            "notes": self.notes,
        }


def _named(keys: list[str]) -> str:
    more = f" (+{len(keys) - MAX_NAMED} more)" if len(keys) > MAX_NAMED else ""
    return ", ".join(keys[:MAX_NAMED]) + more


def _fits(value: torch.Tensor, want: torch.Size) -> bool:
    """Same shape, or the same shape followed by unit dimensions ((E, C, 1, 1) -> (E, C))."""
    have = tuple(value.shape)
    return have == tuple(want) or (
        have[: len(want)] == tuple(want) and all(d == 1 for d in have[len(want) :])
    )


def map_state(
    state: dict[str, torch.Tensor],
    rules: list[Rule],
    own: dict[str, torch.Tensor],
    report: ImportReport,
    drop: dict[str, str] | None = None,
) -> dict[str, torch.Tensor]:
    """Rename ``state`` onto the model state ``own`` by ``rules``; fill ``report``.

    ``drop`` maps source-key prefixes to the reason they are left out. Tensors of ``own``
    that nothing maps onto are reported missing, except BatchNorm ``num_batches_tracked``
    counters (set to 0: some norms do not keep one). Raises ``SourceMismatchError`` for
    unmatched / missing keys or a shape that does not fit.
    """
    out: dict[str, torch.Tensor] = {}
    misfits: list[str] = []
    misfit_targets: set[str] = set()
    for key, value in state.items():
        why = next((r for p, r in (drop or {}).items() if key.startswith(p)), None)
        if why is not None:
            report.left_out.append((key, why))
            continue
        target = next((t for t in (r.apply(key) for r in rules) if t is not None), None)
        if target is None or target not in own or target in out:
            report.unmatched.append(key)
        elif not _fits(value, own[target].shape):
            misfit_targets.add(target)
            misfits.append(
                f"tensor {key} has shape {tuple(value.shape)} but {report.source} puts it in "
                f"{target} of shape {tuple(own[target].shape)}"
            )
        else:
            out[target] = value.reshape(own[target].shape).to(own[target].dtype)
            report.mapped.append((key, target))
    for key, value in own.items():
        if key not in out and key.endswith("num_batches_tracked"):
            out[key] = torch.zeros_like(value)
            report.filled.append(key)
    report.missing = [k for k in own if k not in out and k not in misfit_targets]
    check_complete(report, misfits)
    return out


def check_complete(report: ImportReport, misfits: list[str] = ()) -> None:
    """Raise ``SourceMismatchError`` naming the first unmatched keys, else the first reidkit
    tensors nothing was mapped onto, else the first shape that does not fit."""
    if report.unmatched:
        raise SourceMismatchError(
            f"{report.checkpoint}: {len(report.unmatched)} checkpoint keys match nothing in "
            f"{report.source}: {_named(report.unmatched)}; is it a checkpoint of another "
            "architecture?"
        )
    if report.missing:
        raise SourceMismatchError(
            f"{report.checkpoint}: {report.source} expects tensors the checkpoint lacks (reidkit "
            f"{_named(report.missing)}); is it a checkpoint of another architecture?"
        )
    if misfits:
        raise SourceMismatchError(
            f"{report.checkpoint}: {misfits[0]}"
            + (f" (+{len(misfits) - 1} more)" if len(misfits) > 1 else "")
            + "; is the checkpoint of another architecture or width?"
        )
