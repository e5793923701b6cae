"""The command line on disks that fail for real: past the process's file size limit (EFBIG,
SIGXFSZ ignored), on a full tmpfs and on a read-only one. Every command that writes a
checkpoint, an ONNX / OpenVINO file, a store or a report ends in one line naming the file and
the reason, exits 2, writes no crash log, and every file already there stays byte-identical."""

from __future__ import annotations

import shutil
from pathlib import Path

from disk_helpers import folder_size, leftovers, remount, tmpfs
from fault_helpers import assert_cases, crash_dir, run_many, snapshot

LIMIT = 400_000  # bytes: above config / log / TensorBoard files, below a checkpoint or a model


def _train(run: Path, *extra: str) -> tuple[str, ...]:
    """Resume ``run`` (a copy of small_run) for one more epoch."""
    params = run.parent / "params.json"
    return (
        "train",
        "-c",
        str(params),
        "--sub-working-dir",
        run.name,
        "--resume",
        "epoch=2",
        *extra,
    )


def _copy_run(small_run: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    shutil.copy(small_run.parent / "params.json", into / "params.json")
    text = (into / "params.json").read_text().replace(str(small_run.parent), str(into))
    (into / "params.json").write_text(text)
    return Path(shutil.copytree(small_run, into / small_run.name))


KEPT = ("best.pth", "last.pth", "model.onnx")  # never half-replaced (config.json: epoch=2)


def test_writes_past_the_file_size_limit(small_run: Path, tmp_path: Path):
    """(The epoch's record and log lines, written before the checkpoints in the kill-safe
    order, may stay: a resume redoes the epoch.)"""
    run = _copy_run(small_run, tmp_path / "runs")
    before = snapshot(run)
    too_large = "cannot write: file too large"
    cases = [
        (_train(run), f"{run}/", too_large, ".pth is unchanged"),
        (("export", str(run)), f"{run / 'model.onnx'}: {too_large}", "previous model.onnx"),
        (("export", str(run), "--format", "openvino"), "model.xml: " + too_large, "nothing was"),
        (("export", str(run), "--precision", "int8"), "model_int8.onnx: " + too_large),
        (("calibrate", str(run)), too_large, "is unchanged"),
    ]
    results = run_many([c[0] for c in cases], cwd=tmp_path, fsize=LIMIT)
    assert_cases(results, cases)
    after = snapshot(run)
    assert {k: after[k] for k in KEPT} == {k: before[k] for k in KEPT}
    assert not {"model.xml", "model.bin", "model_int8.onnx"} & set(after)
    assert not leftovers(tmp_path) and not crash_dir(tmp_path).exists()


def test_a_full_and_a_read_only_disk(small_run: Path, tmp_path: Path):
    size = folder_size(small_run) + (1 << 20)  # room for the logs of an epoch, not a checkpoint
    with tmpfs(tmp_path / "disk", size) as disk:
        run = _copy_run(small_run, disk / "runs")
        before = snapshot(run)
        (r,) = run_many([_train(run)], cwd=tmp_path)
        assert_cases([r], [(_train(run), f"{run}/", "cannot write: disk full", "unchanged")])
        after = snapshot(run)  # the epoch's log lines may stay; no file is half-replaced
        assert {k: after[k] for k in KEPT} == {k: before[k] for k in KEPT}
        assert not leftovers(run)
        remount(disk, ro=True)
        try:
            ro = snapshot(run)
            cases = [
                (_train(run), "read-only file system"),
                (("export", str(run)), "model.onnx: cannot write: read-only file system"),
                (("report", str(run)), "cannot write: read-only file system"),
                (("calibrate", str(run)), "cannot write: read-only file system"),
            ]
            assert_cases(run_many([c[0] for c in cases], cwd=tmp_path), cases)
            assert snapshot(run) == ro
        finally:
            remount(disk, ro=False)
    assert not crash_dir(tmp_path).exists()
