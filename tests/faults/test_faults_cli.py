"""Bad input at the command line and faults of the environment: one line, exit 2; a bug is
one line with the path of its crash log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from fault_helpers import assert_one_line_error, run_cli, tiny_params, write_json

from reidkit.deploy.export import export_onnx
from reidkit.deploy.features_io import Features, save_features
from reidkit.models import ReidModel


def test_bad_params_files_are_one_line(faults_data: Path, tmp_path: Path):
    latin = tmp_path / "latin.json"
    latin.write_bytes(
        json.dumps(tiny_params(faults_data, tmp_path)).encode()[:-1] + b', "x": "\xe9"}'
    )
    cases = [
        (latin, "not UTF-8"),
        (
            write_json(tmp_path / "a.json", tiny_params(faults_data, tmp_path, batch_size=True)),
            "not true",
        ),
        (
            write_json(tmp_path / "b.json", tiny_params(faults_data, tmp_path, batch_size=1)),
            "batch_size",
        ),
    ]
    for path, needle in cases:
        assert_one_line_error(run_cli("train", "-c", str(path), cwd=tmp_path), needle)
    r = run_cli("train", "-c", str(cases[1][0]), "--no-such-flag", cwd=tmp_path)
    assert_one_line_error(r, "unrecognized arguments: --no-such-flag")


def test_environment_errors_are_one_line(trained_run: Path, tmp_path: Path):
    loop = tmp_path / "loop"
    os.symlink(tmp_path / "loop2", loop)
    os.symlink(loop, tmp_path / "loop2")
    r = run_cli("extract", str(trained_run), str(loop), "--out", str(tmp_path / "f.npz"))
    assert_one_line_error(r, "loop")
    (tmp_path / "file").write_text("x")
    r = run_cli("export", str(trained_run), "--out", str(tmp_path / "file" / "m.onnx"))
    assert_one_line_error(r, "file")


def test_onnx_metadata_that_disagrees_with_its_graph(tmp_path: Path):
    torch.manual_seed(0)
    path = tmp_path / "m.onnx"
    export_onnx(ReidModel("resnet18", 3).eval(), path, 32, 16, num_images=2)
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == "embedding_dim":
            p.value = "128"
    onnx.save(proto, str(tmp_path / "lie.onnx"))
    (tmp_path / "img").mkdir()
    from PIL import Image

    Image.new("RGB", (16, 32), (9, 9, 9)).save(tmp_path / "img" / "a.jpg")
    r = run_cli(
        "extract", str(tmp_path / "lie.onnx"), str(tmp_path / "img"), "--out", "f.npz", cwd=tmp_path
    )
    assert_one_line_error(r, "metadata disagrees with the graph", "embedding_dim 128")


def test_search_refuses_bad_features_and_k(tmp_path: Path):
    np.save(tmp_path / "f.npy", np.zeros((3, 4), np.float32))
    r = run_cli("search", "build", str(tmp_path / "f.npy"), "--index", str(tmp_path / "i"))
    assert_one_line_error(r, "f.npy")
    feats = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    save_features(
        Features(feats, [f"{i:04d}_c1s1_000001_00.jpg" for i in range(5)]), tmp_path / "g.npz"
    )
    assert (
        run_cli("search", "build", str(tmp_path / "g.npz"), "--index", str(tmp_path / "i")).rc == 0
    )
    feats[1, 2] = np.nan
    save_features(Features(feats[:2], ["q0.jpg", "q1.jpg"]), tmp_path / "q.npz")
    r = run_cli("search", "query", str(tmp_path / "i"), str(tmp_path / "q.npz"))
    assert_one_line_error(r, "NaN", "row 1")
    r = run_cli("search", "query", str(tmp_path / "i"), str(tmp_path / "g.npz"), "-k", "0")
    assert_one_line_error(r, "-k 0")


def test_overrides_after_options_and_the_schedule_warning(trained_run: Path, tmp_path: Path):
    cfg = trained_run / "config.json"
    r = run_cli(
        "eval",
        str(trained_run),
        "-c",
        str(cfg),
        "evaluation_params.ranks=[1,2]",
        "-o",
        "e.json",
        cwd=tmp_path,
    )
    assert r.rc == 0, r.err[-2000:]
    assert "rank2" in json.loads((tmp_path / "e.json").read_text())["metrics"]
    params = json.loads(cfg.read_text())
    params.update(epoch=4, working_dir=str(tmp_path / "runs"), sub_working_dir="w")
    params["lr"].update(decay_step=2, decay_unit="auto")
    r = run_cli("train", "-c", str(write_json(tmp_path / "p.json", params)), cwd=tmp_path)
    assert r.rc == 0, r.err[-2000:]
    assert "warning: the lr falls below 1e-3 of its peak" in r.out and "decay_unit" in r.out


def test_a_bug_is_one_line_with_a_crash_log(tmp_path: Path):
    code = (
        "import sys; from reidkit.app.boundary import run_guarded\n"
        "sys.exit(run_guarded(lambda: {}['missing'], ['demo']))"
    )
    env = {**os.environ, "REIDKIT_CRASH_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: internal error (KeyError") and "--debug" in line
    (log,) = tmp_path.glob("crash-*.log")
    assert str(log) in line and "Traceback" in log.read_text()
