"""Re-identification networks: backbones by name, poolings, necks, classifiers, ``ReidModel``."""

from reidkit.models.backbones import Backbone, LoadReport, backbone_names, build_backbone
from reidkit.models.build import apply_fine_tune, build_model, load_pretrain_snapshot, set_frozen
from reidkit.models.reid_model import ReidModel

__all__ = [
    "Backbone",
    "LoadReport",
    "ReidModel",
    "apply_fine_tune",
    "backbone_names",
    "build_backbone",
    "build_model",
    "load_pretrain_snapshot",
    "set_frozen",
]
