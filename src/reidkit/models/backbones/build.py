"""``build_backbone``: a registered backbone by name, or any timm model as ``timm:<name>``."""

from __future__ import annotations

from reidkit.models.backbones.base import Backbone, Pretrained, get_backbone_spec
from reidkit.models.backbones.timm_net import PREFIX, build_timm_backbone
from reidkit.utils.errors import ConfigError


def build_backbone(name: str, last_stride: int = 1, pretrained: Pretrained = False) -> Backbone:
    """Build a registered backbone (or ``timm:<model>``), optionally with ImageNet weights
    (``True`` for the published ones, or a file path)."""
    if last_stride not in (1, 2):
        raise ConfigError(f"model_params.last_stride = {last_stride!r}: expected 1 or 2")
    if name.startswith(PREFIX):
        return build_timm_backbone(name, last_stride, pretrained)
    return get_backbone_spec(name).builder(last_stride, pretrained)
