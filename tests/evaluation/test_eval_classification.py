"""classification_evaluate: accuracy maths by hand, and end to end on a tiny ImageFolder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from reidkit.evaluation import get_evaluator, run_evaluator
from reidkit.evaluation.builtins import classification_accuracy, classifier_logits
from reidkit.utils.errors import DataError


def test_accuracy_by_hand() -> None:
    logits = torch.tensor(
        [
            [0.9, 0.1, 0.0],  # label 0: top-1 right
            [0.2, 0.5, 0.3],  # label 2: top-1 wrong (1), in top-2
            [0.1, 0.2, 0.7],  # label 2: right
            [0.6, 0.3, 0.1],  # label 1: wrong
        ]
    )
    m = classification_accuracy(logits, torch.tensor([0, 2, 2, 1]), 3, ["cat", "dog", "owl"])
    assert m["top1"] == 0.5 and m["top5"] == 1.0  # top-5 = top-3 with 3 classes
    assert m["acc/cat"] == 1.0 and m["acc/dog"] == 0.0 and m["acc/owl"] == 0.5
    assert m["mean_class_acc"] == pytest.approx(0.5) and m["num_images"] == 4


@pytest.fixture()
def imagefolder(tmp_path: Path) -> Path:
    root = tmp_path / "cls"
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
    for split, n in (("train", 3), ("val", 2)):
        for name, colour in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), tuple(c + 5 * i for c in colour)).save(
                    root / split / name / f"{i}.png"
                )
    return root


def _cfg(root: Path, tmp_path: Path):
    from reidkit.config import validate_config

    return validate_config(
        {
            "batches_dir": str(root),
            "img_h": 32,
            "img_w": 32,
            "model_params": {"backbone": "resnet18"},
            "evaluation_params": {"type": "classification_evaluate"},
            "data": {"num_workers": 0},
            "working_dir": str(tmp_path / "runs"),
            "progress": False,
        }
    )


def test_classification_evaluate_on_imagefolder(imagefolder: Path, tmp_path: Path) -> None:
    from reidkit.data import build_dataset, build_test_loader
    from reidkit.models import build_model

    cfg = _cfg(imagefolder, tmp_path)
    ds = build_dataset(cfg)
    assert ds.class_names == ["blue", "green", "red"] and len(ds.query) == 6
    torch.manual_seed(0)
    model = build_model(cfg, ds.num_train_ids).eval()
    m = run_evaluator(
        get_evaluator("classification_evaluate"), cfg, model, dataset=ds, device="cpu"
    )
    with torch.inference_mode():
        batch = next(iter(build_test_loader(cfg, ds.query, ds.source, "cpu")))
        pred = classifier_logits(model, batch.images).argmax(1)
    expected = (pred == torch.as_tensor(batch.pids)).double().mean().item()
    assert m["top1"] == pytest.approx(expected)
    assert m["top5"] == 1.0 and set(m) >= {"acc/blue", "acc/green", "acc/red", "mean_class_acc"}


def test_classification_rejects_foreign_labels(imagefolder: Path, tmp_path: Path) -> None:
    from reidkit.data import build_dataset
    from reidkit.models import build_model

    cfg = _cfg(imagefolder, tmp_path)
    ds = build_dataset(cfg)
    model = build_model(cfg, 2).eval()  # a classifier with too few classes
    with pytest.raises(DataError, match="validation label 2 is outside the classifier's 0..1"):
        run_evaluator(
            get_evaluator("classification_evaluate"), cfg, model, dataset=ds, device="cpu"
        )


def test_classifier_logits_of_a_part_model() -> None:
    from reidkit.models import ReidModel

    torch.manual_seed(0)
    model = ReidModel("resnet18", num_classes=5, num_parts=2).eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.inference_mode():
        logits = classifier_logits(model, x)
        emb = model(x)
        half = emb.shape[1] // 2
        manual = (model.classifier[0](emb[:, :half]) + model.classifier[1](emb[:, half:])) / 2
    assert logits.shape == (3, 5) and torch.allclose(logits, manual, atol=1e-5)
    with pytest.raises(DataError, match="has no classify"):
        classifier_logits(torch.nn.Identity(), x)
