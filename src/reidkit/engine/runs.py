"""``reidkit runs``: the runs under a working_dir and how far each got."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reidkit.engine.runlog import read_records, summary_table
from reidkit.utils.errors import ReidkitError, first_line


def list_runs(working_dir: str | Path) -> list[dict[str, Any]]:
    """One dict per run folder (a folder with config.json) below ``working_dir``."""
    root = Path(working_dir)
    if not root.is_dir():
        raise ReidkitError(f"{root}: no such working_dir")
    runs = []
    for cfg_path in sorted(root.rglob("config.json")):
        run = cfg_path.parent
        name = str(run.relative_to(root)) if run != root else "."
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            if not isinstance(cfg, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:  # one damaged run must not hide the others
            runs.append({"run": name, "problem": f"unreadable config.json ({first_line(e)})"})
            continue
        records = read_records(run / "metrics.jsonl")
        try:
            runs.append({"run": name, **_summary(cfg, records)})
        except (AttributeError, TypeError, ValueError) as e:  # a config.json with odd values
            runs.append({"run": name, "problem": f"unreadable config.json ({first_line(e)})"})
    return runs


def _summary(cfg: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Epochs done, backbone, best metric and its epoch of one run."""
    ev = cfg.get("evaluation_params") or {}
    metric = ev.get("metric") or ("top1" if ev.get("type") == "classification_evaluate" else "mAP")
    best = [r for r in records if r["best"] and r["eval"]]
    return {
        "epochs": f"{records[-1]['epoch'] if records else 0}/{cfg.get('epoch')}",
        "backbone": str((cfg.get("model_params") or {}).get("backbone", "?")),
        "metric": str(metric),
        "best": best[-1]["eval"].get(metric) if best else None,
        "best_epoch": best[-1]["epoch"] if best else None,
    }


def runs_table(runs: list[dict[str, Any]]) -> str:
    """A plain table of ``list_runs`` output."""
    if not runs:
        return "no runs found"
    header = f"{'run':<30} {'epochs':>9} {'backbone':<14} {'best':>16} {'at':>4}"
    lines = [header, "-" * len(header)]
    for r in runs:
        if "problem" in r:
            lines.append(f"{r['run']:<30} {r['problem']}")
            continue
        best = f"{r['metric']} {r['best']:.4f}" if isinstance(r["best"], float) else "-"
        at = str(r["best_epoch"] or "-")
        lines.append(f"{r['run']:<30} {r['epochs']:>9} {r['backbone']:<14} {best:>16} {at:>4}")
    return "\n".join(lines)


__all__ = ["list_runs", "runs_table", "summary_table"]
