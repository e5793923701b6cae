"""``timm:<name>``: any timm model as a backbone, when timm is installed (imported lazily)."""

from __future__ import annotations

import importlib
from typing import Any

import torch

from reidkit.models.backbones.base import Backbone, Pretrained, load_weights_file
from reidkit.utils.errors import ConfigError, first_line

PREFIX = "timm:"


def _import_timm() -> Any:
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise ConfigError(
            "model_params.backbone: 'timm:' backbones need timm; pip install timm "
            "(or `pip install reidkit[timm]`)"
        ) from None


class TimmBackbone(Backbone):
    """A timm model without pooling and classifier; its ``forward_features`` feature map.

    Token outputs ``(B, N, C)`` of transformers are laid out as ``(B, C, N, 1)``.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.out_channels = int(net.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The timm model's feature map."""
        y = self.net.forward_features(x)
        if y.dim() == 3:
            return y.transpose(1, 2).unsqueeze(-1)
        return y


def build_timm_backbone(name: str, last_stride: int, pretrained: Pretrained) -> TimmBackbone:
    """Create ``timm:<model>``; ``last_stride=1`` asks timm for output stride 16."""
    model_name = name[len(PREFIX) :]
    timm = _import_timm()
    if not timm.list_models(model_name):
        close = timm.list_models(f"*{model_name[:6]}*")[:5]
        raise ConfigError(
            f"model_params.backbone = {name!r}: timm has no model {model_name!r}"
            + (f" (similar: {', '.join(close)})" if close else "")
        )
    kwargs: dict[str, Any] = {"pretrained": pretrained is True, "num_classes": 0, "global_pool": ""}
    if last_stride == 1:
        kwargs["output_stride"] = 16
    try:
        net = timm.create_model(model_name, **kwargs)
    except TypeError as e:
        if "output_stride" not in str(e):
            raise
        raise ConfigError(
            f"model_params.last_stride = 1: timm model {model_name!r} cannot change its "
            "output stride; set last_stride to 2"
        ) from None
    except (OSError, RuntimeError) as e:
        raise ConfigError(
            f"imagenet_pretrain: timm could not load weights for {model_name!r} "
            f"({first_line(e, 120)}); set imagenet_pretrain to false or a local file"
        ) from None
    if isinstance(pretrained, str) and pretrained:
        load_weights_file(net, pretrained, ("head.", "fc.", "classifier."))
    return TimmBackbone(net)
