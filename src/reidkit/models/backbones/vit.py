"""ViT-B/16 (torchvision) for ReID inputs: position embeddings resized to the patch grid.

torchvision's ViT only accepts square 224x224 images. This backbone runs the same modules on any
size: the 14x14 grid of learned position embeddings is resized (bicubic) to the input's grid,
e.g. 16x8 patches for 256x128. The feature map is either the patch tokens laid out as
``(B, 768, H/16, W/16)`` (``vit_b_16``) or the CLS token as ``(B, 768, 1, 1)``
(``vit_b_16_cls``). ViT has no down-sampling stages, so ``last_stride`` changes nothing.
"""

from __future__ import annotations

import math

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
)


def resize_position_embedding(pos: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """``(1, 1 + S*S, C)`` -> ``(1, 1 + grid_h*grid_w, C)`` keeping the CLS entry."""
    cls_pos, grid = pos[:, :1], pos[:, 1:]
    side = int(math.isqrt(grid.shape[1]))
    if (side, side) == (grid_h, grid_w):
        return pos
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
    return torch.cat([cls_pos, grid.flatten(2).transpose(1, 2)], dim=1)


class ViTBackbone(Backbone):
    """torchvision ViT's patch embedding and encoder, on inputs of any size."""

    def __init__(self, net: torchvision.models.VisionTransformer, token: str = "patch") -> None:
        super().__init__()
        if token not in ("patch", "cls"):
            raise ValueError(f"token must be 'patch' or 'cls', got {token!r}")
        self.conv_proj = net.conv_proj
        self.class_token = net.class_token
        self.encoder = net.encoder
        self.patch_size = net.patch_size
        self.token = token
        self.out_channels = net.hidden_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens as a feature map, or the CLS token as a 1x1 map."""
        if x.shape[-2] < self.patch_size or x.shape[-1] < self.patch_size:
            raise ValueError(
                f"ViT needs images of at least {self.patch_size}x{self.patch_size}, "
                f"got {tuple(x.shape[-2:])}"
            )
        patches = self.conv_proj(x)
        b, c, gh, gw = patches.shape
        tokens = torch.cat(
            [self.class_token.expand(b, -1, -1), patches.flatten(2).transpose(1, 2)], 1
        )
        pos = resize_position_embedding(self.encoder.pos_embedding, gh, gw)
        tokens = self.encoder.ln(self.encoder.layers(self.encoder.dropout(tokens + pos)))
        if self.token == "cls":
            return tokens[:, 0, :, None, None]
        return tokens[:, 1:].transpose(1, 2).reshape(b, c, gh, gw)

    def stages(self) -> dict[str, nn.Module]:
        """``conv_proj`` and ``encoder.layers.0`` .. ``encoder.layers.11``."""
        stages: dict[str, nn.Module] = {"conv_proj": self.conv_proj}
        for i, block in enumerate(self.encoder.layers):
            stages[f"encoder.layers.{i}"] = block
        return stages


def _vit(token: str, pretrained: Pretrained) -> ViTBackbone:
    net = torchvision.models.vit_b_16(weights=None)
    load_pretrained(net, pretrained, imagenet_weights("vit_b_16"), ("heads.",))
    return ViTBackbone(net, token)


@register_backbone("vit_b_16", "ViT-B/16, patch tokens as feature map")
def vit_b_16(last_stride: int = 1, pretrained: Pretrained = False) -> ViTBackbone:
    """ViT-B/16 with the patch tokens as a (B, 768, H/16, W/16) feature map."""
    return _vit("patch", pretrained)


@register_backbone("vit_b_16_cls", "ViT-B/16, CLS token as feature")
def vit_b_16_cls(last_stride: int = 1, pretrained: Pretrained = False) -> ViTBackbone:
    """ViT-B/16 with the CLS token as a (B, 768, 1, 1) feature map."""
    return _vit("cls", pretrained)
