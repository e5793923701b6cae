"""fast-reid config files as SOURCE: ``fastreid`` (config.yaml beside the checkpoint, as
fast-reid's training writes it), ``fastreid:<file>`` with ``_BASE_`` files, and a bare
``<file>.yaml`` path; each with settings the named presets do not cover (depths 18 / 34,
embedding neck, no BNNeck, fixed GeM, avg+max / max pooling, margin classifiers, own pixel
mean / std, flip test, euclidean metric, GhostBN)."""

from __future__ import annotations

import json
from pathlib import Path

from importers_helpers import (
    IMG_H,
    IMG_W,
    TOLERANCE,
    import_run,
    max_abs_diff,
    reidkit_embeddings,
    run_harness,
    write_recipes,
)

SIZE = ["INPUT.SIZE_TEST", f"[{IMG_H}, {IMG_W}]", "MODEL.HEADS.NUM_CLASSES", "5"]
R18_EMBEDDING = [
    *("MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512"),
    *("MODEL.BACKBONE.LAST_STRIDE", "2", "MODEL.HEADS.POOL_LAYER", "AdaptiveAvgMaxPool"),
    *("MODEL.HEADS.EMBEDDING_DIM", "128", "MODEL.HEADS.CLS_LAYER", "ArcSoftmax"),
    *("MODEL.HEADS.SCALE", "30", "MODEL.HEADS.MARGIN", "0.5"),
    *("MODEL.PIXEL_MEAN", "[120.0, 110.0, 100.0]", "MODEL.PIXEL_STD", "[60.0, 55.0, 50.0]"),
    *("TEST.FLIP.ENABLED", "True", "TEST.METRIC", "euclidean"),
]
R34_CHILD = """_BASE_: Base-bagtricks.yml
MODEL:
  BACKBONE:
    DEPTH: 34x
    FEAT_DIM: 512
  HEADS:
    POOL_LAYER: GeneralizedMeanPooling
    WITH_BNNECK: False
    CLS_LAYER: CosSoftmax
    SCALE: 16
    MARGIN: 0.2
"""
R18_MAX = """_BASE_: configs/Base-bagtricks.yml
MODEL:
  BACKBONE:
    DEPTH: 18x
    FEAT_DIM: 512
    NORM: GhostBN
  HEADS:
    POOL_LAYER: GlobalMaxPool
TEST:
  RERANK:
    ENABLED: True
"""


def test_fastreid_config_files_embed_identically(thirdparty_site, images, tmp_path):
    recipes = write_recipes(tmp_path / "configs")
    (recipes / "r34_child.yml").write_text(R34_CHILD)
    (tmp_path / "r18_max.yaml").write_text(R18_MAX)
    base = {"framework": "fastreid", "images": images}
    jobs = [
        {
            **base,
            "yaml": str(recipes / "Base-bagtricks.yml"),
            "opts": SIZE + R18_EMBEDDING,
            "dump_config": True,
            "out": str(tmp_path / "beside"),
            "seed": 0,
        },
        {
            **base,
            "yaml": str(recipes / "r34_child.yml"),
            "opts": SIZE,
            "out": str(tmp_path / "child"),
            "seed": 1,
        },
        {
            **base,
            "yaml": str(tmp_path / "r18_max.yaml"),
            "opts": SIZE,
            "out": str(tmp_path / "bare"),
            "seed": 2,
        },
    ]
    sources = ["fastreid", f"fastreid:{recipes / 'r34_child.yml'}", str(tmp_path / "r18_max.yaml")]
    results = run_harness(thirdparty_site, jobs, tmp_path)
    rows = []
    for job, source, result in zip(jobs, sources, results, strict=True):
        overrides = () if source == "fastreid" else (f"img_h={IMG_H}", f"img_w={IMG_W}")
        run = import_run(source, result["checkpoint"], Path(job["out"]) / "run", *overrides)
        rows.append((source, max_abs_diff(reidkit_embeddings(run, images), result["embeddings"])))
    print(f"max abs differences: {rows}")
    assert all(d <= TOLERANCE for _, d in rows), rows
    beside = json.loads((tmp_path / "beside" / "run" / "config.json").read_text())
    assert beside["data"]["flip_test"] and beside["data"]["pixel_range"] == 255
    assert beside["data"]["mean"] == [120.0, 110.0, 100.0]
    assert beside["evaluation_params"]["distance"] == "euclidean"
    assert beside["model_params"]["neck"] == "embedding"
    bare = json.loads((tmp_path / "bare" / "run" / "config.json").read_text())
    assert bare["evaluation_params"]["rerank"] and bare["model_params"]["pooling"] == "max"
