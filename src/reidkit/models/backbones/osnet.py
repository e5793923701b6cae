"""OSNet, the omni-scale ReID network (Zhou et al., ICCV 2019), written for reidkit.

Each bottleneck (``OSBlock``) runs four streams of 1..4 stacked Lite 3x3 convolutions (pointwise
then depthwise), so it sees four receptive-field scales; a unified aggregation gate (one channel
gate shared by the streams) weights them before they are summed. Widths x1.0 / x0.75 / x0.5 /
x0.25 scale every channel count. The network down-samples by 16 (stem /4, two transitions), so
its native last stage already has stride 1; ``last_stride=2`` adds a 2x2 average pool at the end.
There are no torchvision ImageNet weights for it.
"""

from __future__ import annotations

import torch
from torch import nn

from reidkit.models.backbones.base import (
    Backbone,
    Pretrained,
    load_pretrained,
    register_backbone,
)


def conv_bn(
    cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, relu: bool = True
) -> nn.Sequential:
    """Convolution (no bias) + BatchNorm (+ ReLU)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class LiteConv3x3(nn.Module):
    """Lite 3x3: a linear 1x1 convolution, a depthwise 3x3 convolution, BN, ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.depthwise = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same spatial size, ``cout`` channels."""
        return self.relu(self.bn(self.depthwise(self.pointwise(x))))


class AggregationGate(nn.Module):
    """Channel-wise gate from global context: GAP -> FC -> ReLU -> FC -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` scaled per channel by a weight in (0, 1)."""
        w = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(w))))


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck with four streams and a shared aggregation gate."""

    def __init__(self, cin: int, cout: int, reduction: int = 4, streams: int = 4) -> None:
        super().__init__()
        mid = cout // reduction
        self.reduce = conv_bn(cin, mid)
        self.streams = nn.ModuleList(
            nn.Sequential(*[LiteConv3x3(mid, mid) for _ in range(t)]) for t in range(1, streams + 1)
        )
        self.gate = AggregationGate(mid)
        self.expand = conv_bn(mid, cout, relu=False)
        self.shortcut = conv_bn(cin, cout, relu=False) if cin != cout else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate-weighted sum of the streams, projected and added to the shortcut."""
        y = self.reduce(x)
        fused = sum(self.gate(stream(y)) for stream in self.streams)
        return self.relu(self.expand(fused) + self.shortcut(x))


def _stage(cin: int, cout: int, blocks: int, transition: bool) -> nn.Sequential:
    layers: list[nn.Module] = [OSBlock(cin, cout)]
    layers += [OSBlock(cout, cout) for _ in range(blocks - 1)]
    if transition:
        layers += [conv_bn(cout, cout), nn.AvgPool2d(2, stride=2)]
    return nn.Sequential(*layers)


class OSNet(Backbone):
    """OSNet feature extractor with channels ``(stem, stage2, stage3, stage4)``."""

    def __init__(self, channels: tuple[int, int, int, int], last_stride: int = 1) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        self.stem = nn.Sequential(conv_bn(3, c0, k=7, stride=2), nn.MaxPool2d(3, 2, padding=1))
        self.conv2 = _stage(c0, c1, 2, transition=True)
        self.conv3 = _stage(c1, c2, 2, transition=True)
        self.conv4 = _stage(c2, c3, 2, transition=False)
        self.conv5 = conv_bn(c3, c3)
        self.tail = nn.AvgPool2d(2, stride=2) if last_stride == 2 else nn.Identity()
        self.out_channels = c3
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """stem -> conv2..conv5; stride 16 (32 with last_stride=2)."""
        x = self.conv4(self.conv3(self.conv2(self.stem(x))))
        return self.tail(self.conv5(x))


def _osnet(
    name: str, channels: tuple[int, int, int, int], last_stride: int, pretrained: Pretrained
) -> OSNet:
    net = OSNet(channels, last_stride)
    load_pretrained(net, pretrained, None, ("classifier.", "fc."), name=name)
    return net


_WIDTHS = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}


def _register_osnet(name: str, channels: tuple[int, int, int, int]) -> None:
    def builder(last_stride: int = 1, pretrained: Pretrained = False) -> OSNet:
        return _osnet(name, channels, last_stride, pretrained)

    builder.__doc__ = f"OSNet {name.split('_', 1)[1]} ({channels[-1]} channels)."
    register_backbone(name, f"OSNet width {name.split('_x')[1].replace('_', '.')}")(builder)


for _name, _channels in _WIDTHS.items():
    _register_osnet(_name, _channels)
