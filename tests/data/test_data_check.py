"""`reidkit data check`: planted problems are found (and nothing else), a clean set is clean,
packed stores work, and the parts (hash pairs, neighbours) agree with brute force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidkit.cli import main
from reidkit.data.check import label_suspects
from reidkit.data.check_dups import near_pairs
from reidkit.data.synthetic import generate_synthetic

# Realistic synthetic people (synth v4) share clothes and scenes: at 64x32 ImageNet features
# tell them apart too poorly for a label check, so these sets are 128x64 with 8 images per id.
SYNTH = {"num_ids": 6, "num_test_ids": 6, "num_cameras": 3, "img_h": 128, "img_w": 64}
FAST = ["-q"]
SMALL = {**SYNTH, "img_h": 64, "img_w": 32}  # for the checks that need no features


def _check(root: Path, out: Path, *extra: str) -> tuple[int, dict]:
    code = main(["data", "check", str(root), "-o", str(out), *FAST, *extra])
    return code, json.loads((out / "check.json").read_text())


def _found(result: dict) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for f in result["findings"]:
        out.setdefault(f["kind"], []).append([im["path"] for im in f["images"]])
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("planted")
    summary = generate_synthetic(root, images_per_id=8, plant=True, **SYNTH)
    return root, summary["planted"]


def test_planted_problems_are_found_and_nothing_else(planted, tmp_path: Path, capsys) -> None:
    root, plan = planted
    code, result = _check(root, tmp_path / "out")
    assert code == 1 and result["leakage"] and result["label_check"]
    found = _found(result)
    assert sorted(found) == sorted(plan)  # no other kind of finding
    assert found["identical_leak"] == [plan["identical_leak"]]
    assert found["near_duplicate_leak"] == [plan["near_duplicate_leak"]]
    assert found["single_image_id"] == [plan["single_image_id"]]
    [suspect] = found["label_suspect"]
    assert suspect[0] == plan["label_suspect"][0] and len(suspect) == 1 + 3
    wrong_id = Path(plan["label_suspect"][0]).name[4:]  # neighbours: the image's true identity
    assert all(Path(p).name[:4] != Path(suspect[0]).name[:4] for p in suspect[1:]), wrong_id
    printed = capsys.readouterr().out
    assert "LEAKAGE found" in printed and "check.html" in printed
    page = (tmp_path / "out" / "check.html").read_text()
    assert page.count("<figure") == 2 + 2 + 1 + 4 and "data:image/jpeg;base64," in page


def test_a_packed_store_gives_the_same_findings(planted, tmp_path: Path) -> None:
    root, _ = planted
    store = tmp_path / "planted.lmdb"
    assert main(["pack", str(root), str(store)]) == 0
    code, from_store = _check(store, tmp_path / "s")
    _, from_folder = _check(root, tmp_path / "f")
    assert code == 1 and _found(from_store) == _found(from_folder)
    assert from_store["splits"] == from_folder["splits"]


def test_a_clean_set_has_no_findings(tmp_path: Path) -> None:
    generate_synthetic(tmp_path / "clean", images_per_id=8, **SYNTH)
    code, result = _check(tmp_path / "clean", tmp_path / "out")
    assert code == 0 and not result["leakage"] and result["findings"] == []
    assert set(result["summary"].values()) == {0}
    train = result["splits"]["train"]
    assert train["ids"] == 6 and sum(train["per_camera"].values()) == train["images"]


def test_unreadable_outliers_in_split_duplicates_and_unmatched_queries(tmp_path: Path) -> None:
    root = tmp_path / "d"
    generate_synthetic(root, images_per_id=6, **SMALL)
    train = sorted((root / "bounding_box_train").glob("*.jpg"))
    pid = train[0].name[:4]  # extra images of an existing id, so no id has a single image
    (root / "bounding_box_train" / f"{pid}_c1s1_000001_09.jpg").write_bytes(b"not an image")
    copy = root / "bounding_box_train" / f"{train[0].name[:-7]}_05.jpg"
    shutil.copyfile(train[0], copy)
    rng = np.random.default_rng(0)
    for name, (w, h) in (
        (f"{pid}_c1s1_000002_09.png", (64, 256)),
        (f"{pid}_c2s1_000003_09.png", (96, 64)),
    ):
        noise = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)  # unlike any other image
        Image.fromarray(noise).save(root / "bounding_box_train" / name)
    query = sorted((root / "query").glob("*.jpg"))[0]
    lonely = query.name[:4]
    for g in (root / "bounding_box_test").glob(f"{lonely}_*.jpg"):
        g.unlink()
    code, result = _check(root, tmp_path / "out", "--no-labels")
    found = _found(result)
    assert code == 0 and not result["label_check"]
    assert found["unreadable"] == [[f"bounding_box_train/{pid}_c1s1_000001_09.jpg"]]
    assert found["identical_in_split"] == [sorted([rel(train[0], root), rel(copy, root)])]
    assert found["size_outlier"] == [[f"bounding_box_train/{pid}_c1s1_000002_09.png"]]
    assert sorted(p for [p] in found["aspect_outlier"]) == [
        f"bounding_box_train/{pid}_c1s1_000002_09.png",  # 64x256: 8x the area, 1/2 the aspect
        f"bounding_box_train/{pid}_c2s1_000003_09.png",  # 96x64: 3x the area, 3x the aspect
    ]
    [unmatched] = found["query_id_not_in_gallery"]
    assert all(Path(p).name.startswith(lonely) for p in unmatched)
    assert len(unmatched) == len(list((root / "query").glob(f"{lonely}_*.jpg")))
    assert sorted(found) == sorted(
        [
            "unreadable",
            "identical_in_split",
            "size_outlier",
            "aspect_outlier",
            "query_id_not_in_gallery",
        ]
    )


def rel(p: Path, root: Path) -> str:
    return p.relative_to(root).as_posix()


def test_bad_options_and_roots_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "missing"), "--no-labels"]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    generate_synthetic(tmp_path / "s", images_per_id=4, **SMALL)
    args = ["data", "check", str(tmp_path / "s"), "-o", str(tmp_path / "o"), "--no-labels"]
    assert main([*args, "--hash-distance", "300"]) == 2
    assert "--hash-distance 300: expected 0..128" in capsys.readouterr().err
    assert main([*args, "--size-factor", "0.5"]) == 2
    assert "--size-factor 0.5: expected a factor above 1.0" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "s"), "--feature-size", "big"]) == 2
    assert "expected HEIGHTxWIDTH" in capsys.readouterr().err


def test_near_pairs_equal_brute_force() -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=(700, 4), dtype=np.uint64)
    for a, b in ((3, 650), (10, 11), (300, 301), (299, 600)):  # across block boundaries too
        flip = np.uint64(1) << np.uint64(int(rng.integers(64)))
        hashes[b] = hashes[a] ^ np.array([flip, 0, 0, 0], dtype=np.uint64)
    usable = np.ones(700, dtype=bool)
    usable[11] = False
    bits = np.unpackbits(hashes.view(np.uint8), axis=1)
    dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    want = sorted(
        (i, j, int(dist[i, j]))
        for i in range(700)
        for j in range(i + 1, 700)
        if dist[i, j] <= 90 and usable[i] and usable[j]
    )
    assert sorted(near_pairs(hashes, usable, 90)) == want
    assert sorted(near_pairs(hashes, usable, 1)) == [(3, 650, 1), (299, 600, 1), (300, 301, 1)]


def test_label_suspects_need_unanimous_other_neighbours() -> None:
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((3, 16)) * 5
    pids = [0] * 6 + [1] * 6 + [2] * 6
    feats = centres[pids] + 0.1 * rng.standard_normal((18, 16))
    pids[2] = 1  # looks like id 0, labelled 1
    pids[13] = 7  # the only image of id 7: nothing to compare its label with
    found = label_suspects(feats, pids, k=3)
    assert [(i, other) for i, _, other in found] == [(2, 0)]
    assert all(pids[j] == 0 for j in found[0][1]) and len(found[0][1]) == 3
    assert label_suspects(feats, pids, k=0) == [] and label_suspects(feats[:3], pids[:3], 3) == []


def test_label_check_with_a_run_model(planted, tmp_path: Path) -> None:
    import torch

    from reidkit.config import save_config, validate_config
    from reidkit.models import build_model
    from reidkit.models.checkpoint import save_checkpoint

    root, plan = planted
    cfg = validate_config(
        {
            "batches_dir": str(root),
            "img_h": 64,
            "img_w": 32,
            "model_params": {"backbone": "resnet18"},
        }
    )
    torch.manual_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    save_config(cfg, run / "config.json")
    model = build_model(cfg, 6).eval()
    save_checkpoint(
        {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": 6}, run / "best.pth"
    )
    code, result = _check(root, tmp_path / "out", "--model", str(run))
    assert code == 1 and result["label_check"] and result["features"] == str(run)
    found = _found(result)  # an untrained model's neighbours are arbitrary: no claim on labels
    for kind in ("identical_leak", "near_duplicate_leak", "single_image_id"):
        assert found[kind] == [plan[kind]]
    assert main(["data", "check", str(root), "--model", str(tmp_path / "nope"), "-q"]) == 2
