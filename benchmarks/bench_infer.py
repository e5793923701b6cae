"""Benchmark: deployment speed. Every backend x precision side by side, and exact vs faiss search.

Part 1 (inference): ResNet-50 and OSNet-x1.0 ReidModels (BNNeck, random weights) at 256x128 on
five engines: PyTorch eager, onnxruntime fp32 and INT8 (static QDQ, ``reidkit.deploy.quantize``),
OpenVINO fp32 and INT8 (nncf). Each artefact is made by reidkit's own export code (fp32 files
parity-checked against PyTorch; INT8 calibrated on ``--calib`` synthetic person images).
The engines run in one process, interleaved round by round on the same input, so load from
other processes on a shared machine hits all of them alike: batch-1 latency (p50 / p99 of
``--latency-runs`` calls) and batch-32 throughput (median of ``--repeats`` runs), plus each
engine's ratio to onnxruntime fp32. All engines get the same ``--threads`` (default: all
cores); OpenVINO is asked for f32 inference precision (its bf16 default would not be fp32).

Part 2 (search): a synthetic gallery of N x 512 L2-normalised embeddings (identity centres plus
noise) and Q queries. Exact search (``GalleryIndex('exact')``: the evaluator's distances in
torch) gives the ground truth; faiss IVF-PQ (``nlist`` lists, 64 bytes per vector) is timed at a
few ``nprobe`` values: queries/s and recall@10 against the exact top-10.

    .venv/bin/python benchmarks/bench_infer.py --skip-search          # CPU, every engine
    .venv/bin/python benchmarks/bench_infer.py --quick --skip-infer   # 100k gallery search
    python3 benchmarks/bench_infer.py --device cuda --engines eager,ort-fp32   # GPU machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from reidkit.deploy.export import export_onnx  # noqa: E402
from reidkit.deploy.onnx_meta import OnnxModelInfo  # noqa: E402
from reidkit.deploy.parity import wrapper_for  # noqa: E402
from reidkit.deploy.quantize import calibration_batches, quantize_ir, quantize_onnx  # noqa: E402
from reidkit.deploy.runtime import create_session  # noqa: E402
from reidkit.models import ReidModel  # noqa: E402

IMG_H, IMG_W = 256, 128
ENGINES = ("eager", "ort-fp32", "ort-int8", "ov-fp32", "ov-int8")


def calibration_images(count: int, folder: Path) -> list[np.ndarray]:
    """Synthetic person images at 256x128 (reidkit's generator), HWC uint8 RGB."""
    from PIL import Image

    from reidkit.data.synthetic import generate_synthetic

    generate_synthetic(
        folder,
        num_ids=max(2, count // 4),
        num_cameras=2,
        img_h=IMG_H,
        img_w=IMG_W,
        images_per_id=4,
        num_test_ids=2,
    )
    files = sorted((folder / "bounding_box_train").glob("*.jpg"))[:count]
    return [np.array(Image.open(f).convert("RGB")) for f in files]


def build_engines(
    name: str,
    engines: list[str],
    tmp: Path,
    calib: list[np.ndarray],
    threads: int | None,
    device: str,
) -> dict[str, Callable[[np.ndarray], object]]:
    """One ``run(batch)`` per requested engine, all over the same random-weight model."""
    torch.manual_seed(0)
    model = ReidModel(name, 751).eval()
    info = OnnxModelInfo(input_format="float-nchw", img_h=IMG_H, img_w=IMG_W, embedding_dim=2048)
    runs: dict[str, Callable[[np.ndarray], object]] = {}
    dev = torch.device(device)
    if "eager" in engines:
        eager_model = model.to(dev)

        def eager(x: np.ndarray) -> object:
            with torch.inference_mode():
                out = eager_model(torch.from_numpy(x).to(dev))
                return out.cpu() if dev.type == "cuda" else out

        runs["eager"] = eager
    onnx_path = tmp / f"{name}.onnx"
    if any(e.startswith("ort") for e in engines):
        report = export_onnx(model.cpu(), onnx_path, IMG_H, IMG_W, num_images=4)
        print(f"  {name}: {report.summary()}", flush=True)
    providers = "cuda" if device == "cuda" else None
    if "ort-fp32" in engines:
        runs["ort-fp32"] = _ort(create_session(onnx_path, providers, threads))
    if "ort-int8" in engines:
        int8 = tmp / f"{name}_int8.onnx"
        quantize_onnx(onnx_path, int8, calibration_batches(calib, info), "images")
        runs["ort-int8"] = _ort(create_session(int8, providers, threads))
    if any(e.startswith("ov") for e in engines):
        runs.update(_openvino(model.cpu(), info, engines, calib, threads))
    return {e: runs[e] for e in engines if e in runs}


def _ort(session) -> Callable[[np.ndarray], object]:  # noqa: ANN001
    return lambda x: session.run(None, {"images": x})


def _openvino(model, info, engines, calib, threads) -> dict:  # noqa: ANN001
    from reidkit.deploy.openvino_ir import compile_ir, convert_wrapper

    wrapper = wrapper_for(model, info)
    ov_model = convert_wrapper(wrapper, wrapper.example_input(2, torch.Generator()), info)
    out = {}
    if "ov-fp32" in engines:
        out["ov-fp32"] = compile_ir(ov_model, "fp32", threads)
    if "ov-int8" in engines:
        q = quantize_ir(ov_model, calibration_batches(calib, info, batch_size=1))
        out["ov-int8"] = compile_ir(q, "int8", threads)
    return out


def interleaved(
    runs: dict[str, Callable], x: np.ndarray, rounds: int, calls: int, sync: Callable
) -> dict[str, list[float]]:
    """Seconds per call of each engine, engines taking turns (``calls`` each per round)."""
    times: dict[str, list[float]] = {e: [] for e in runs}
    for fn in runs.values():  # warm-up: allocation, kernel selection
        fn(x), fn(x)
    sync()
    for _ in range(rounds):
        for e, fn in runs.items():
            for _ in range(calls):
                start = time.perf_counter()
                fn(x)
                sync()
                times[e].append(time.perf_counter() - start)
    return times


def bench_model(name: str, args: argparse.Namespace, tmp: Path, calib: list) -> list[dict]:
    """Rows of one backbone: each engine's batch-1 latency and batch-32 throughput."""
    runs = build_engines(name, args.engines, tmp, calib, args.threads, args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, 3, IMG_H, IMG_W), dtype=np.float32)
    x32 = rng.standard_normal((32, 3, IMG_H, IMG_W), dtype=np.float32)
    lat = interleaved(runs, x1, args.latency_runs // 5, 5, sync)
    thr = interleaved(runs, x32, args.repeats, 1, sync)
    rows = []
    for e in runs:
        ms = np.asarray(lat[e]) * 1000
        rows.append(
            {
                "model": name,
                "engine": e,
                "p50": float(np.percentile(ms, 50)),
                "p99": float(np.percentile(ms, 99)),
                "ips": 32 / statistics.median(thr[e]),
            }
        )
        print(
            f"    {e:9s} p50 {rows[-1]['p50']:8.1f} ms  p99 {rows[-1]['p99']:8.1f} ms  "
            f"batch 32 {rows[-1]['ips']:7.1f} img/s",
            flush=True,
        )
    return rows


def print_inference_table(rows: list[dict], args: argparse.Namespace, loads: list[str]) -> None:
    import onnxruntime

    try:
        import openvino

        ov_version = openvino.__version__.split("-")[0]
    except ImportError:
        ov_version = "absent"
    vnni = (
        "avx512_vnni" in Path("/proc/cpuinfo").read_text()
        if Path("/proc/cpuinfo").exists()
        else "?"
    )
    print(
        f"\nInference at {IMG_H}x{IMG_W}, device {args.device}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, openvino {ov_version}, threads "
        f"{args.threads or 'default'}, {os.cpu_count()} CPUs (avx512_vnni: {vnni}), load "
        f"average before / after: {loads[0]} / {loads[1]}"
    )
    print("| model | engine | batch 1 p50 ms | batch 1 p99 ms | batch 32 img/s | vs ort-fp32 |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        base = next(
            (b["ips"] for b in rows if b["model"] == r["model"] and b["engine"] == "ort-fp32"), None
        )
        ratio = f"{r['ips'] / base:.2f}x" if base else "-"
        print(
            f"| {r['model']} | {r['engine']} | {r['p50']:.1f} | {r['p99']:.1f} | "
            f"{r['ips']:.1f} | {ratio} |"
        )


def synthetic_gallery(n: int, q: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm gallery / query embeddings: identity centres plus per-image noise."""
    rng = np.random.default_rng(seed)
    ids = max(1, n // 20)
    centres = rng.standard_normal((ids, dim), dtype=np.float32)
    gallery = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        e = min(n, s + step)
        gallery[s:e] = centres[rng.integers(0, ids, e - s)]
        gallery[s:e] += 0.8 * rng.standard_normal((e - s, dim), dtype=np.float32)
    queries = centres[rng.integers(0, ids, q)]
    queries += 0.8 * rng.standard_normal((q, dim), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return gallery, queries


def bench_search(n: int, q: int, nlist: int, nprobes: list[int], max_train: int) -> None:
    """Exact vs IVF-PQ: queries/s and recall@10 (ground truth: exact top-10)."""
    from reidkit.deploy.features_io import Features
    from reidkit.deploy.index import GalleryIndex

    dim = 512
    t0 = time.perf_counter()
    gallery, queries = synthetic_gallery(n, q, dim, 0)
    feats = Features(gallery, [str(i) for i in range(n)])
    print(f"\nSearch: gallery {n} x {dim}, {q} queries (made in {time.perf_counter() - t0:.1f}s)")
    exact = GalleryIndex(dim, "exact")
    exact.add(feats)
    start = time.perf_counter()
    _, truth = exact.search(queries, 10)
    t_exact = time.perf_counter() - start
    try:
        import faiss  # noqa: F401
    except ImportError:
        print("faiss is not installed: IVF-PQ skipped (pip install 'reidkit[faiss]')")
        print(f"| exact (torch) | - | {q / t_exact:.1f} | 1.000 |")
        return
    start = time.perf_counter()
    pq = GalleryIndex(dim, "ivfpq", nlist=nlist, m=64, max_train=max_train)
    pq.add(feats)
    t_build = time.perf_counter() - start
    print(f"IVF-PQ build (train on {min(n, max_train)} + add {n}): {t_build:.1f}s")
    print("| method | nprobe | queries/s | recall@10 |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| exact (torch) | - | {q / t_exact:.1f} | 1.000 |")
    for nprobe in nprobes:
        start = time.perf_counter()
        _, idx = pq.search(queries, 10, nprobe=nprobe)
        t = time.perf_counter() - start
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, truth, strict=True)])
        print(f"| faiss IVF-PQ (nlist {pq.nlist}, m 64) | {nprobe} | {q / t:.1f} | {recall:.3f} |")


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="fewer runs, 100k gallery")
    parser.add_argument("--models", default="resnet50,osnet_x1_0")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"subset of {ENGINES}")
    parser.add_argument("--repeats", type=int, default=0, help="batch-32 rounds (default 10/4)")
    parser.add_argument("--latency-runs", type=int, default=0, help="batch-1 calls (100/30)")
    parser.add_argument("--calib", type=int, default=64, help="INT8 calibration images")
    parser.add_argument("--gallery", type=int, default=0, help="gallery size (default 1M)")
    parser.add_argument("--queries", type=int, default=0, help="queries (default 1000)")
    parser.add_argument("--threads", type=int, help="CPU threads of every engine")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-infer", action="store_true")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible")
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown:
        sys.exit(f"--engines: unknown {unknown}; choose from {ENGINES}")
    args.repeats = args.repeats or (4 if args.quick else 10)
    args.latency_runs = max(5, args.latency_runs or (30 if args.quick else 100))
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_infer:
        rows, before = [], _load()
        with tempfile.TemporaryDirectory() as tmp:
            calib = calibration_images(args.calib, Path(tmp) / "calib")
            for name in args.models.split(","):
                rows += bench_model(name, args, Path(tmp), calib)
        print_inference_table(rows, args, [before, _load()])
    if not args.skip_search:
        n = args.gallery or (100_000 if args.quick else 1_000_000)
        q = args.queries or (200 if args.quick else 1000)
        nlist = 1024 if n <= 200_000 else 2048
        bench_search(n, q, nlist, [8, 32, 128], max_train=min(n, 32 * nlist))


if __name__ == "__main__":
    main()
