"""Model options that let reidkit run other frameworks' checkpoints exactly (non-local blocks,
stem max-pool, neck / classifier biases, avg+max pooling) and the configurable normalisation
(``data.mean`` / ``data.std`` / ``data.pixel_range``) with the frameworks' own arithmetic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

from reidkit.config import load_config, validate_config
from reidkit.data.augment import normalize_uint8
from reidkit.deploy.onnx_meta import OnnxModelInfo
from reidkit.deploy.preprocess import preprocess_images
from reidkit.models import Backbone, ReidModel
from reidkit.models.backbones.non_local import NonLocalBlock
from reidkit.models.heads import Pool
from reidkit.utils.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _reference_non_local(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """x + BN(W(sum_j (theta_i . phi_j / N) g_j)), written out with einsum."""
    b, c, h, w = x.shape
    t, p, g = (conv(x).flatten(2) for conv in (block.theta, block.phi, block.g))  # (B, I, N)
    attn = torch.einsum("bin,bim->bnm", t, p) / (h * w)
    y = torch.einsum("bnm,bim->bin", attn, g).reshape(b, -1, h, w)
    return x + block.bn(block.out(y))


def test_non_local_block_starts_as_identity_then_attends() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(16).eval()
    assert block.inter_channels == 8 and NonLocalBlock(16, 1).inter_channels == 1
    x = torch.randn(2, 16, 6, 4)
    assert torch.equal(block(x), x)  # zero-initialised BN: ImageNet weights keep their meaning
    with torch.no_grad():
        block.bn.weight.uniform_(0.5, 1.5)
        block.bn.running_var.uniform_(0.5, 2.0)
    out = block(x)
    assert not torch.allclose(out, x)
    torch.testing.assert_close(out, _reference_non_local(block, x))


def test_non_local_blocks_follow_the_last_blocks_of_each_stage() -> None:
    model = ReidModel("resnet50", 3, non_local=[0, 2, 3, 0], non_local_inter=1).eval()
    nl = model.backbone.non_local
    assert sorted(nl.keys()) == ["layer2", "layer3"] and len(nl["layer2"]) == 2
    assert nl["layer3"][0].g.weight.shape == (1, 1024, 1, 1)
    calls: list[str] = []
    for name, module in model.backbone.named_modules():
        if re.fullmatch(r"(non_local\.)?layer2\.\d+", name):
            module.register_forward_hook(lambda m, i, o, n=name: calls.append(n))
    model(torch.randn(1, 3, 64, 32))
    assert calls == [
        "layer2.0",
        "layer2.1",
        "layer2.2",
        "non_local.layer2.0",
        "layer2.3",
        "non_local.layer2.1",
    ]
    assert "non_local" in model.backbone.stages()
    assert "non_local" not in ReidModel("resnet18", 3).backbone.stages()


def test_non_local_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"layer2 has 4 blocks"):
        ReidModel("resnet50", 3, non_local=[0, 5, 0, 0])
    with pytest.raises(ConfigError, match="expected four counts"):
        ReidModel("resnet50", 3, non_local=[1, 1])
    with pytest.raises(ConfigError, match="ResNet-style backbone"):
        ReidModel("osnet_x0_25", 3, non_local=[0, 1, 1, 0])


def test_stem_pool_ceil_is_unpadded_ceil_mode() -> None:
    torch.manual_seed(0)
    padded = ReidModel("resnet18", 3).eval()
    ceil = ReidModel("resnet18", 3, stem_pool="ceil").eval()
    ceil.load_state_dict(padded.state_dict())
    x = torch.randn(1, 3, 65, 33)
    stem_in = padded.backbone.stem[:3](x)
    got = ceil.backbone.stem(x)
    torch.testing.assert_close(got, F.max_pool2d(stem_in, 3, 2, 0, ceil_mode=True))
    assert not torch.equal(padded.backbone.stem(x), got)

    class NoStem(Backbone):
        out_channels = 3

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(ConfigError, match="has no stem max-pool"):
        ReidModel(NoStem(), 3, stem_pool="ceil")


def test_neck_and_classifier_biases() -> None:
    model = ReidModel(
        "osnet_x0_25",
        4,
        neck="embedding",
        embedding_dim=32,
        neck_bias=True,
        neck_relu=True,
        classifier_bias=True,
    ).eval()
    assert model.neck.fc.bias is not None and model.classifier.bias.shape == (4,)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.arange(4.0))
        emb = model(torch.randn(3, 3, 64, 32))
    assert emb.shape == (3, 32) and emb.min() >= 0  # ends with the ReLU
    torch.testing.assert_close(
        model.classify(emb), emb @ model.classifier.weight.T + torch.arange(4.0)
    )
    with pytest.raises(ConfigError, match="neck_bias = true needs neck 'embedding'"):
        ReidModel("resnet18", 3, neck="bnneck", neck_bias=True)
    with pytest.raises(ConfigError, match="classifier_bias = true needs classifier 'softmax'"):
        ReidModel("resnet18", 3, classifier="circle", classifier_bias=True)


def test_avg_max_pooling() -> None:
    x = torch.randn(2, 5, 6, 4)
    want = x.mean(dim=(2, 3)) + x.amax(dim=(2, 3))
    torch.testing.assert_close(Pool("avg_max")(x), want)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (20, 12, 3), dtype=np.uint8)


def test_normalisation_is_bit_identical_to_the_frameworks() -> None:
    arr = _image()
    x = torch.from_numpy(arr).permute(2, 0, 1)[None]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    torchvision_way = T.Normalize(mean, std)(T.ToTensor()(Image.fromarray(arr)))[None]
    assert torch.equal(normalize_uint8(x, mean, std), torchvision_way)  # torchreid's pipeline
    pm, ps = [0.485 * 255, 0.456 * 255, 0.406 * 255], [0.229 * 255, 0.224 * 255, 0.225 * 255]
    m, s = torch.tensor(pm).view(1, -1, 1, 1), torch.tensor(ps).view(1, -1, 1, 1)
    fastreid_way = x.float().sub_(m).div_(s)  # fast-reid's in-model normalisation
    assert torch.equal(normalize_uint8(x, pm, ps, pixel_range=255), fastreid_way)
    deploy = preprocess_images([arr], 20, 12, pm, ps, pixel_range=255)
    assert torch.equal(deploy, fastreid_way)


def test_normalisation_config_keys_are_checked() -> None:
    base = {"batches_dir": "x"}
    cfg = validate_config(
        {**base, "data": {"mean": [120, 110, 100], "std": [60, 55, 50], "pixel_range": 255}}
    )
    assert cfg.data.pixel_range == 255 and cfg.data.mean == (120.0, 110.0, 100.0)
    with pytest.raises(ConfigError, match="looks like 0..1 units but pixel_range is 255"):
        validate_config({**base, "data": {"pixel_range": 255}})
    with pytest.raises(ConfigError, match="every std must be > 0"):
        validate_config({**base, "data": {"std": [0.2, 0, 0.2]}})
    with pytest.raises(ConfigError, match="pixel_range"):
        validate_config({**base, "data": {"pixel_range": 100}})


def test_onnx_metadata_records_pixel_range() -> None:
    info = OnnxModelInfo(
        "float-nchw", 64, 32, 8, mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0), pixel_range=255.0
    )
    meta = info.to_metadata()
    assert OnnxModelInfo.from_metadata(meta, "m.onnx").pixel_range == 255.0
    older = {k: v for k, v in meta.items() if k != "pixel_range"}  # files exported before
    assert OnnxModelInfo.from_metadata(older, "m.onnx").pixel_range == 1.0


def test_agw_and_sbs_recipes_use_non_local_blocks() -> None:
    for name in ("market_agw_r50", "market_sbs_r50_ibn"):
        cfg = load_config(CONFIGS / f"{name}.json", check_files=False)
        assert cfg.model_params.non_local == [0, 2, 3, 0], name
        assert (
            json.loads((CONFIGS / f"{name}.json").read_text())["model_params"]["non_local_inter"]
            == 1
        )
