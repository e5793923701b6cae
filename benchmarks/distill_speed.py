"""The speed half of benchmarks/distill.py: the teacher's fp32 ONNX file against the distilled
student's fp32 and INT8 files (ONNX Runtime, OpenVINO), in one process, engines taking turns.

Every file is written by `reidkit export` (the accuracy gate included: an INT8 file that loses
more than --max-drop points on the run's own query / gallery is not written, and its row says
so). Timing reuses benchmarks/bench_infer.py's ``interleaved``: batch-1 latency and batch-32
throughput on the same random input, at the runs' input size, all engines on the same threads.

    .venv/bin/python benchmarks/distill_speed.py TEACHER_RUN STUDENT_RUN [--threads N]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_infer import interleaved  # noqa: E402

from reidkit.config import load_config  # noqa: E402
from reidkit.deploy.export import export_onnx  # noqa: E402
from reidkit.deploy.openvino_ir import compile_ir, read_ir  # noqa: E402
from reidkit.deploy.runtime import create_session  # noqa: E402
from reidkit.models import ReidModel  # noqa: E402


def export(run: Path, out: Path, *options: str) -> bool:
    """``reidkit export RUN --out OUT ...``; False when the accuracy gate refused the file."""
    if out.is_file():
        return True
    args = ["export", str(run), "--out", str(out), *options]
    print("$ reidkit " + shlex.join(args), flush=True)
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-m", "reidkit", *args], env=env)
    return done.returncode == 0 and out.is_file()


def reference_onnx(backbone: str, size: tuple[int, int], out: Path) -> Path:
    """An fp32 ONNX file of a random-weight ``backbone`` ReidModel at ``size``: the speed of
    the teacher one would distil from with a GPU (accuracy is not its point)."""
    path = out / f"reference_{backbone}_fp32.onnx"
    if not path.is_file():
        import torch

        torch.manual_seed(0)
        export_onnx(ReidModel(backbone, 751).eval(), path, size[0], size[1], num_images=2)
    return path


def _session(path: Path, threads: int | None) -> Callable[[np.ndarray], object]:
    session = create_session(path, None, threads)
    feed = session.get_inputs()[0].name
    return lambda x: session.run(None, {feed: x})


def engines(
    teacher: Path, student: Path, out: Path, threads: int | None, reference: str | None = None
) -> dict[str, Callable[[np.ndarray], object]]:
    """name -> run(batch) for every file that exists after export (refused ones left out);
    ``reference``: also a random-weight fp32 ONNX model of that backbone."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "teacher fp32, onnxruntime": (teacher, out / "teacher_fp32.onnx", []),
        "student fp32, onnxruntime": (student, out / "student_fp32.onnx", []),
        "student int8, onnxruntime": (student, out / "student_int8.onnx", ["--precision", "int8"]),
        "student int8, openvino": (
            student,
            out / "student_int8.xml",
            ["--precision", "int8", "--format", "openvino"],
        ),
    }
    runs: dict[str, Callable[[np.ndarray], object]] = {}
    for name, (run, path, options) in files.items():
        if not export(run, path, *options):
            print(f"{name}: not exported (see the export's message above)", flush=True)
            continue
        if path.suffix == ".onnx":
            runs[name] = _session(path, threads)
        else:
            runs[name] = compile_ir(read_ir(path)[0], "int8", threads)
    if reference:
        cfg = load_config(student / "config.json", check_files=False)
        path = reference_onnx(reference, (cfg.img_h, cfg.img_w), out)
        runs[f"reference {reference} fp32 (random weights), onnxruntime"] = _session(path, threads)
    return runs


def speed_table(
    teacher: Path,
    student: Path,
    work: Path,
    threads: int | None = None,
    repeats: int = 10,
    reference: str | None = "resnet50",
) -> None:
    """Time every engine interleaved and print the table with each one's ratio to the
    teacher's fp32 ONNX file."""
    cfg = load_config(student / "config.json", check_files=False)
    tcfg = load_config(teacher / "config.json", check_files=False)
    runs = engines(teacher, student, work / "speed", threads, reference)
    rng = np.random.default_rng(0)
    student_size = (cfg.img_h, cfg.img_w)
    shapes = {"teacher": (tcfg.img_h, tcfg.img_w), "student": student_size}
    shapes["reference"] = student_size
    inputs = {
        (n, b): rng.standard_normal((b, 3, *shapes[n.split()[0]]), dtype=np.float32)
        for n in runs
        for b in (1, 32)
    }
    times1: dict[str, list[float]] = {n: [] for n in runs}
    times32: dict[str, list[float]] = {n: [] for n in runs}
    for _ in range(repeats):  # each round: every engine once at batch 32, five times at 1
        for n, fn in runs.items():
            t32 = interleaved({n: fn}, inputs[(n, 32)], 1, 1, lambda: None)[n]
            t1 = interleaved({n: fn}, inputs[(n, 1)], 1, 5, lambda: None)[n]
            times32[n] += t32
            times1[n] += t1
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nCPU inference, {os.cpu_count()} CPUs, threads {threads or 'default'}, load {load}")
    print("| model | input | batch 1 p50 ms | batch 32 img/s | vs teacher fp32 |")
    print("| --- | --- | ---: | ---: | ---: |")
    base = None
    for n in runs:
        ips = 32 / statistics.median(times32[n])
        base = base or (ips if n.startswith("teacher") else None)
        ratio = f"{ips / base:.1f}x" if base else "-"
        p50 = 1000 * statistics.median(times1[n])
        h, w = shapes[n.split()[0]]
        print(f"| {n} | {h}x{w} | {p50:.1f} | {ips:.1f} | {ratio} |")


def main() -> None:
    """Command line: two run folders."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("student", type=Path)
    parser.add_argument("--work", type=Path, help="where the exported files go (default: beside)")
    parser.add_argument("--threads", type=int, help="CPU threads of every engine")
    parser.add_argument("--repeats", type=int, default=10, help="rounds of timing")
    parser.add_argument(
        "--reference", default="resnet50", help="also time this backbone (random weights); ''"
    )
    args = parser.parse_args()
    work = args.work or args.student.parent
    speed_table(
        args.teacher.resolve(),
        args.student.resolve(),
        work.resolve(),
        args.threads,
        args.repeats,
        args.reference or None,
    )


if __name__ == "__main__":
    main()
