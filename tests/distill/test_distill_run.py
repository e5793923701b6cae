"""``reidkit distill`` end to end through the CLI: the run folder is an ordinary run (eval,
export), each term is logged, the teacher is untouched, label-free mode trains on crops, and
the teacher cache gives the targets running the teacher per batch would give."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from distill_helpers import sha256, write_json

from reidkit.app.cli import main
from reidkit.app.distill_teacher import weights_digest
from reidkit.data import build_dataset
from reidkit.data.loaders import TrainLoader, augment_from_config
from reidkit.data.targets import TargetLoader, cacheable_views
from reidkit.models.checkpoint import load_checkpoint, restore
from reidkit.models.distill import FrozenTeacher

DISTILL_TERMS = {"ce", "triplet", "kd", "feature", "relation", "total"}


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_distill_cli_end_to_end(make_student, teacher_run: Path, tmp_path: Path, capsys) -> None:
    teacher_bytes = sha256(teacher_run / "best.pth")
    teacher_weights = weights_digest(restore(teacher_run)[0])
    p = write_json(tmp_path / "s.json", make_student(tmp_path / "w", epoch=2))
    assert main(["distill", "-c", str(p), "--sub-working-dir", "student"]) == 0
    run = tmp_path / "w" / "student"
    log = (run / "train.log").read_text()
    assert "teacher: outputs cached once per image" in log and "mirror flip" in log
    assert "kd x1 (T 4)" in log and "feature x1 (projected, cosine)" in log
    records = _records(run)
    assert [r["epoch"] for r in records] == [1, 2]
    assert set(records[-1]["train"]) >= DISTILL_TERMS and "mAP" in records[-1]["eval"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set(EventAccumulator(str(run)).Reload().Tags()["scalars"])
    assert {f"loss/{k}" for k in DISTILL_TERMS} <= tags
    # the teacher: same file, same weights
    assert sha256(teacher_run / "best.pth") == teacher_bytes
    assert weights_digest(restore(teacher_run)[0]) == teacher_weights
    # an ordinary run: restore gives the student alone; the projection stays in the loss state
    ckpt = load_checkpoint(run / "best.pth")
    assert "projection.weight" in ckpt["loss"] and ckpt["callbacks"]["distill_teacher"]["teacher"]
    model, cfg = restore(run)
    assert cfg.model_params.backbone == "osnet_x0_25" and model.embedding_dim == 128
    assert not any(k.startswith(("teacher", "projection")) for k in ckpt["model"])
    assert main(["eval", str(run), "--device", "cpu"]) == 0
    assert main(["export", str(run)]) == 0  # fp32 ONNX, parity + query/gallery accuracy check
    assert (run / "model.onnx").is_file()
    assert "accuracy" in capsys.readouterr().out
    assert main(["calibrate", str(run)]) == 0  # same-person thresholds, in the checkpoint
    assert "calibration" in load_checkpoint(run / "best.pth")


def test_label_free_distillation_trains_on_crops(
    make_student, distill_data: Path, tmp_path: Path
) -> None:
    crops = distill_data / "bounding_box_train"
    p = write_json(tmp_path / "s.json", make_student(tmp_path / "w"))
    argv = ["distill", "-c", str(p), "--unlabeled", str(crops), "--sub-working-dir", "free"]
    assert main(argv) == 0
    run = tmp_path / "w" / "free"
    train = _records(run)[-1]["train"]
    assert {"feature", "relation", "total"} <= set(train)
    assert not {"ce", "triplet", "kd"} & set(train)  # the teacher is the only target
    assert "mAP" in _records(run)[-1]["eval"]  # evaluated on batches_dir's query / gallery
    assert json.loads((run / "config.json").read_text())["distill"]["unlabeled"] == str(crops)
    assert load_checkpoint(run / "best.pth")["num_classes"] == 1


def test_cached_teacher_outputs_equal_running_the_teacher(
    make_student, teacher_run: Path, tmp_path: Path
) -> None:
    from reidkit.app.distill_teacher import build_teacher_cache
    from reidkit.config import validate_config

    cfg = validate_config(make_student(tmp_path / "w"))
    dataset = build_dataset(cfg)
    common = dict(height=32, width=16, batch_size=16, K=4, cache="ram", num_workers=0, seed=3)
    augment = augment_from_config(cfg)
    assert cacheable_views(augment)[0] == 2
    loader = TargetLoader(dataset.train, dataset.source, augment=augment, **common)
    plain = TrainLoader(dataset.train, dataset.source, augment=augment, **common)
    teacher = FrozenTeacher(restore(teacher_run)[0], logits=True)
    device = torch.device("cpu")
    loader.set_table(build_teacher_cache(teacher, loader, 2, "off", device, batch_size=7))
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        plain.set_epoch(epoch)
        for a, b in zip(loader, plain, strict=True):
            # the same batches ordinary training draws ...
            assert torch.equal(a.images, b.images) and torch.equal(a.pids.pids, b.pids)
            # ... and the cached rows are the teacher's outputs on those augmented images
            live = teacher(a.images)
            for name in ("embedding", "logits"):
                assert torch.allclose(a.pids.teacher[name], live[name], atol=1e-4), name
