"""torchreid (deep-person-reid; PyPI ``torchreid`` 0.2.5) checkpoints in reidkit terms.

torchreid's OSNet has the structure of reidkit's (stem, three stages of omni-scale blocks with
a shared channel gate, 1x1 conv5), followed by global average pooling and an ``fc`` layer
(Linear with bias, BatchNorm1d, ReLU; 512-d) whose output is the test feature; its ResNets
are torchvision's with the classic last stride 2 and no ``fc`` (``resnet50_fc512``: last
stride 1 and a 512-d ``fc``). The classifier is a Linear with bias. reidkit reproduces the
``fc`` as an ``embedding`` neck with ``neck_bias`` and ``neck_relu``, the classifier with
``classifier_bias``. Test pipeline: PIL bilinear resize to 256x128, ImageNet normalisation,
no flip, euclidean distance on unnormalised features.
"""

from __future__ import annotations

from typing import Any

import torch

from reidkit.models.importers.mapping import Rule
from reidkit.models.importers.plan import ImportPlan, refuse

OSNETS = ("osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25")
# name -> (reidkit backbone, last stride, has the fc layer)
RESNETS = {
    "resnet18": ("resnet18", 2, False),
    "resnet34": ("resnet34", 2, False),
    "resnet50": ("resnet50", 2, False),
    "resnet101": ("resnet101", 2, False),
    "resnet50_fc512": ("resnet50", 1, True),
}
ARCHS = OSNETS + tuple(RESNETS)

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _osnet_rules() -> list[Rule]:
    """torchreid OSNet keys -> reidkit ``OSNet`` keys (stage blocks, transitions, conv5)."""
    blk = r"(conv[234])\.(\d+)\."
    dst = r"backbone.\1.\2."
    rules = [
        Rule(r"conv1\.conv\.", "backbone.stem.0.0."),
        Rule(r"conv1\.bn\.", "backbone.stem.0.1."),
        Rule(r"(conv[23])\.2\.0\.conv\.", r"backbone.\1.2.0."),  # transition 1x1 conv
        Rule(r"(conv[23])\.2\.0\.bn\.", r"backbone.\1.2.1."),
        Rule(blk + r"conv1\.conv\.", dst + "reduce.0."),
        Rule(blk + r"conv1\.bn\.", dst + "reduce.1."),
        Rule(blk + r"conv3\.conv\.", dst + "expand.0."),
        Rule(blk + r"conv3\.bn\.", dst + "expand.1."),
        Rule(blk + r"downsample\.conv\.", dst + "shortcut.0."),
        Rule(blk + r"downsample\.bn\.", dst + "shortcut.1."),
        Rule(blk + r"gate\.(fc[12])\.", dst + r"gate.\3."),
        Rule(r"conv5\.conv\.", "backbone.conv5.0."),
        Rule(r"conv5\.bn\.", "backbone.conv5.1."),
    ]
    lite = (("conv1", "pointwise"), ("conv2", "depthwise"), ("bn", "bn"))
    for stream, letter in enumerate("abcd"):
        for src, ours in lite:
            if letter == "a":  # the one-layer stream is a bare LightConv3x3
                rules.append(Rule(blk + rf"conv2a\.{src}\.", dst + f"streams.0.0.{ours}."))
            else:
                rules.append(
                    Rule(
                        blk + rf"conv2{letter}\.(\d+)\.{src}\.",
                        dst + rf"streams.{stream}.\3.{ours}.",
                    )
                )
    return rules


def _resnet_rules() -> list[Rule]:
    return [
        Rule(r"conv1\.", "backbone.stem.0."),
        Rule(r"bn1\.", "backbone.stem.1."),
        Rule(r"(layer[1-4])\.", r"backbone.\1."),
    ]


def torchreid_plan(arch: str, state: dict[str, torch.Tensor]) -> ImportPlan:
    """The plan for a torchreid model ``arch`` whose weights are ``state``."""
    source = f"torchreid:{arch}"
    if arch not in ARCHS:
        raise refuse(source, f"not an architecture reidkit imports (supported: {', '.join(ARCHS)})")
    if arch in OSNETS:
        backbone, last_stride, has_fc, rules = arch, 1, True, _osnet_rules()
    else:
        backbone, last_stride, has_fc = RESNETS[arch]
        rules = _resnet_rules()
    mp: dict[str, Any] = {
        "backbone": backbone,
        "last_stride": last_stride,
        "pooling": "avg",
        "neck": "none",
        "classifier": "softmax",
        "classifier_bias": True,
    }
    if has_fc:  # its width from the checkpoint (torchreid's feature_dim / fc_dims)
        fc = state.get("fc.0.weight")
        mp.update(
            neck="embedding",
            embedding_dim=int(fc.shape[0]) if fc is not None and fc.ndim == 2 else 512,
            neck_bias=True,
            neck_relu=True,
        )
        rules += [Rule(r"fc\.0\.", "neck.fc."), Rule(r"fc\.1\.", "neck.bn.")]
    rules.append(Rule(r"classifier\.", "classifier."))
    cls = state.get("classifier.weight")
    config = {
        "img_h": 256,
        "img_w": 128,
        "data": {**IMAGENET, "pixel_range": 1, "flip_test": False},
        "evaluation_params": {"distance": "euclidean"},
    }
    return ImportPlan(
        source=source,
        model_params=mp,
        config=config,
        rules=rules,
        classifier_prefixes=("classifier.",),
        num_classes=int(cls.shape[0]) if cls is not None and cls.ndim == 2 else 0,
        notes=[
            "torchreid resizes with PIL bilinear; reidkit's antialiased bilinear matches it up "
            "to rounding (crops already at the input size are not resized)"
        ],
        size_note="torchreid does not record the input size: img_h / img_w are its default "
        "256x128; pass img_h=... img_w=... if the model was trained at another size",
    )
