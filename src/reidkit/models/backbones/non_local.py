"""Non-local blocks (Wang et al., CVPR 2018) and two structural options of CNN backbones.

``NonLocalBlock`` is the dot-product form used by AGW and fast-reid's SBS: every position of a
feature map attends to every other one with weights ``theta(x_i) . phi(x_j) / N`` (N = the
number of positions), the attended ``g`` features are projected back to the input's channels,
batch-normalised and added to the input. The BatchNorm starts at zero, so a freshly inserted
block is the identity and ImageNet weights keep their meaning.

``add_non_local`` puts ``counts[k]`` blocks after the last ``counts[k]`` residual blocks of
stage ``k`` (``[0, 2, 3, 0]``: after blocks 3-4 of layer2 and 4-6 of layer3 of a ResNet-50,
where AGW and SBS put them). ``set_stem_pool`` chooses how the stem's 3x3 / stride-2 max-pool
handles the border: ``padded`` (pad 1, torchvision) or ``ceil`` (no padding, round the output
size up: the original Caffe ResNet and fast-reid). Both change the output, so a checkpoint
trained one way must be run the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from reidkit.utils.errors import ConfigError

STEM_POOLS = ("padded", "ceil")


class NonLocalBlock(nn.Module):
    """Dot-product non-local block with a residual connection: ``x + BN(W(attend(x)))``.

    ``inter_channels`` is the width of the theta / phi / g projections (the paper uses half
    the input's channels; AGW's and fast-reid's released code use 1).
    """

    def __init__(self, channels: int, inter_channels: int = 0) -> None:
        super().__init__()
        inter = inter_channels or max(channels // 2, 1)
        self.inter_channels = inter
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.out = nn.Conv2d(inter, channels, 1)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        b, _, h, w = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, I)
        k = self.phi(x).flatten(2)  # (B, I, N)
        v = self.g(x).flatten(2).transpose(1, 2)  # (B, N, I)
        attn = torch.matmul(q, k) / k.shape[-1]  # (B, N, N), scaled by the positions
        y = torch.matmul(attn, v).transpose(1, 2).reshape(b, self.inter_channels, h, w)
        return x + self.bn(self.out(y))


def add_non_local(
    backbone: nn.Module, counts: list[int] | tuple[int, ...], inter_channels: int = 0
) -> None:
    """Give ``backbone`` (a ResNet-style one with ``layer1..layer4``) non-local blocks.

    ``counts`` has one number per stage; the blocks live in ``backbone.non_local[layerK]`` and
    run after the last ``counts[k]`` residual blocks of that stage.
    """
    counts = [int(c) for c in counts]
    if not any(counts):
        return
    stages = [getattr(backbone, f"layer{i}", None) for i in range(1, 5)]
    if len(counts) != 4 or not all(isinstance(s, nn.Sequential) for s in stages):
        raise ConfigError(
            f"model_params.non_local = {counts}: expected four counts (one per stage) on a "
            f"ResNet-style backbone with layer1..layer4, not {type(backbone).__name__}"
        )
    blocks = nn.ModuleDict()
    for i, (count, stage) in enumerate(zip(counts, stages, strict=True), start=1):
        if count < 0 or count > len(stage):
            raise ConfigError(
                f"model_params.non_local = {counts}: layer{i} has {len(stage)} blocks, so its "
                f"count must be between 0 and {len(stage)}"
            )
        if count:
            channels = _out_channels(stage)
            blocks[f"layer{i}"] = nn.ModuleList(
                NonLocalBlock(channels, inter_channels) for _ in range(count)
            )
    backbone.non_local = blocks


def run_stage(stage: nn.Sequential, extra: nn.ModuleList | None, x: torch.Tensor) -> torch.Tensor:
    """Run a stage's blocks, each of the last ``len(extra)`` followed by its non-local block."""
    if extra is None:
        return stage(x)
    first = len(stage) - len(extra)
    for i, block in enumerate(stage):
        x = block(x)
        if i >= first:
            x = extra[i - first](x)
    return x


def _out_channels(stage: nn.Sequential) -> int:
    """Output channels of a residual stage (its last BatchNorm's width)."""
    norms = [m for m in stage[-1].modules() if isinstance(m, nn.BatchNorm2d)]
    return norms[-1].num_features


def set_stem_pool(backbone: nn.Module, kind: str) -> None:
    """``ceil``: make the stem's max-pool unpadded with ceil mode; ``padded`` keeps the
    backbone's own (pad 1 on the ResNets and OSNet)."""
    if kind not in STEM_POOLS:
        raise ConfigError(
            f"model_params.stem_pool = {kind!r} is not valid (valid: {', '.join(STEM_POOLS)})"
        )
    if kind == "padded":  # every backbone's own default: leave it as built
        return
    stem = getattr(backbone, "stem", None)
    pools = [m for m in stem.modules() if isinstance(m, nn.MaxPool2d)] if stem else []
    if not pools:
        raise ConfigError(
            f"model_params.stem_pool = {kind!r}: backbone {type(backbone).__name__} has no stem "
            "max-pool; use 'padded'"
        )
    pools[0].padding, pools[0].ceil_mode = 0, True
