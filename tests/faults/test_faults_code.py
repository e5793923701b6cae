"""Files we read never choose code: checkpoints, run folders and their config.json name
built-in evaluators only; plugin names are identifiers; the user names plugins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fault_helpers import assert_one_line_error, run_cli, snapshot, tiny_params, write_json

EVIL = "from pathlib import Path\nPath({marker!r}).write_text('ran')\n" + (
    "DEFAULT_METRIC = 'x'\ndef run_eval(config, model):\n    return {{'x': 1.0}}\n"
)


def _plant(folder: Path, marker: Path) -> None:
    (folder / "evaluate").mkdir(parents=True, exist_ok=True)
    (folder / "evaluate" / "evil.py").write_text(EVIL.format(marker=str(marker)))


def test_eval_of_a_downloaded_run_never_imports_what_it_names(trained_run: Path, tmp_path):
    """The run's stored config names evaluator 'evil' with search_dirs, and evaluate/evil.py
    sits in the run folder, in the search dir and in the current folder: none is imported."""
    run = Path(shutil.copytree(trained_run, tmp_path / "downloaded"))
    marker = tmp_path / "marker"
    for folder in (run, tmp_path / "elsewhere", tmp_path):
        _plant(folder, marker)
    cfg = json.loads((run / "config.json").read_text())
    cfg["evaluation_params"].update(type="evil", search_dirs=[str(tmp_path / "elsewhere")])
    write_json(run / "config.json", cfg)
    before = snapshot(run / "evaluate")
    for target, cwd in ((str(run), tmp_path), (".", run), (str(run / "best.pth"), tmp_path)):
        r = run_cli("eval", target, "-o", str(tmp_path / "eval.json"), cwd=cwd)
        assert r.rc == 0, r.err[-2000:]
        assert "Traceback" not in r.err and "mAP" in r.out
        assert not marker.exists(), f"eval {target} imported evaluate/evil.py"
    assert snapshot(run / "evaluate") == before


def test_plugin_names_with_paths_are_refused_before_anything_runs(faults_data: Path, tmp_path):
    marker = tmp_path / "marker"
    _plant(tmp_path / "x", marker)
    for name in ("../x/evaluate/evil", "x/evaluate/evil.py", "evil.py"):
        params = tiny_params(faults_data, tmp_path / "runs")
        params["evaluation_params"] = {"type": name, "metric": "x"}
        cfg = write_json(tmp_path / "p.json", params)
        r = run_cli("train", "-c", str(cfg), "--sub-working-dir", "r", cwd=tmp_path / "x")
        assert_one_line_error(r, "evaluation_params.type", "not a valid evaluator name")
        assert not marker.exists() and not (tmp_path / "runs").exists()


def test_the_user_names_a_plugin_on_the_command_line(trained_run: Path, tmp_path):
    marker = tmp_path / "marker"
    _plant(tmp_path, marker)
    out = tmp_path / "e.json"
    r = run_cli("eval", str(trained_run), "--evaluator", "evil", "-o", str(out), cwd=tmp_path)
    assert r.rc == 0, r.err[-2000:]
    assert marker.exists() and json.loads(out.read_text())["metrics"] == {"x": 1.0}
