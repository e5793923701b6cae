"""Run folders are never silently replaced, and what is written is written well."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from fault_helpers import assert_one_line_error, run_cli, snapshot, tiny_params, write_json


def _copy(trained_run: Path, data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the finished run and the params file that made it."""
    run = Path(shutil.copytree(trained_run, tmp_path / "runs" / "done"))
    return run, write_json(tmp_path / "p.json", tiny_params(data, tmp_path / "runs"))


def test_a_finished_run_is_not_replaced_without_overwrite(
    trained_run: Path, faults_data: Path, tmp_path: Path
):
    run, cfg = _copy(trained_run, faults_data, tmp_path)
    before = snapshot(run)
    r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "done", cwd=tmp_path)
    assert_one_line_error(r, "already holds a run", "--resume", "--overwrite")
    assert snapshot(run) == before
    r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "done", "--overwrite", cwd=tmp_path)
    assert r.rc == 0, r.err[-2000:]
    assert snapshot(run)["best.pth"] != before["best.pth"]


def test_a_refused_resume_changes_nothing(trained_run: Path, faults_data: Path, tmp_path: Path):
    run, cfg = _copy(trained_run, faults_data, tmp_path)
    before = snapshot(run)
    r = run_cli(
        "train", "-c", str(cfg), "--sub-working-dir", "done", "--resume", "lr.base_lr=0.5",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(r, "cannot resume, the config changed", "lr.base_lr")
    assert snapshot(run) == before


def test_resume_of_a_run_that_does_not_exist_is_an_error(
    trained_run: Path, faults_data: Path, tmp_path: Path
):
    _, cfg = _copy(trained_run, faults_data, tmp_path)
    r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "dnoe", "--resume", cwd=tmp_path)
    assert_one_line_error(r, "holds no run to continue", "done")
    assert not (tmp_path / "runs" / "dnoe").exists()


def test_files_follow_the_umask_and_stale_temp_files_go(
    trained_run: Path, faults_data: Path, tmp_path: Path
):
    mode = stat.S_IMODE((trained_run / "last.pth").stat().st_mode)
    assert mode == 0o666 & ~_umask(), oct(mode)
    run, cfg = _copy(trained_run, faults_data, tmp_path)
    stale = run / ".last.pth.999999999.abcd.tmp"  # left by a killed writer (no such pid)
    stale.write_bytes(b"half a checkpoint")
    r = run_cli(
        "train", "-c", str(cfg), "--sub-working-dir", "done", "--resume", "epoch=2",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.rc == 0, r.err[-2000:]
    assert not stale.exists()


def test_working_dir_that_is_a_file_and_a_damaged_config_in_runs(
    trained_run, faults_data, tmp_path
):
    _, cfg = _copy(trained_run, faults_data, tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    r = run_cli("train", "-c", str(cfg), f"working_dir={tmp_path / 'afile'}", cwd=tmp_path)
    assert_one_line_error(r, "afile", "is a file")
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes(b"{not json")
    r = run_cli("runs", str(tmp_path / "runs"), cwd=tmp_path)
    assert r.rc == 0 and "done" in r.out and "broken" in r.out and "unreadable" in r.out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
