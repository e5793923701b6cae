"""Backbones by name: ``build_backbone(name, last_stride, pretrained)``; ``backbone_names()``."""

from reidkit.models.backbones import (  # noqa: F401  (importing registers the backbones)
    features_nets,
    osnet,
    resnets,
    vit,
)
from reidkit.models.backbones.base import (
    Backbone,
    LoadReport,
    backbone_names,
    get_backbone_spec,
    load_weights_file,
    read_state_dict,
    register_backbone,
)
from reidkit.models.backbones.build import build_backbone

__all__ = [
    "Backbone",
    "LoadReport",
    "backbone_names",
    "build_backbone",
    "get_backbone_spec",
    "load_weights_file",
    "read_state_dict",
    "register_backbone",
]
