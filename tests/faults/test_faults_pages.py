"""Pages and run folders from hostile or damaged files: file and folder names holding HTML are
escaped on every page (``report``, ``eval --report``, ``data check``); a damaged
``metrics.jsonl`` never stops ``report`` or ``runs``; a multi-frame GIF named ``.jpg``
among the query images is evaluated by its first frame."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
from fault_helpers import crash_dir, run_many
from PIL import Image

EVIL = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def _html_named_set(root: Path) -> Path:
    """A test-only folder-per-identity set whose folders and files are named with HTML, plus
    an exact duplicate and an unreadable file for ``data check`` to show."""
    rng = np.random.default_rng(0)
    for split, cam, count in (("query", 1, 1), ("gallery", 2, 3)):
        for ident in range(4):
            folder = root / split / f"{EVIL}{ident}"
            folder.mkdir(parents=True)
            for k in range(count):
                pixels = (rng.random((64, 32, 3)) * 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{EVIL}_c{cam}_{k}.jpg")
    first = root / "gallery" / f"{EVIL}0"
    shutil.copy(first / f"{EVIL}_c2_0.jpg", first / f"{EVIL}_c2_copy.jpg")
    (first / f"{EVIL}_c2_broken.jpg").write_bytes(b"not an image")
    return root


def _pages(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.rglob("*.html")]


def test_html_in_file_and_run_names_is_escaped_on_every_page(small_run: Path, tmp_path: Path):
    data = _html_named_set(tmp_path / "data")
    run = Path(shutil.copytree(small_run, tmp_path / f"run{EVIL}"))
    out = tmp_path / "out"
    jobs = [
        ("data", "check", str(data), "-o", str(out / "check"), "--no-labels"),
        ("report", str(run), "--queries", "3", "--topk", "3"),
        ("eval", str(run), "--data", str(data), "--report", "3", "-o", str(out / "e.json")),
    ]
    for job, r in zip(jobs, run_many(jobs, cwd=tmp_path), strict=True):
        assert r.rc == 0 and "Traceback" not in r.err, (job, r.err[-2000:])
    pages = _pages(out, run)
    assert {p.name for p in pages} == {"check.html", "report.html"} and len(pages) == 3
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert EVIL not in text and "onerror=alert(1)>" not in text, page
        assert ESCAPED in text, page
    check = json.loads((out / "check" / "check.json").read_text())
    assert check["summary"]["unreadable"] == 1 and check["summary"]["identical_in_split"] == 1


def _gif_frames() -> bytes:
    first, second = (Image.new("RGB", (32, 64), c) for c in ((200, 40, 40), (40, 40, 200)))
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=[second])
    return buf.getvalue()


DAMAGED = {
    "garbage": b'not json\n{"epoch": \n',
    "binary": b"\xff\xfe\x00\x80junk\n",
    "list": b"[1, 2, 3]\n",
    "odd_types": b'{"epoch": "one", "train": "x", "eval": [1], "best": 1}\n'
    b'{"epoch": 1, "train": {"total": "NaN", "lr": [1]}, "eval": {"mAP": "high"}, "best": true}\n',
    "non_finite": b'{"epoch": 1, "train": {"total": NaN, "lr": Infinity}, "eval": {}}\n',
}


def test_damaged_metrics_and_a_gif_named_jpg(small_run: Path, faults_data: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    good = (small_run / "metrics.jsonl").read_bytes()
    jobs = []
    for name, junk in DAMAGED.items():
        run = Path(shutil.copytree(small_run, runs / name))
        (run / "metrics.jsonl").write_bytes(junk + good[: len(good) // 2])  # and a cut line
        jobs.append(("report", str(run), "--queries", "2", "--topk", "2"))
    jobs.append(("runs", str(runs)))
    data = Path(shutil.copytree(faults_data, tmp_path / "data"))
    gif_named_jpg = sorted((data / "query").iterdir())[7]
    gif_named_jpg.write_bytes(_gif_frames())  # two frames, a .jpg name
    jobs.append(("eval", str(small_run), "--data", str(data), "-o", str(tmp_path / "e.json")))
    results = run_many(jobs, cwd=tmp_path)
    for job, r in zip(jobs, results, strict=True):
        assert r.rc == 0 and "error" not in r.err and "Traceback" not in r.err, (job, r.err)
    for name in DAMAGED:
        assert (runs / name / "report" / "report.html").is_file()
        assert name in results[len(DAMAGED)].out
    metrics = json.loads((tmp_path / "e.json").read_text())["metrics"]
    assert metrics["num_queries"] == len(list((data / "query").iterdir()))
    assert "cannot be decoded" not in results[-1].out + results[-1].err
    assert not crash_dir(tmp_path).exists()
