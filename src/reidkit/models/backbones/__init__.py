"""Backbones by name: ``build_backbone(name, last_stride, pretrained)``."""

from reidkit.models.backbones import torchvision_nets  # noqa: F401  (registers backbones)
from reidkit.models.backbones.base import (
    Backbone,
    LoadReport,
    backbone_names,
    build_backbone,
    get_backbone_spec,
    load_weights_file,
    read_state_dict,
    register_backbone,
)

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
