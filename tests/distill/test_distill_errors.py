"""Bad input to ``reidkit distill`` gets one ``error:`` line and exit 2 before anything is
written; a teacher of other classes / size / normalisation is adapted to or refused as the
distill keys say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from distill_helpers import untrained_teacher, write_json

from reidkit.app.cli import main


def _one_line(capsys: pytest.CaptureFixture, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_missing_or_unusable_teacher(make_student, tmp_path: Path, capsys) -> None:
    params = make_student(tmp_path / "w", sub_working_dir="x")
    del params["distill"]
    p = write_json(tmp_path / "p.json", params)
    _one_line(capsys, ["distill", "-c", str(p)], "distill.teacher is not set", "--teacher RUN")
    argv = ["distill", "-c", str(p), "--teacher", str(tmp_path / "norun")]
    _one_line(capsys, argv, "norun", "no such run folder")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    _one_line(capsys, ["distill", "-c", str(p), "--teacher", str(junk)], "junk.pth", "not a")
    argv = ["distill", "-c", str(p), "--teacher", str(tmp_path), "--unlabeled", "nope"]
    _one_line(capsys, argv, "distill.unlabeled", "nope", "no such folder")
    # a teacher inside the student's own run folder (--overwrite would delete it)
    inside = untrained_teacher(tmp_path / "w" / "x" / "t", params, 8)
    _one_line(capsys, ["distill", "-c", str(p), "--teacher", str(inside)], "inside the student")
    assert not (tmp_path / "w" / "x" / "config.json").exists()  # nothing written


def test_teacher_of_other_classes_size_and_normalisation(
    make_student, tmp_path: Path, capsys
) -> None:
    student = make_student(tmp_path / "w", sub_working_dir="s")
    other = {**student, "img_h": 64, "img_w": 32, "batches_dir": str(tmp_path / "elsewhere")}
    other["data"] = {**student["data"], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    teacher = untrained_teacher(tmp_path / "other", other, num_classes=5)
    # KD asked for explicitly: one line, nothing written
    asked = {**student, "distill": {"teacher": str(teacher), "kd_weight": 1.0}}
    p = write_json(tmp_path / "asked.json", asked)
    _one_line(capsys, ["distill", "-c", str(p)], "distill.kd_weight = 1.0", "5 classes")
    assert not (tmp_path / "w" / "s").exists()
    # KD by default: skipped with a warning; the batch is resized and renormalised
    p = write_json(tmp_path / "default.json", {**student, "distill": {"teacher": str(teacher)}})
    assert main(["distill", "-c", str(p)]) == 0
    log = (tmp_path / "w" / "s" / "train.log").read_text()
    assert "KD on the logits skipped" in log
    assert "32x16 batch is resized (bilinear) to the teacher's 64x32" in log
    assert "renormalised to the teacher's mean [0.5, 0.5, 0.5]" in log
    record = json.loads((tmp_path / "w" / "s" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "kd" not in record["train"] and "feature" in record["train"]
    # resuming with other teacher weights under the same path is refused
    untrained_teacher(teacher, other, num_classes=5, seed=1)
    argv = ["distill", "-c", str(p), "--resume", "epoch=2"]
    _one_line(capsys, argv, "the teacher's weights differ from those the run started with")
    assert len((tmp_path / "w" / "s" / "metrics.jsonl").read_text().splitlines()) == 1
