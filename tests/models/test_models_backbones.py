"""Backbone specifics: registry, ViT position embeddings, IBN-a, OSNet, ConvNeXt last stride,
backbones without ImageNet weights, timm, the ``reidkit models`` table."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torchvision
from torch import nn

from reidkit.models import ReidModel, backbone_names, build_backbone, set_frozen
from reidkit.models.backbones.osnet import AggregationGate, LiteConv3x3, OSBlock
from reidkit.models.backbones.resnets import IBN
from reidkit.models.backbones.vit import ViTBackbone, resize_position_embedding
from reidkit.models.catalog import backbone_table
from reidkit.utils.errors import ConfigError

REQUIRED = {
    *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
    "resnext50_32x4d",
    "resnext101_32x8d",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    *(f"efficientnet_b{i}" for i in range(4)),
    "convnext_tiny",
    "convnext_small",
    "vit_b_16",
    "resnet50_ibn_a",
    "resnet101_ibn_a",
    *(f"osnet_x{w}" for w in ("1_0", "0_75", "0_5", "0_25")),
}


def test_registry_has_the_required_backbones() -> None:
    assert set(backbone_names()) >= REQUIRED


def test_position_embedding_resize() -> None:
    pos = torch.randn(1, 1 + 14 * 14, 8)
    assert resize_position_embedding(pos, 14, 14) is pos
    out = resize_position_embedding(pos, 16, 8)
    assert out.shape == (1, 1 + 128, 8) and torch.equal(out[:, 0], pos[:, 0])
    flat = torch.ones(1, 1 + 196, 4)
    assert torch.allclose(resize_position_embedding(flat, 16, 8), torch.ones(1, 129, 4))


def test_vit_feature_map_on_reid_sized_input() -> None:
    small = torchvision.models.VisionTransformer(
        image_size=224, patch_size=16, num_layers=1, num_heads=2, hidden_dim=32, mlp_dim=64
    )
    x = torch.randn(2, 3, 256, 128)
    patch = ViTBackbone(small, "patch").eval()
    assert patch.forward_features(x).shape == (2, 32, 16, 8)
    cls = ViTBackbone(small, "cls").eval()
    assert cls.forward_features(x).shape == (2, 32, 1, 1)
    with torch.no_grad():  # at 224x224 the patch path equals torchvision's own encoder output
        y = torch.randn(1, 3, 224, 224)
        tokens = small.encoder(
            torch.cat([small.class_token, small.conv_proj(y).flatten(2).transpose(1, 2)], 1)
        )
        assert torch.allclose(cls.forward_features(y)[:, :, 0, 0], tokens[:, 0], atol=1e-5)


def test_ibn_a_layout() -> None:
    net = build_backbone("resnet50_ibn_a")
    for layer in (net.layer1, net.layer2, net.layer3):
        assert all(isinstance(b.bn1, IBN) for b in layer)
    assert not any(isinstance(m, IBN) for m in net.layer4.modules())
    ibn = net.layer1[0].bn1
    assert ibn.IN.num_features == 32 and ibn.BN.num_features == 32
    x = torch.randn(2, 64, 8, 4) * 5 + 3
    y = ibn.eval()(x)
    assert torch.allclose(y[:, :32].mean(dim=(2, 3)), torch.zeros(2, 32), atol=1e-4)


def test_osnet_structure() -> None:
    net = build_backbone("osnet_x1_0")
    block = net.conv2[0]
    assert isinstance(block, OSBlock)
    assert [len(s) for s in block.streams] == [1, 2, 3, 4]
    assert all(isinstance(m, LiteConv3x3) for s in block.streams for m in s)
    assert sum(isinstance(m, AggregationGate) for m in block.modules()) == 1  # shared gate
    assert 1.8e6 < sum(p.numel() for p in net.parameters()) < 2.0e6
    out = net.eval()(torch.randn(1, 3, 256, 128))
    assert out.shape == (1, 512, 16, 8)


def test_convnext_last_stride_keeps_weights() -> None:
    torch.manual_seed(0)
    net = build_backbone("convnext_tiny", last_stride=1).eval()
    conv = net.features[6][1]
    assert conv.stride == (1, 1) and conv.kernel_size == (2, 2)
    assert net.forward_features(torch.randn(1, 3, 64, 32)).shape == (1, 768, 4, 2)


@pytest.mark.parametrize("name", ["osnet_x0_25", "resnet50_ibn_a"])
def test_backbone_without_imagenet_weights_says_so(name: str) -> None:
    with pytest.raises(ConfigError, match=f"no ImageNet weights for backbone '{name}'"):
        build_backbone(name, pretrained=True)


def test_timm_backbones() -> None:
    if importlib.util.find_spec("timm") is None:
        with pytest.raises(ConfigError, match="need timm; pip install timm"):
            build_backbone("timm:resnet18")
        return
    net = build_backbone("timm:resnet18", last_stride=1)
    assert net.forward_features(torch.randn(1, 3, 64, 32)).shape == (1, 512, 4, 2)
    with pytest.raises(ConfigError, match="timm has no model"):
        build_backbone("timm:no_such_model_xyz")


def test_set_frozen_on_feature_stages() -> None:
    model = ReidModel("mobilenet_v3_small", num_classes=3)
    set_frozen(model, ["features.0", "features.1"], True)
    model.train()
    assert not model.backbone.features[0].training and model.backbone.features[2].training
    assert not any(p.requires_grad for p in model.backbone.features[1].parameters())
    set_frozen(model, ["backbone"], True)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(isinstance(m, nn.Module) for m in model.backbone.stages().values())


def test_backbone_table_lists_params() -> None:
    table = backbone_table(["resnet18", "osnet_x0_25"])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["backbone", "params", "channels"]
    assert lines[1].split()[:3] == ["resnet18", "11.18M", "512"]
    assert lines[2].split()[:3] == ["osnet_x0_25", "0.13M", "128"]


def test_models_cli_verb(capsys) -> None:
    from reidkit.cli import main

    assert main(["models", "osnet_x0_25", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "osnet_x0_25" in out and "23.51M" in out
    assert main(["models", "resnet5"]) == 2
    assert "did you mean 'resnet50'" in capsys.readouterr().err
