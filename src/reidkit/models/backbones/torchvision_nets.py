"""Backbones built from torchvision's model definitions (weights through its weights API)."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from reidkit.models.backbones.base import (
    Backbone,
    Pretrained,
    load_pretrained,
    register_backbone,
    unstride,
)


def imagenet_weights(model_name: str, version: str = "IMAGENET1K_V1"):  # noqa: ANN201
    """torchvision's weights enum member ``version`` for ``model_name``."""
    return getattr(torchvision.models.get_model_weights(model_name), version)


class ResNetBackbone(Backbone):
    """A torchvision ResNet / ResNeXt without its pooling and classifier."""

    def __init__(self, net: torchvision.models.ResNet, last_stride: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        if last_stride == 1:
            unstride(self.layer4[0])
        last_block = self.layer4[-1]
        last_bn = getattr(last_block, "bn3", None) or last_block.bn2
        self.out_channels = last_bn.num_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 .. layer4."""
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _resnet(model_name: str, last_stride: int, pretrained: Pretrained) -> ResNetBackbone:
    net = torchvision.models.get_model(model_name, weights=None)
    load_pretrained(net, pretrained, imagenet_weights(model_name), ("fc.",))
    return ResNetBackbone(net, last_stride)


@register_backbone("resnet18", "torchvision ResNet-18")
def resnet18(last_stride: int = 1, pretrained: Pretrained = False) -> ResNetBackbone:
    """ResNet-18 (512 channels)."""
    return _resnet("resnet18", last_stride, pretrained)


@register_backbone("resnet34", "torchvision ResNet-34")
def resnet34(last_stride: int = 1, pretrained: Pretrained = False) -> ResNetBackbone:
    """ResNet-34 (512 channels)."""
    return _resnet("resnet34", last_stride, pretrained)


@register_backbone("resnet50", "torchvision ResNet-50")
def resnet50(last_stride: int = 1, pretrained: Pretrained = False) -> ResNetBackbone:
    """ResNet-50 (2048 channels), the BoT backbone."""
    return _resnet("resnet50", last_stride, pretrained)


class MobileNetV2Backbone(Backbone):
    """torchvision MobileNetV2's ``features`` (1280 channels)."""

    def __init__(self, net: torchvision.models.MobileNetV2, last_stride: int = 1) -> None:
        super().__init__()
        self.features = net.features
        if last_stride == 1:
            strided = [
                m
                for m in self.features
                if any(isinstance(c, nn.Conv2d) and c.stride == (2, 2) for c in m.modules())
            ]
            unstride(strided[-1])
        self.out_channels = net.last_channel

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The inverted-residual stack up to the final 1x1 convolution."""
        return self.features(x)


@register_backbone("mobilenet_v2", "torchvision MobileNetV2 (ImageNet weights ship offline)")
def mobilenet_v2(last_stride: int = 1, pretrained: Pretrained = False) -> MobileNetV2Backbone:
    """MobileNetV2 (1280 channels)."""
    net = torchvision.models.mobilenet_v2(weights=None)
    load_pretrained(net, pretrained, imagenet_weights("mobilenet_v2"), ("classifier.",))
    return MobileNetV2Backbone(net, last_stride)
