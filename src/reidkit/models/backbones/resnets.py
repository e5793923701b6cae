"""ResNet, ResNeXt and IBN-a ResNet backbones built on torchvision's ResNet."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from reidkit.models.backbones.base import (
    Backbone,
    Pretrained,
    imagenet_weights,
    load_pretrained,
    no_imagenet_weights,
    register_backbone,
    unstride,
)
from reidkit.models.backbones.non_local import run_stage


class ResNetBackbone(Backbone):
    """A torchvision ResNet / ResNeXt without its pooling and classifier.

    ``last_stride=1`` sets the stride of layer4's first block (its 3x3 convolution and its
    down-sampling projection) to 1, as in BoT. ``non_local`` holds the optional non-local
    blocks per stage (see ``non_local.add_non_local``; empty by default).
    """

    def __init__(self, net: torchvision.models.ResNet, last_stride: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        if last_stride == 1:
            unstride(self.layer4[0])
        self.out_channels = net.fc.in_features
        self.non_local = nn.ModuleDict()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 .. layer4 (with the non-local blocks, when there are any)."""
        x = self.stem(x)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            extra = self.non_local[name] if name in self.non_local else None  # noqa: SIM401
            x = run_stage(getattr(self, name), extra, x)
        return x

    def stages(self) -> dict[str, nn.Module]:
        """stem, layer1..layer4 (and non_local when the backbone has non-local blocks)."""
        return {k: v for k, v in self.named_children() if k != "non_local" or len(v)}


def _resnet(model_name: str, last_stride: int, pretrained: Pretrained) -> ResNetBackbone:
    net = torchvision.models.get_model(model_name, weights=None)
    load_pretrained(net, pretrained, imagenet_weights(model_name), ("fc.",))
    return ResNetBackbone(net, last_stride)


def _register_resnet(name: str, description: str) -> None:
    def builder(last_stride: int = 1, pretrained: Pretrained = False) -> ResNetBackbone:
        return _resnet(name, last_stride, pretrained)

    builder.__doc__ = f"{description} (torchvision definition)."
    register_backbone(name, description)(builder)


for _name, _desc in (
    ("resnet18", "ResNet-18"),
    ("resnet34", "ResNet-34"),
    ("resnet50", "ResNet-50 (the BoT backbone)"),
    ("resnet101", "ResNet-101"),
    ("resnet152", "ResNet-152"),
    ("resnext50_32x4d", "ResNeXt-50 32x4d"),
    ("resnext101_32x8d", "ResNeXt-101 32x8d"),
):
    _register_resnet(_name, _desc)


class IBN(nn.Module):
    """Instance-batch normalisation (IBN-Net 'a'): InstanceNorm on the first half of the
    channels, BatchNorm on the rest. Attribute names ``IN`` / ``BN`` match IBN-Net's released
    weight files, so those load with ``imagenet_pretrain: "<file>.pth"``.
    """

    def __init__(self, channels: int, ratio: float = 0.5) -> None:
        super().__init__()
        self.half = int(channels * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the two channel groups separately and concatenate them."""
        a, b = torch.split(x, [self.half, x.size(1) - self.half], dim=1)
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)


def to_ibn_a(net: torchvision.models.ResNet) -> torchvision.models.ResNet:
    """Replace ``bn1`` of every bottleneck in layers 1-3 with ``IBN`` (in place)."""
    for layer in (net.layer1, net.layer2, net.layer3):
        for block in layer:
            block.bn1 = IBN(block.bn1.num_features)
    return net


def _resnet_ibn_a(model_name: str, last_stride: int, pretrained: Pretrained) -> ResNetBackbone:
    net = to_ibn_a(torchvision.models.get_model(model_name, weights=None))
    if pretrained is True:
        no_imagenet_weights(f"{model_name}_ibn_a", "IBN-Net's resnet50_ibn_a-d9d0bb7b.pth")
    load_pretrained(net, pretrained, None, ("fc.",))
    return ResNetBackbone(net, last_stride)


@register_backbone("resnet50_ibn_a", "ResNet-50 IBN-a (instance norm in layers 1-3)")
def resnet50_ibn_a(last_stride: int = 1, pretrained: Pretrained = False) -> ResNetBackbone:
    """IBN-a ResNet-50 (2048 channels)."""
    return _resnet_ibn_a("resnet50", last_stride, pretrained)


@register_backbone("resnet101_ibn_a", "ResNet-101 IBN-a (instance norm in layers 1-3)")
def resnet101_ibn_a(last_stride: int = 1, pretrained: Pretrained = False) -> ResNetBackbone:
    """IBN-a ResNet-101 (2048 channels)."""
    return _resnet_ibn_a("resnet101", last_stride, pretrained)
