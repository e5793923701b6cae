"""ONNX files whose external data points outside their folder (``../``, an absolute path, a
symbolic link out) are refused in one line by every command that opens one, before anything
reads the named file; external data beside the model still loads.

"Never read" is observed, not assumed: each outside location is a FIFO, and a watcher thread
notices the moment anything opens it for reading (a non-blocking open for writing succeeds
only while a reader has it open)."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import numpy as np
import onnx
from fault_helpers import assert_cases, crash_dir, run_many

from reidkit.deploy.features_io import Features, save_features


class FifoWatch:
    """Watch FIFOs for readers until ``stop()``; ``opened`` lists those that were opened."""

    def __init__(self, fifos: list[Path]) -> None:
        self.fifos, self.opened = fifos, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for fifo in self.fifos:
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError as e:
                    assert e.errno == errno.ENXIO, e  # no reader: as it must be
                    continue
                self.opened.append(fifo.name)
                os.close(fd)  # the reader sees end of file and fails on its own
            time.sleep(0.002)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return self.opened


def _with_location(src: Path, dst: Path, location: str) -> Path:
    """A copy of external-data model ``src`` whose first external tensor reads ``location``."""
    proto = onnx.load(str(src), load_external_data=False)
    tensor = next(t for t in proto.graph.initializer if t.external_data)
    for entry in tensor.external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(proto, str(dst))
    return dst


def test_external_data_outside_the_model_folder_is_refused_unread(small_run, faults_data, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    proto = onnx.load(str(small_run / "model.onnx"))
    good = models / "good.onnx"
    onnx.save(proto, str(good), save_as_external_data=True, location="good.bin", size_threshold=0)
    outside = [tmp_path / "secret_rel", tmp_path / "secret_abs", tmp_path / "secret_link"]
    for fifo in outside:
        os.mkfifo(fifo)
    os.symlink(outside[2], models / "link.bin")
    bad = [
        _with_location(good, models / "rel.onnx", "../secret_rel"),
        _with_location(good, models / "abs.onnx", str(outside[1])),
        _with_location(good, models / "link.onnx", "link.bin"),
    ]
    feats = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)
    save_features(
        Features(feats, [f"{i:04d}_c1s1_000001_00.jpg" for i in range(4)]), tmp_path / "g.npz"
    )
    query = str(faults_data / "query")
    jobs = [("search", "build", str(tmp_path / "g.npz"), "--index", str(tmp_path / "index"))]
    jobs.append(("extract", str(good), query, "--out", str(tmp_path / "good.npz")))
    cases = []
    params, index, out = str(small_run / "config.json"), str(tmp_path / "index"), str(tmp_path)
    for model, why in zip(bad, ("'../secret_rel'", str(outside[1]), "a link to"), strict=True):
        needles = (f"{model}: tensor", "outside the model's folder; refused", why)
        cases += [
            (("extract", str(model), query, "--out", out + "/x.npz"), *needles),
            (("eval", str(model), "-c", params, "-o", out + "/e.json"), *needles),
            (("search", "query", index, query, "--model", str(model)), *needles),
        ]
    watch = FifoWatch(outside)
    results = run_many(jobs + [c[0] for c in cases], cwd=tmp_path)
    assert watch.stop() == [], "a refused model's external data was opened"
    assert all(r.rc == 0 for r in results[: len(jobs)]), [r.err[-500:] for r in results[:2]]
    assert (tmp_path / "good.npz").is_file()  # external data beside the model loads
    assert_cases(results[len(jobs) :], cases)
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "e.json").exists()
    assert not crash_dir(tmp_path).exists()
