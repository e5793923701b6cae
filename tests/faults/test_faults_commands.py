"""The commands added since the first fault suite (export int8 / openvino, calibrate, adapt,
crops, data check, report, import, search, extract) against missing, empty and corrupt
inputs and checkpoints: each ends in one ``error:`` line naming the file, exit 2, no crash
log, and writes nothing (the output folder never appears; no pickle ever runs)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from fault_helpers import assert_cases, crash_dir, run_many

EVIL_MARKER = "pwned"


class _Evil:
    """A pickle that would run a command when loaded without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _bad_checkpoints(folder: Path, small_run: Path) -> list[tuple[Path, str]]:
    """(target, what the error line says) for checkpoints that cannot be used."""
    folder.mkdir()
    (folder / "empty_run").mkdir()
    (folder / "empty_run" / "best.pth").write_bytes(b"")
    (folder / "cut_run").mkdir()
    data = (small_run / "best.pth").read_bytes()
    (folder / "cut_run" / "best.pth").write_bytes(data[: len(data) // 2])
    (folder / "noise.pth").write_bytes(os.urandom(4000))
    torch.save([1, 2, 3], folder / "list.pth")
    torch.save({"model": _Evil(folder / EVIL_MARKER)}, folder / "evil.pth")
    return [
        (folder / "missing_run", "no such run folder"),
        (folder / "empty_run", "best.pth: not a readable reidkit checkpoint (empty, truncated"),
        (folder / "cut_run", "best.pth: not a readable reidkit checkpoint (empty, truncated"),
        (folder / "noise.pth", "noise.pth: not a readable reidkit checkpoint"),
        (folder / "list.pth", "list.pth: not a reidkit checkpoint"),
        (folder / "evil.pth", "evil.pth: not a readable reidkit checkpoint (it names posix.system"),
    ]


def test_bad_checkpoints_are_one_line_for_every_command(small_run, faults_data, tmp_path):
    out = tmp_path / "out"
    query, o = str(faults_data / "query"), str(out)
    verbs = {
        "export": lambda t: ("export", t, "--out", o + "/m.onnx"),
        "int8": lambda t: ("export", t, "--precision", "int8", "--out", o + "/q.onnx"),
        "openvino": lambda t: ("export", t, "--format", "openvino", "--out", o + "/m.xml"),
        "calibrate": lambda t: ("calibrate", t),
        "extract": lambda t: ("extract", t, query, "--out", o + "/f.npz"),
        "report": lambda t: ("report", t),
        "eval": lambda t: ("eval", t, "-o", o + "/e.json"),
        "adapt": lambda t: ("adapt", "--from", t, "--unlabeled", query),
        "check": lambda t: ("data", "check", str(faults_data), "--model", t, "-o", o),
        "search": lambda t: ("search", "query", str(small_run), query, "--model", t),
    }
    cases = []
    for target, needle in _bad_checkpoints(tmp_path / "bad", small_run):
        for name, verb in verbs.items():
            if name == "search":  # the index is checked first (a run folder is not one)
                cases.append((verb(str(target)), f"{small_run}: not a readable reidkit index"))
            elif name == "report" and (target.suffix == ".pth" or not target.exists()):
                cases.append((verb(str(target)), f"{target}: not a run folder"))
            else:
                cases.append((verb(str(target)), str(target), needle))
    cases.append(
        (("import", "torchreid:osnet_x0_25", str(tmp_path / "bad" / "evil.pth"), "--out",
          str(out / "imp")), "evil.pth: cannot be read", "posix.system")
    )  # fmt: skip
    assert_cases(run_many([c[0] for c in cases], cwd=tmp_path), cases)
    assert not (tmp_path / "bad" / EVIL_MARKER).exists(), "a checkpoint ran code"
    assert not out.exists() and not crash_dir(tmp_path).exists()


def _inputs(root: Path) -> dict[str, Path]:
    """Missing, empty and corrupt input files and folders of every kind."""
    root.mkdir()
    (root / "empty_dir").mkdir()
    (root / "text_only").mkdir()
    (root / "text_only" / "readme.txt").write_text("no images here")
    (root / "noise_imgs").mkdir()
    for i in range(40):  # more than adapt's minimum, so its decoder is what refuses them
        (root / "noise_imgs" / f"{i + 1:04d}_c1s1_000001_00.jpg").write_bytes(os.urandom(600))
    files = {
        "noise.onnx": os.urandom(3000),
        "empty.onnx": b"",
        "empty.npz": b"",
        "noise.avi": os.urandom(3000),
        "empty.avi": b"",
        "mot.txt": b"frame,id,x\nnot numbers\n",
        "list.txt": b"gone1.jpg\ngone2.jpg\n",
        "pairs_empty.txt": b"",
        "pairs_bad.txt": b"a b c d e f\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return {p.name: p for p in root.iterdir()} | {"missing": root / "missing"}


def test_missing_empty_and_corrupt_inputs_are_one_line(small_run, faults_data, tmp_path):
    i, out, run = _inputs(tmp_path / "in"), tmp_path / "out", str(small_run)
    onnx, query, ckpt = str(small_run / "model.onnx"), str(faults_data / "query"), run + "/best.pth"

    def extract(model: object, images: object) -> tuple[str, ...]:
        return ("extract", str(model), str(images), "--out", str(out / "f.npz"))

    def export(*args: str, to: str = "m.onnx") -> tuple[str, ...]:
        return ("export", run, *args, "--out", str(out / to))

    def imp(source: str, checkpoint: object) -> tuple[str, ...]:
        return ("import", source, str(checkpoint), "--out", str(out / "i"))

    def crops(video: object, *args: str) -> tuple[str, ...]:
        return ("crops", str(video), *args, "--out", str(out / "c"))

    def adapt(unlabeled: object, *args: str) -> tuple[str, ...]:
        return ("adapt", "--from", run, "--unlabeled", str(unlabeled), *args)

    def check(root: object) -> tuple[str, ...]:
        return ("data", "check", str(root), "-o", str(out), "--no-labels")

    osnet = "torchreid:osnet_x0_25"
    cases = [
        (extract(onnx, i["missing"]), "missing: no such image folder"),
        (extract(onnx, i["empty_dir"]), "empty_dir: no image files"),
        (extract(onnx, i["text_only"]), "text_only: no image files"),
        (extract(onnx, i["noise_imgs"]), "0001_c1s1_000001_00.jpg: not a readable image"),
        (extract(onnx, i["list.txt"]), "list.txt:1: listed image 'gone1.jpg' not found"),
        (extract(i["noise.onnx"], query), "noise.onnx: not a valid ONNX file"),
        (extract(i["empty.onnx"], query), "empty.onnx: not a valid ONNX file"),
        (extract(i["missing"], query), "missing: no such run folder"),
        (("search", "build", str(i["empty.npz"]), "--index", str(out / "x")), "empty.npz: not a"),
        (("search", "build", str(i["missing"]), "--index", str(out / "x")), "missing: features"),
        (("search", "query", str(i["missing"]), query), "missing: not a readable reidkit index"),
        (("search", "query", str(i["empty_dir"]), query), "empty_dir: not a readable reidkit"),
        (("calibrate", run, "--pairs", str(i["missing"])), "missing: pairs file not found"),
        (("calibrate", run, "--pairs", str(i["pairs_empty.txt"])), "pairs_empty.txt: empty"),
        (("calibrate", run, "--pairs", str(i["pairs_bad.txt"])), "pairs_bad.txt: line 1"),
        (export("--images", str(i["missing"])), "missing: image folder not found"),
        (export("--images", str(i["noise_imgs"]), "--format", "openvino", to="m.xml"), "not a"),
        (export("--precision", "int8", "--calib-images", "0"), "INT8 calibration needs"),
        (imp("torchreid:no_such_net", ckpt), "not an architecture reidkit imports"),
        (imp(osnet, i["empty.onnx"]), "empty.onnx: cannot be read"),
        (imp(osnet, i["missing"]), "missing: checkpoint file not found"),
        (imp(osnet, i["empty_dir"]), "empty_dir: is a folder"),
        (crops(i["missing"]), "missing: video file not found"),
        (crops(i["empty.avi"]), "empty.avi: OpenCV cannot open"),
        (crops(i["noise.avi"]), "noise.avi: OpenCV cannot open"),
        (crops(i["noise.avi"], "--mot", str(i["mot.txt"])), "mot.txt:1:"),
        (crops(i["noise.avi"], "--mot", str(i["missing"])), "missing: MOT file not found"),
        (check(i["missing"]), "missing: no such dataset"),
        (check(i["empty_dir"]), "empty_dir: cannot detect the dataset layout"),
        (check(i["noise_imgs"]), "noise_imgs: cannot detect"),
        (adapt(i["missing"]), "adapt.unlabeled", "no such folder"),
        (adapt(i["empty_dir"]), "empty_dir: no images in the unlabeled folder"),
        (adapt(i["text_only"]), "text_only: no images"),
        (adapt(i["noise_imgs"]), "noise_imgs: the train split has no decodable images"),
        (adapt(query, "--eval-data", str(i["empty_dir"])), "empty_dir: cannot detect"),
        (("report", str(i["empty_dir"])), "empty_dir: run folder has no best.pth"),
        (("report", run, "--queries", "0"), "--queries 0"),
    ]
    results = run_many([c[0] for c in cases], cwd=tmp_path)
    assert_cases(results, cases)
    assert not out.exists() and not crash_dir(tmp_path).exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".") and "tmp" in p.name]
