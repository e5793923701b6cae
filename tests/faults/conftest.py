"""Fixtures of the fault-injection tests: a clean tiny data set and a finished run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fault_helpers import run_cli, tiny_params, write_json

from reidkit.data.synthetic import generate_synthetic


@pytest.fixture(scope="session")
def faults_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean synthetic Market-style set: 6 identities, 3 cameras."""
    root = tmp_path_factory.mktemp("faults_data")
    generate_synthetic(root, num_ids=6, num_cameras=3, img_h=64, img_w=32, seed=3)
    return root


@pytest.fixture
def data_copy(faults_data: Path, tmp_path: Path) -> Path:
    """A private copy of the data set that a test may damage."""
    return Path(shutil.copytree(faults_data, tmp_path / "data"))


@pytest.fixture(scope="session")
def trained_run(faults_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch run folder (best.pth, last.pth, config.json ...); read-only use."""
    work = tmp_path_factory.mktemp("faults_work")
    cfg = write_json(work / "params.json", tiny_params(faults_data, work / "runs"))
    r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "done", cwd=work)
    assert r.rc == 0, r.err[-3000:]
    return work / "runs" / "done"


@pytest.fixture(scope="session")
def small_run(faults_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch OSNet-x0.25 run (2 MB checkpoints, small enough for a tmpfs)
    with its model.onnx exported; read-only use (copy it to change it). Its params file is
    ``small_run.parent / "params.json"``."""
    from reidkit.app.export import export_run

    work = tmp_path_factory.mktemp("faults_small")
    params = tiny_params(faults_data, work / "runs", model_params={"backbone": "osnet_x0_25"})
    (work / "runs").mkdir()
    cfg = write_json(work / "runs" / "params.json", params)
    r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "small", cwd=work)
    assert r.rc == 0, r.err[-3000:]
    export_run(work / "runs" / "small", verbose=False)
    return work / "runs" / "small"
