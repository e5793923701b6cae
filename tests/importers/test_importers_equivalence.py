"""Every supported SOURCE: a model built with random weights in its own framework (subprocess),
saved the framework's way, imported with ``reidkit import``, gives the same embeddings for the
same image files through reidkit's pipeline as through the framework's own test pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from importers_helpers import (
    IMG_H,
    IMG_W,
    PRESET_FILES,
    TOLERANCE,
    import_run,
    max_abs_diff,
    reidkit_embeddings,
    run_harness,
    write_recipes,
)

from reidkit.models.importers import supported_sources

SIZE = (f"img_h={IMG_H}", f"img_w={IMG_W}")
TORCHREID = {
    "osnet": ["osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25"],
    "resnet": ["resnet18", "resnet50", "resnet50_fc512"],
}
TORCHREID_BIG = ["resnet34", "resnet101"]
FASTREID = {"bot": ["bot_r50", "bot_r50_ibn", "agw_r50"], "sbs": ["sbs_r50", "sbs_r50_ibn"]}
FASTREID_BIG = ["sbs_r101_ibn"]


def _check(rows: list[tuple[str, float]]) -> None:
    table = ", ".join(f"{name}: {diff:.2e}" for name, diff in rows)
    print(f"max abs differences: {table}")  # shown with -s: the numbers behind the check
    assert all(diff <= TOLERANCE for _, diff in rows), f"max abs differences: {table}"


def _compare(jobs, sources, overrides, site, images, tmp_path) -> list[tuple[str, float]]:
    """Run the jobs, import each checkpoint as its SOURCE, compare; delete the big files."""
    rows = []
    for job, source, result in zip(jobs, sources, run_harness(site, jobs, tmp_path), strict=True):
        run = import_run(source, result["checkpoint"], Path(job["out"]) / "run", *overrides)
        rows.append((source, max_abs_diff(reidkit_embeddings(run, images), result["embeddings"])))
        shutil.rmtree(job["out"])  # ~100 MB of checkpoints per ResNet-50
    return rows


def test_every_supported_source_has_an_equivalence_test() -> None:
    tested = {f"torchreid:{a}" for group in TORCHREID.values() for a in group}
    tested |= {f"torchreid:{a}" for a in TORCHREID_BIG}
    tested |= {f"fastreid:{p}" for group in FASTREID.values() for p in group}
    tested |= {f"fastreid:{p}" for p in FASTREID_BIG}
    assert tested == set(supported_sources())


def _torchreid_jobs(archs: list[str], images: list[str], tmp_path: Path) -> list[dict]:
    return [
        {
            "framework": "torchreid",
            "arch": arch,
            "num_classes": 7,
            "image_size": [IMG_H, IMG_W],
            "dataparallel": i == 0,  # keys saved with the module. prefix
            "bare": i == 1,  # a bare state dict in a .pth file
            "out": str(tmp_path / arch),
            "images": images,
            "seed": i,
        }
        for i, arch in enumerate(archs)
    ]


@pytest.mark.parametrize("group", sorted(TORCHREID))
def test_torchreid_checkpoints_embed_identically(group, thirdparty_site, images, tmp_path):
    archs = TORCHREID[group]
    sources = [f"torchreid:{a}" for a in archs]
    jobs = _torchreid_jobs(archs, images, tmp_path)
    _check(_compare(jobs, sources, SIZE, thirdparty_site, images, tmp_path))


@pytest.mark.slow
def test_torchreid_deeper_resnets_embed_identically(thirdparty_site, images, tmp_path):
    sources = [f"torchreid:{a}" for a in TORCHREID_BIG]
    jobs = _torchreid_jobs(TORCHREID_BIG, images, tmp_path)
    _check(_compare(jobs, sources, SIZE, thirdparty_site, images, tmp_path))


def _preset_jobs(presets: list[str], images: list[str], tmp_path: Path) -> list[dict]:
    recipes = write_recipes(tmp_path / "configs")
    opts = ["INPUT.SIZE_TEST", f"[{IMG_H}, {IMG_W}]", "MODEL.HEADS.NUM_CLASSES", "7"]
    return [
        {
            "framework": "fastreid",
            "yaml": str(recipes / PRESET_FILES[p]),
            "opts": opts,
            "out": str(tmp_path / p),
            "images": images,
            "seed": i,
        }
        for i, p in enumerate(presets)
    ]


@pytest.mark.parametrize("group", sorted(FASTREID))
def test_fastreid_presets_embed_identically(group, thirdparty_site, images, tmp_path):
    presets = FASTREID[group]
    jobs = _preset_jobs(presets, images, tmp_path)
    sources = [f"fastreid:{p}" for p in presets]
    _check(_compare(jobs, sources, SIZE, thirdparty_site, images, tmp_path))


@pytest.mark.slow
def test_fastreid_r101_preset_embeds_identically(thirdparty_site, images, tmp_path):
    jobs = _preset_jobs(FASTREID_BIG, images, tmp_path)
    sources = [f"fastreid:{p}" for p in FASTREID_BIG]
    _check(_compare(jobs, sources, SIZE, thirdparty_site, images, tmp_path))
