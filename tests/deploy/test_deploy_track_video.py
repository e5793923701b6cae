"""examples/track_video.py on OpenCV's vtest.avi (frames 1-399 only): HOG boxes of two streams
embedded by ``embed_frames`` in one call per step, tracks and identities written to CSV."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_helpers import IMG_H, IMG_W

from reidkit.deploy.artefact import ExportSpec, export_artefact

ROOT = Path(__file__).resolve().parents[2]
VTEST = Path("usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _download(cache: Path) -> str:
    """Fetch Debian's opencv-doc and unpack it into ``cache``; '' or the reason it failed."""
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["apt-get", "download", "opencv-doc"],
            cwd=cache,
            check=True,
            capture_output=True,
            timeout=600,
        )
        deb = next(cache.glob("opencv-doc_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(cache)], check=True, capture_output=True)
        deb.unlink()
    except (OSError, subprocess.SubprocessError, StopIteration) as e:
        return f"{type(e).__name__}: {e}"
    return ""


@pytest.fixture(scope="session")
def vtest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vtest.avi: $REIDKIT_VTEST, the installed opencv-doc, or downloaded once into the cache."""
    from filelock import FileLock

    cache = Path(os.environ.get("REIDKIT_CACHE", Path.home() / ".cache" / "reidkit")) / "opencv-doc"
    candidates = [os.environ.get("REIDKIT_VTEST"), Path("/") / VTEST, cache / VTEST]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache.parent / "opencv-doc.lock")):
        reason = "" if (cache / VTEST).is_file() else _download(cache)
    if not (cache / VTEST).is_file():
        pytest.skip(f"vtest.avi is not available (apt-get download opencv-doc failed: {reason})")
    return cache / VTEST


def test_track_video_example(vtest, small_model, tmp_path, capsys, monkeypatch):
    pytest.importorskip("cv2", reason="the example needs opencv-python-headless (reidkit[video])")
    model = tmp_path / "m.onnx"
    export_artefact(small_model, model, IMG_H, IMG_W, ExportSpec(), num_images=2, verbose=False)
    spec = importlib.util.spec_from_file_location("track_video", ROOT / "examples/track_video.py")
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "track_video", example)  # dataclasses look it up
    spec.loader.exec_module(example)
    out = tmp_path / "tracks.csv"
    argv = [str(model), "--video", str(vtest), "--streams", "2", "--frames", "3", "--csv", str(out)]
    assert example.main(argv) == 0
    text = capsys.readouterr().out
    assert "3 steps x 2 streams" in text and "not calibrated" in text
    rows = list(csv.DictReader(out.open()))
    assert rows and {r["stream"] for r in rows} == {"0", "1"}
    for r in rows:  # HOG boxes lie inside the 768x576 frames and every box got a track
        assert 0 <= int(r["x1"]) < int(r["x2"]) <= 768 and 0 <= int(r["y1"]) < int(r["y2"]) <= 576
        assert r["valid"] == "1" and int(r["track"]) >= 0
    with pytest.raises(SystemExit, match="at most 399"):
        example.main([str(model), "--video", str(vtest), "--streams", "2", "--frames", "200"])
