"""Imported runs go through reidkit unchanged: ``reidkit eval`` (its test loader and flip
averaging), ``reidkit export`` (with its parity check, also with normalisation inside the
graph) and the Embedder (PyTorch and ONNX), each giving the source framework's embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from importers_helpers import (
    IMG_H,
    IMG_W,
    PRESET_FILES,
    TOLERANCE,
    import_run,
    max_abs_diff,
    run_harness,
    write_recipes,
)

from reidkit.cli import main
from reidkit.data import Record, build_test_loader
from reidkit.data.sources import FolderSource
from reidkit.deploy import Embedder
from reidkit.evaluation.features import extract_features
from reidkit.models.checkpoint import restore

SIZE = (f"img_h={IMG_H}", f"img_w={IMG_W}")
SMALL_FASTREID = [
    *("MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512"),
    *("MODEL.HEADS.POOL_LAYER", "GeneralizedMeanPoolingP", "MODEL.HEADS.NUM_CLASSES", "4"),
    *("MODEL.PIXEL_MEAN", "[110.0, 115.0, 105.0]", "MODEL.PIXEL_STD", "[62.0, 58.0, 60.0]"),
    *("TEST.FLIP.ENABLED", "True"),
]


@pytest.fixture(scope="module")
def imported(thirdparty_site, images, tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """A torchreid OSNet and a fast-reid ResNet-18 (GeM, own 0..255 normalisation, flip test
    on) imported as runs, with the embeddings their frameworks give for ``images``."""
    tmp = tmp_path_factory.mktemp("pipeline")
    recipes = write_recipes(tmp / "configs")
    opts = [*SMALL_FASTREID, "INPUT.SIZE_TEST", f"[{IMG_H}, {IMG_W}]"]
    jobs = [
        {
            "framework": "torchreid",
            "arch": "osnet_x0_25",
            "num_classes": 4,
            "image_size": [IMG_H, IMG_W],
            "dataparallel": True,
            "out": str(tmp / "tr"),
            "images": images,
            "seed": 3,
        },
        {
            "framework": "fastreid",
            "yaml": str(recipes / "Base-bagtricks.yml"),
            "opts": opts,
            "dump_config": True,
            "out": str(tmp / "fr"),
            "images": images,
            "seed": 4,
        },
    ]
    tr, fr = run_harness(thirdparty_site, jobs, tmp)
    return {
        "torchreid": (
            import_run("torchreid:osnet_x0_25", tr["checkpoint"], tmp / "run_tr", *SIZE),
            tr["embeddings"],
        ),
        "fastreid": (import_run("fastreid", fr["checkpoint"], tmp / "run_fr"), fr["embeddings"]),
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from reidkit.data.synthetic import generate_synthetic

    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(
        root,
        num_ids=4,
        num_test_ids=3,
        num_cameras=2,
        img_h=IMG_H,
        img_w=IMG_W,
        images_per_id=4,
        seed=0,
    )
    return root


@pytest.mark.parametrize("name", ["torchreid", "fastreid"])
def test_eval_pipeline_gives_the_source_embeddings(name, imported, images) -> None:
    run, reference = imported[name]
    model, cfg = restore(run)
    folder = Path(images[0]).parent
    records = [Record(Path(p).name, 0, 0) for p in images]
    loader = build_test_loader(cfg, records, FolderSource(folder), "cpu")
    feats, _, _ = extract_features(model, loader, "cpu", flip=cfg.data.flip_test)
    assert cfg.data.flip_test == (name == "fastreid")
    assert max_abs_diff(feats.numpy(), reference) <= TOLERANCE


@pytest.mark.parametrize("name", ["torchreid", "fastreid"])
def test_reidkit_eval_runs_on_an_imported_run(name, imported, dataset, capsys) -> None:
    run, _ = imported[name]
    assert main(["eval", str(run), f"batches_dir={dataset}", "--device", "cpu"]) == 0
    metrics = json.loads((run / "eval.json").read_text())["metrics"]
    assert metrics["num_queries"] > 0 and 0.0 <= metrics["mAP"] <= 1.0
    assert "mAP" in capsys.readouterr().out


def _onnx_close(onnx_path: Path, images: list[str], reference: np.ndarray) -> None:
    """onnxruntime's embeddings of the files match the source within export's own tolerance
    (1e-4 x the largest magnitude: onnxruntime's kernels round differently from PyTorch's)."""
    got = Embedder.from_onnx(onnx_path).embed(images)
    assert max_abs_diff(got, reference) <= TOLERANCE


def test_export_and_embedders_of_an_imported_torchreid_run(imported, images) -> None:
    run, reference = imported["torchreid"]
    assert main(["export", str(run)]) == 0
    _onnx_close(run / "model.onnx", images, reference)
    assert max_abs_diff(Embedder.from_checkpoint(run).embed(images), reference) <= TOLERANCE


@pytest.mark.slow  # the dynamo exporter (antialiased resize in the graph) takes ~30 s
def test_export_of_an_imported_fastreid_run_normalises_in_graph(imported, images, tmp_path):
    """0..255 normalisation inside the graph (uint8 input), recorded in the metadata."""
    run, _ = imported["fastreid"]
    out = tmp_path / "uint8.onnx"
    assert main(["export", str(run), "--preprocess", "uint8-nhwc", "--out", str(out)]) == 0
    embedder = Embedder.from_onnx(out)
    assert embedder.pixel_range == 255.0 and embedder.mean == (110.0, 115.0, 105.0)
    ref = Embedder.from_checkpoint(run).embed(images)  # no flip: deployed models embed as given
    _onnx_close(out, images, ref)


@pytest.mark.slow
def test_export_of_an_imported_agw_run(thirdparty_site, images, tmp_path) -> None:
    """AGW: non-local blocks and GeM of an imported ResNet-50 through the exporter."""
    recipes = write_recipes(tmp_path / "configs")
    job = {
        "framework": "fastreid",
        "yaml": str(recipes / PRESET_FILES["agw_r50"]),
        "opts": ["INPUT.SIZE_TEST", f"[{IMG_H}, {IMG_W}]", "MODEL.HEADS.NUM_CLASSES", "4"],
        "out": str(tmp_path / "agw"),
        "images": images,
        "seed": 5,
    }
    (result,) = run_harness(thirdparty_site, [job], tmp_path)
    run = import_run("fastreid:agw_r50", result["checkpoint"], tmp_path / "run", *SIZE)
    assert main(["export", str(run)]) == 0
    _onnx_close(run / "model.onnx", images, result["embeddings"])
