"""fast-reid (PyPI ``fastreid`` 1.4.0) checkpoints in reidkit terms.

A fast-reid model is described by its yacs config (``config.yaml`` beside the checkpoint, or a
``configs/*.yml`` with ``_BASE_`` files); the named presets are the model zoo's recipes. The
``Baseline`` meta-architecture normalises images inside the model in 0..255 space
(``(x - PIXEL_MEAN) / PIXEL_STD``), runs a ResNet whose stem max-pool is unpadded with ceil
mode (optionally IBN-a in layers 1-3, non-local blocks after the last blocks of layers 2-3),
pools (average, max, GeM ...), applies the BNNeck (a BatchNorm2d with frozen shift, or a 1x1
convolution + BN when EMBEDDING_DIM > 0) and returns the post-neck feature at test time. The
test pipeline resizes with PIL bicubic to SIZE_TEST, optionally averages with the mirrored
image (TEST.FLIP) and compares with cosine distance (TEST.METRIC).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from reidkit.models.importers.mapping import Rule
from reidkit.models.importers.plan import ImportPlan, refuse
from reidkit.utils.errors import ConfigError

# fast-reid's defaults of the keys the import reads (fastreid/config/defaults.py).
DEFAULTS: dict[str, Any] = {
    "MODEL.META_ARCHITECTURE": "Baseline",
    "MODEL.BACKBONE.NAME": "build_resnet_backbone",
    "MODEL.BACKBONE.DEPTH": "50x",
    "MODEL.BACKBONE.LAST_STRIDE": 1,
    "MODEL.BACKBONE.NORM": "BN",
    "MODEL.BACKBONE.WITH_IBN": False,
    "MODEL.BACKBONE.WITH_SE": False,
    "MODEL.BACKBONE.WITH_NL": False,
    "MODEL.HEADS.NAME": "EmbeddingHead",
    "MODEL.HEADS.NORM": "BN",
    "MODEL.HEADS.EMBEDDING_DIM": 0,
    "MODEL.HEADS.WITH_BNNECK": False,
    "MODEL.HEADS.POOL_LAYER": "GlobalAvgPool",
    "MODEL.HEADS.CLS_LAYER": "Linear",
    "MODEL.HEADS.SCALE": 1.0,
    "MODEL.HEADS.MARGIN": 0.0,
    "MODEL.PIXEL_MEAN": [0.485 * 255, 0.456 * 255, 0.406 * 255],
    "MODEL.PIXEL_STD": [0.229 * 255, 0.224 * 255, 0.225 * 255],
    "INPUT.SIZE_TEST": [256, 128],
    "INPUT.CROP.ENABLED": False,
    "TEST.FLIP.ENABLED": False,
    "TEST.METRIC": "cosine",
    "TEST.RERANK.ENABLED": False,
    "TEST.RERANK.K1": 20,
    "TEST.RERANK.K2": 6,
    "TEST.RERANK.LAMBDA": 0.3,
    "TEST.AQE.ENABLED": False,
}

_BOT = {
    "MODEL.BACKBONE.LAST_STRIDE": 1,
    "MODEL.HEADS.WITH_BNNECK": True,
    "MODEL.HEADS.POOL_LAYER": "GlobalAvgPool",
    "MODEL.HEADS.CLS_LAYER": "Linear",
    "INPUT.SIZE_TEST": [256, 128],
}
_AGW = {**_BOT, "MODEL.BACKBONE.WITH_NL": True, "MODEL.HEADS.POOL_LAYER": "GeneralizedMeanPoolingP"}
_SBS = {
    **_AGW,
    "MODEL.HEADS.CLS_LAYER": "CircleSoftmax",
    "MODEL.HEADS.SCALE": 64,
    "MODEL.HEADS.MARGIN": 0.35,
    "INPUT.SIZE_TEST": [384, 128],
}
_IBN = {"MODEL.BACKBONE.WITH_IBN": True}
_R101 = {"MODEL.BACKBONE.DEPTH": "101x"}
# The model zoo's recipes (configs/Base-bagtricks.yml, Base-AGW.yml, Base-SBS.yml + variants).
PRESETS: dict[str, dict[str, Any]] = {
    "bot_r50": _BOT,
    "bot_r50_ibn": {**_BOT, **_IBN},
    "agw_r50": _AGW,
    "sbs_r50": _SBS,
    "sbs_r50_ibn": {**_SBS, **_IBN},
    "sbs_r101_ibn": {**_SBS, **_IBN, **_R101},
}

BLOCKS = {"18x": (2, 2, 2, 2), "34x": (3, 4, 6, 3), "50x": (3, 4, 6, 3), "101x": (3, 4, 23, 3)}
NON_LOCAL = {"18x": [0, 0, 0, 0], "34x": [0, 0, 0, 0], "50x": [0, 2, 3, 0], "101x": [0, 2, 9, 0]}
TEST_NORMS = ("BN", "syncBN", "GhostBN", "FrozenBN")  # all plain BatchNorm at test time
POOLS = {
    "GlobalAvgPool": "avg",
    "FastGlobalAvgPool": "avg",
    "GlobalMaxPool": "max",
    "GeneralizedMeanPoolingP": "gem",
    "GeneralizedMeanPooling": "gem",
    "AdaptiveAvgMaxPool": "avg_max",
}
CLASSIFIERS = {
    "Linear": "softmax",
    "CircleSoftmax": "circle",
    "ArcSoftmax": "arcface",
    "CosSoftmax": "am_softmax",
}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def load_fastreid_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A fast-reid yaml config as flat ``{"MODEL.BACKBONE.DEPTH": ...}``, ``_BASE_`` merged.

    Values of the file win over its base's (yacs' merge order).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: fast-reid config file not found")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: _BASE_ files include each other in a loop")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a readable YAML file ({type(e).__name__})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a fast-reid config must be a mapping of sections")
    base = tree.pop("_BASE_", None)
    flat: dict[str, Any] = {}
    if base:
        flat = load_fastreid_config(path.parent / str(base), (*_seen, path.resolve()))
    flat.update(_flatten(tree))
    return flat


def _get(cfg: dict[str, Any], key: str) -> Any:
    return cfg.get(key, DEFAULTS[key])


def _backbone(cfg: dict[str, Any], src: str, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """model_params of the backbone, and checks of what reidkit cannot reproduce."""
    name = _get(cfg, "MODEL.BACKBONE.NAME")
    if name != "build_resnet_backbone":
        raise refuse(src, f"MODEL.BACKBONE.NAME = {name}: only build_resnet_backbone is imported")
    depth = str(_get(cfg, "MODEL.BACKBONE.DEPTH"))
    if depth not in BLOCKS:
        raise refuse(src, f"MODEL.BACKBONE.DEPTH = {depth}: expected one of {', '.join(BLOCKS)}")
    ibn = bool(_get(cfg, "MODEL.BACKBONE.WITH_IBN"))
    if ibn and depth in ("18x", "34x"):
        raise refuse(src, f"WITH_IBN with DEPTH {depth}: reidkit has IBN-a only for 50x / 101x")
    if _get(cfg, "MODEL.BACKBONE.WITH_SE"):
        raise refuse(src, "MODEL.BACKBONE.WITH_SE: reidkit's ResNets have no SE blocks")
    for key in ("MODEL.BACKBONE.NORM", "MODEL.HEADS.NORM"):
        if _get(cfg, key) not in TEST_NORMS:
            raise refuse(src, f"{key} = {_get(cfg, key)}: expected one of {', '.join(TEST_NORMS)}")
    stride = int(_get(cfg, "MODEL.BACKBONE.LAST_STRIDE"))
    if stride not in (1, 2):
        raise refuse(src, f"MODEL.BACKBONE.LAST_STRIDE = {stride}: expected 1 or 2")
    layers = depth.removesuffix("x")
    mp: dict[str, Any] = {
        "backbone": f"resnet{layers}_ibn_a" if ibn else f"resnet{layers}",
        "last_stride": stride,
        "stem_pool": "ceil",
    }
    if _get(cfg, "MODEL.BACKBONE.WITH_NL") and any(NON_LOCAL[depth]):
        g = state.get("backbone.NL_2.0.g.weight")
        mp.update(
            non_local=NON_LOCAL[depth], non_local_inter=int(g.shape[0]) if g is not None else 1
        )
    return mp


def _head(cfg: dict[str, Any], src: str, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """model_params of the EmbeddingHead: pooling, neck, classifier."""
    if _get(cfg, "MODEL.META_ARCHITECTURE") != "Baseline":
        raise refuse(
            src,
            f"MODEL.META_ARCHITECTURE = {_get(cfg, 'MODEL.META_ARCHITECTURE')}: "
            "only Baseline (one global branch) is imported",
        )
    if _get(cfg, "MODEL.HEADS.NAME") != "EmbeddingHead":
        raise refuse(
            src, f"MODEL.HEADS.NAME = {_get(cfg, 'MODEL.HEADS.NAME')}: expected EmbeddingHead"
        )
    pool = _get(cfg, "MODEL.HEADS.POOL_LAYER")
    if pool not in POOLS:
        raise refuse(src, f"MODEL.HEADS.POOL_LAYER = {pool}: reidkit reproduces {', '.join(POOLS)}")
    cls = _get(cfg, "MODEL.HEADS.CLS_LAYER")
    if cls not in CLASSIFIERS:
        raise refuse(
            src, f"MODEL.HEADS.CLS_LAYER = {cls}: expected one of {', '.join(CLASSIFIERS)}"
        )
    dim, bnneck = (
        int(_get(cfg, "MODEL.HEADS.EMBEDDING_DIM")),
        bool(_get(cfg, "MODEL.HEADS.WITH_BNNECK")),
    )
    if dim > 0 and not bnneck:
        raise refuse(
            src,
            "EMBEDDING_DIM > 0 without WITH_BNNECK: reidkit's embedding neck "
            "always ends with BatchNorm",
        )
    p = state.get("heads.pool_layer.p")
    if p is not None and float(p.min()) < 1.0:
        raise refuse(src, f"GeM exponent p = {float(p.min()):.4f} < 1: reidkit clamps p to >= 1")
    return {
        "pooling": POOLS[pool],
        "neck": "embedding" if dim > 0 else ("bnneck" if bnneck else "none"),
        "embedding_dim": max(dim, 0),
        "classifier": CLASSIFIERS[cls],
        "scale": float(_get(cfg, "MODEL.HEADS.SCALE")) if cls != "Linear" else 30.0,
        "margin": float(_get(cfg, "MODEL.HEADS.MARGIN")) if cls != "Linear" else 0.35,
    }


def _rules(mp: dict[str, Any]) -> list[Rule]:
    neck_first = "neck.fc." if mp["neck"] == "embedding" else "neck.bn."
    return [
        Rule(r"backbone\.conv1\.", "backbone.stem.0."),
        Rule(r"backbone\.bn1\.", "backbone.stem.1."),
        Rule(r"backbone\.(layer[1-4])\.", r"backbone.\1."),
        Rule(r"backbone\.NL_([1-4])\.(\d+)\.(theta|phi|g)\.", r"backbone.non_local.layer\1.\2.\3."),
        Rule(r"backbone\.NL_([1-4])\.(\d+)\.W\.0\.", r"backbone.non_local.layer\1.\2.out."),
        Rule(r"backbone\.NL_([1-4])\.(\d+)\.W\.1\.", r"backbone.non_local.layer\1.\2.bn."),
        Rule(r"heads\.pool_layer\.p$", "pool.gem.p"),
        Rule(r"heads\.bottleneck\.0\.", neck_first),
        Rule(r"heads\.bottleneck\.1\.", "neck.bn."),
        Rule(r"heads\.(classifier\.)?weight$", "classifier.weight"),
    ]


def _pipeline(cfg: dict[str, Any], src: str) -> tuple[dict[str, Any], list[str]]:
    """Top-level config keys of the test pipeline (size, normalisation, flip, distance)."""
    size = list(_get(cfg, "INPUT.SIZE_TEST"))
    if len(size) != 2 or min(int(v) for v in size) <= 0:
        raise refuse(src, f"INPUT.SIZE_TEST = {size}: reidkit needs [height, width]")
    if _get(cfg, "INPUT.CROP.ENABLED"):
        raise refuse(src, "INPUT.CROP.ENABLED: reidkit does not center-crop test images")
    metric = _get(cfg, "TEST.METRIC")
    if metric not in ("cosine", "euclidean"):
        raise refuse(src, f"TEST.METRIC = {metric}: expected cosine or euclidean")
    mean = [float(v) for v in _get(cfg, "MODEL.PIXEL_MEAN")]  # 0..255 units, as fast-reid
    std = [float(v) for v in _get(cfg, "MODEL.PIXEL_STD")]
    notes = [
        "fast-reid resizes test images with PIL bicubic; reidkit with antialiased bilinear "
        "(crops already at the input size are unchanged)"
    ]
    rerank = bool(_get(cfg, "TEST.RERANK.ENABLED"))
    ks = [_get(cfg, f"TEST.RERANK.{k}") for k in ("K1", "K2", "LAMBDA")]
    if rerank and [int(ks[0]), int(ks[1]), float(ks[2])] != [20, 6, 0.3]:
        notes.append(f"TEST.RERANK K1/K2/LAMBDA = {ks}: reidkit re-ranks with 20 / 6 / 0.3")
    if _get(cfg, "TEST.AQE.ENABLED"):
        notes.append(
            "TEST.AQE (alpha-weighted query expansion) is not reproduced; "
            "evaluation_params.query_expansion is reidkit's plain average"
        )
    config = {
        "img_h": int(size[0]),
        "img_w": int(size[1]),
        "data": {
            "mean": mean,
            "std": std,
            "pixel_range": 255,
            "flip_test": bool(_get(cfg, "TEST.FLIP.ENABLED")),
        },
        "evaluation_params": {"distance": metric, "rerank": rerank},
    }
    return config, notes


def fastreid_plan(cfg: dict[str, Any], source: str, state: dict[str, torch.Tensor]) -> ImportPlan:
    """The plan for a fast-reid model with (flat) config ``cfg`` and weights ``state``."""
    mp = {**_backbone(cfg, source, state), **_head(cfg, source, state)}
    config, notes = _pipeline(cfg, source)
    weight = state.get("heads.weight", state.get("heads.classifier.weight"))
    fixed = {}
    if _get(cfg, "MODEL.HEADS.POOL_LAYER") == "GeneralizedMeanPooling":
        fixed["pool.gem.p"] = torch.tensor(3.0)  # fast-reid's fixed (non-learnable) GeM p
    return ImportPlan(
        source=source,
        model_params=mp,
        config=config,
        rules=_rules(mp),
        classifier_prefixes=("heads.weight", "heads.classifier."),
        num_classes=int(weight.shape[0]) if weight is not None and weight.ndim == 2 else 0,
        fixed=fixed,
        ignore={
            "pixel_mean": "fast-reid's in-model normalisation: reproduced by data.mean",
            "pixel_std": "fast-reid's in-model normalisation: reproduced by data.std",
        },
        notes=notes,
    )
