"""ReidModel structure, outputs, parameter groups, fine-tuning and snapshots."""

from __future__ import annotations

import pytest
import torch

from reidkit.config import validate_config
from reidkit.models import (
    ReidModel,
    apply_fine_tune,
    build_backbone,
    build_model,
    load_pretrain_snapshot,
    set_frozen,
)
from reidkit.utils.errors import CheckpointError, ConfigError


def _images(b: int = 4, h: int = 64, w: int = 32) -> torch.Tensor:
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(0))


def test_resnet50_bot_forward_backward() -> None:
    torch.manual_seed(0)
    model = ReidModel("resnet50", num_classes=5, last_stride=1)
    labels = torch.tensor([0, 1, 2, 3])
    out = model(_images(), labels)
    assert set(out) == {"feature", "logits", "embedding"}
    assert out["feature"].shape == (4, 2048) and out["embedding"].shape == (4, 2048)
    assert out["logits"].shape == (4, 5)
    out["logits"].logsumexp(1).mean().add(out["feature"].pow(2).mean()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        emb = model(_images())
    assert isinstance(emb, torch.Tensor) and emb.shape == (4, model.embedding_dim)


@pytest.mark.parametrize(
    ("name", "stride1_hw", "stride2_hw"),
    [("resnet18", (4, 2), (2, 1)), ("resnet50", (4, 2), (2, 1)), ("mobilenet_v2", (4, 2), (2, 1))],
)
def test_last_stride_sets_feature_map_size(name: str, stride1_hw: tuple, stride2_hw: tuple) -> None:
    x = _images(2)
    for stride, hw in ((1, stride1_hw), (2, stride2_hw)):
        net = build_backbone(name, last_stride=stride).eval()
        with torch.no_grad():
            fmap = net.forward_features(x)
        assert fmap.shape == (2, net.out_channels, *hw)


def test_resnet34_basic_block_last_stride() -> None:
    net = build_backbone("resnet34", last_stride=1)
    block = net.layer4[0]
    assert block.conv1.stride == (1, 1) and block.downsample[0].stride == (1, 1)


def test_bnneck_and_classifier_follow_bot() -> None:
    model = ReidModel("resnet18", num_classes=7)
    bn = model.neck.bn
    assert not bn.bias.requires_grad and torch.all(bn.bias == 0) and torch.all(bn.weight == 1)
    assert not hasattr(model.classifier, "bias") or model.classifier.bias is None
    assert model.classifier.weight.shape == (7, 512)
    assert 0.0005 < model.classifier.weight.std().item() < 0.002


def test_parameter_groups_partition_the_model() -> None:
    model = ReidModel("resnet18", num_classes=3, pooling="gem", neck="embedding", embedding_dim=64)
    head = {id(p) for p in model.head_parameters()}
    back = {id(p) for p in model.backbone_parameters()}
    assert not head & back
    assert head | back == {id(p) for p in model.parameters()}
    assert id(model.pool.gem.p) in head and id(model.classifier.weight) in head
    assert model.embedding_dim == 64


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"pooling": "mean"}, "pooling"),
        ({"neck": "bn_neck"}, "neck"),
        ({"classifier": "softmx"}, "classifier"),
        ({"last_stride": 3}, "last_stride"),
    ],
)
def test_bad_choices_raise_config_error(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"model_params.{key}"):
        ReidModel("resnet18", 3, **kwargs)


def test_unknown_backbone_names_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'resnet50'"):
        build_backbone("resnet5")


def test_build_model_maps_config() -> None:
    cfg = validate_config(
        {
            "batches_dir": "unused",
            "model_params": {"backbone": "resnet18", "last_stride": 2, "neck": "none"},
        }
    )
    model = build_model(cfg, num_classes=9)
    assert model.backbone.layer4[0].conv1.stride == (2, 2)
    assert model.neck.kind == "none" and model.classifier.weight.shape == (9, 512)
    bad = validate_config(
        {"batches_dir": "x", "model_params": {"backbone": "resnet18", "freeze_layers": ["conv1"]}}
    )
    with pytest.raises(ConfigError, match="freeze_layers: 'conv1' is not a part"):
        build_model(bad, num_classes=3)


def test_fine_tune_trains_only_classifier_and_freezes_bn_stats() -> None:
    model = ReidModel("resnet18", num_classes=6)
    trainable = apply_fine_tune(model)
    assert trainable == model.classifier.weight.numel()
    model.train()
    assert model.classifier.training
    assert not model.backbone.training and not model.neck.bn.training
    stats = model.backbone.stem[1].running_mean.clone()
    neck_stats = model.neck.bn.running_var.clone()
    out = model(_images(), torch.tensor([0, 1, 2, 3]))
    out["logits"].sum().backward()
    assert torch.equal(stats, model.backbone.stem[1].running_mean)
    assert torch.equal(neck_stats, model.neck.bn.running_var)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.classifier.weight.grad is not None


def test_set_frozen_stages_and_unfreeze() -> None:
    model = ReidModel("resnet18", num_classes=3)
    set_frozen(model, ["stem", "layer1"], True)
    model.train()
    assert not any(p.requires_grad for p in model.backbone.layer1.parameters())
    assert not model.backbone.layer1.training and model.backbone.layer2.training
    set_frozen(model, ["stem", "layer1"], False)
    model.train()
    assert all(p.requires_grad for p in model.backbone.layer1.parameters())
    assert model.backbone.layer1.training
    assert not model.neck.bn.bias.requires_grad
    with pytest.raises(ConfigError, match="freeze_layers: 'layer9'"):
        set_frozen(model, ["layer9"], True)


def test_pretrain_snapshot_skips_other_classifier(tmp_path) -> None:
    torch.manual_seed(1)
    source = ReidModel("resnet18", num_classes=5)
    path = tmp_path / "best.pth"
    torch.save({"model": source.state_dict(), "epoch": 3, "num_classes": 5}, path)
    target = ReidModel("resnet18", num_classes=8)
    report = load_pretrain_snapshot(target, path)
    conv = "backbone.layer3.0.conv1.weight"
    assert torch.equal(target.state_dict()[conv], source.state_dict()[conv])
    assert len(report.skipped) == 1 and report.skipped[0].startswith("classifier.weight")
    assert target.classifier.weight.shape == (8, 512)

    same = ReidModel("resnet18", num_classes=5)
    assert load_pretrain_snapshot(same, path).skipped == []
    assert torch.equal(same.classifier.weight, source.classifier.weight)


def test_pretrain_snapshot_errors(tmp_path) -> None:
    path = tmp_path / "r18.pth"
    torch.save({"model": ReidModel("resnet18", 4).state_dict()}, path)
    with pytest.raises(CheckpointError, match="r18.pth: snapshot does not fit the model"):
        load_pretrain_snapshot(ReidModel("resnet34", 4), path)
    with pytest.raises(CheckpointError, match="r18.pth: tensor backbone.layer1.0.conv1.weight"):
        load_pretrain_snapshot(ReidModel("resnet50", 4), path)
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrain_snapshot(ReidModel("resnet18", 4), tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth: not a readable weights file"):
        load_pretrain_snapshot(ReidModel("resnet18", 4), junk)
