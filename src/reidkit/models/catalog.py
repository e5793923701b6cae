"""A table of the registered backbones (name, parameters, channels) for ``reidkit models``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reidkit.models.backbones import backbone_names, build_backbone, get_backbone_spec


@dataclass(frozen=True)
class BackboneInfo:
    """One row of the backbone table."""

    name: str
    params: int
    out_channels: int
    description: str


def backbone_info(name: str) -> BackboneInfo:
    """Build ``name`` without weights (meta device, instant) and count its parameters."""
    description = "timm model" if name.startswith("timm:") else get_backbone_spec(name).description
    with torch.device("meta"):
        net = build_backbone(name, last_stride=1, pretrained=False)
    params = sum(p.numel() for p in net.parameters())
    return BackboneInfo(name, params, net.out_channels, description)


def backbone_table(names: list[str] | None = None) -> str:
    """A text table of ``names`` (default: every registered backbone)."""
    rows = [backbone_info(n) for n in (names or backbone_names())]
    width = max(len("backbone"), *(len(r.name) for r in rows))
    lines = [f"{'backbone':<{width}}  {'params':>9}  {'channels':>8}  description"]
    for r in rows:
        lines.append(
            f"{r.name:<{width}}  {r.params / 1e6:>8.2f}M  {r.out_channels:>8}  {r.description}"
        )
    return "\n".join(lines)
