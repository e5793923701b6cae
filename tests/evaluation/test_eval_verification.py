"""Verification: pairs files, k-fold accuracy, ROC / AUC / TPR@FPR, the ROC PNG, the evaluator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from reidkit.evaluation import get_evaluator, run_evaluator, verification_metrics
from reidkit.evaluation.verification import draw_roc, read_pairs, roc_curve
from reidkit.utils.errors import DataError

# Hand-checked: rows in fold r % 3.
#   fold 0: test {0.9 P, 0.3 N}; train sorted 0.1N 0.4P 0.7N 0.8P -> best cut 3/4 correct at
#           thresholds 0.25 and 0.75, the lower (0.25) is taken -> test: 0.9 right, 0.3 wrong
#   fold 1: test {0.7 N, 0.8 P}; train 0.1N 0.3N 0.4P 0.9P -> 0.35 (4/4) -> 0.7 wrong, 0.8 right
#   fold 2: test {0.4 P, 0.1 N}; train 0.3N 0.7N 0.8P 0.9P -> 0.75 (4/4) -> 0.4 wrong, 0.1 right
#   accuracy 0.5 in every fold; mean threshold (0.25 + 0.35 + 0.75) / 3 = 0.45.
#   ROC (descending 0.9P 0.8P 0.7N 0.4P 0.3N 0.1N): AUC = 8/9 (positive-over-negative
#   pairs: 3 + 3 + 2 of 9); at FPR 0 the TPR is 2/3.
SCORES = [0.9, 0.7, 0.4, 0.3, 0.8, 0.1]
LABELS = [1, 0, 1, 0, 1, 0]


def test_hand_checked_metrics() -> None:
    m = verification_metrics(SCORES, LABELS, k=3)
    assert m["accuracy"] == pytest.approx(0.5) and m["accuracy_std"] == pytest.approx(0.0)
    assert m["threshold"] == pytest.approx(0.45)
    assert m["auc"] == pytest.approx(8 / 9)
    for key in ("tpr@fpr=1e-02", "tpr@fpr=1e-03", "tpr@fpr=1e-04"):
        assert m[key] == pytest.approx(2 / 3)
    assert m["num_pairs"] == 6


def test_roc_with_ties_and_separable_scores() -> None:
    fpr, tpr = roc_curve(torch.tensor([0.5, 0.5, 0.2, 0.9]), torch.tensor([1, 0, 0, 1]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    m = verification_metrics([0.9, 0.8, 0.2, 0.1] * 3, [1, 1, 0, 0] * 3, k=2)
    assert m["accuracy"] == 1.0 and m["auc"] == 1.0 and m["tpr@fpr=1e-04"] == 1.0


def test_read_lfw_and_csv_pairs(tmp_path: Path) -> None:
    lfw = tmp_path / "pairs.txt"
    lfw.write_text("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t1\nBob\t1\t2\nBob\t2\tAnn\t2\n")
    pairs, folds = read_pairs(lfw)
    assert pairs[0] == ("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", 1)
    assert pairs[1] == ("Ann/Ann_0001.jpg", "Bob/Bob_0001.jpg", 0)
    assert folds == [0, 0, 1, 1]
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("path_a,path_b,label\na.jpg,b.jpg,same\na.jpg,c.jpg,0\n")
    assert read_pairs(csv_file) == ([("a.jpg", "b.jpg", 1), ("a.jpg", "c.jpg", 0)], None)


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("pairs.txt", "x y\n", "line 1 should be"),
        ("pairs.txt", "1 1\nAnn 1\n", "line 2 is 'Ann 1'"),
        ("pairs.txt", "1 1\nAnn 1 2\n", "both same-identity and different"),
        ("pairs.csv", "a,b,1\nc,d,maybe\n", "label 'maybe' is not valid"),
        ("pairs.csv", "a,b\n", "line 1 has 2 fields"),
    ],
)
def test_bad_pairs_files(tmp_path: Path, name: str, text: str, needle: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=needle):
        read_pairs(tmp_path / name)


def test_roc_png_reads_back(tmp_path: Path) -> None:
    fpr, tpr = roc_curve(torch.tensor(SCORES), torch.tensor(LABELS))
    draw_roc(fpr, tpr, tmp_path / "roc.png")
    with Image.open(tmp_path / "roc.png") as im:
        assert im.size == (400, 400) and im.mode == "RGB"
        assert (200, 30, 30) in {c for _, c in im.getcolors(maxcolors=100000)}


def test_verification_evaluator_on_image_pairs(tmp_path: Path) -> None:
    from reidkit.config import validate_config
    from reidkit.models import ReidModel

    root = tmp_path / "faces"
    colours = {"Ann": (200, 40, 40), "Bob": (40, 40, 200), "Cid": (40, 200, 40)}
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i in (1, 2):
            shade = tuple(min(255, c + 20 * i) for c in colour)
            Image.new("RGB", (32, 64), shade).save(root / name / f"{name}_{i:04d}.jpg")
    (root / "pairs.txt").write_text(
        "2 2\nAnn 1 2\nBob 1 2\nAnn 1 Bob 1\nBob 2 Cid 1\n"
        "Cid 1 2\nAnn 2 1\nCid 2 Ann 1\nBob 1 Cid 2\n"
    )
    cfg = validate_config(
        {
            "batches_dir": str(root),
            "img_h": 64,
            "img_w": 32,
            "evaluation_params": {"type": "verification_evaluate", "distance": "cosine"},
            "data": {"num_workers": 0},
            "working_dir": str(tmp_path / "runs"),
            "sub_working_dir": "v",
            "progress": False,
        }
    )
    torch.manual_seed(0)
    model = ReidModel("resnet18", num_classes=3).eval()
    m = run_evaluator(get_evaluator("verification_evaluate"), cfg, model, device="cpu", epoch=2)
    assert m["num_pairs"] == 8 and 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["auc"] <= 1.0
    with Image.open(tmp_path / "runs" / "v" / "roc.png") as im:
        assert im.size == (400, 400)
    with pytest.raises(DataError, match="no pairs.txt"):
        (root / "pairs.txt").unlink()
        run_evaluator(get_evaluator("verification_evaluate"), cfg, model, device="cpu")
