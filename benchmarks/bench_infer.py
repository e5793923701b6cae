"""Benchmark: deployment speed. PyTorch eager vs onnxruntime, and exact vs faiss IVF-PQ search.

Part 1 (inference): ResNet-50 and OSNet-x1.0 ReidModels (BNNeck, random weights) at 256x128,
batch 1 and 32. Each model is exported with ``reidkit.deploy.export_onnx`` (which also checks
parity), then timed in the same process: PyTorch eager under ``torch.inference_mode`` and an
onnxruntime session, both on all cores (``--threads N`` pins both to N) or on the GPU
(``--device cuda``: CUDA execution provider when this onnxruntime has it, else the table says
so). Medians of ``--repeats`` timed
runs after warm-up; images/s and the onnxruntime / eager ratio.

Part 2 (search): a synthetic gallery of N x 512 L2-normalised embeddings (identity centres plus
noise) and Q queries. Exact search (``GalleryIndex('exact')``: the evaluator's distances in
torch) gives the ground truth; faiss IVF-PQ (``nlist`` lists, 64 bytes per vector) is timed at a
few ``nprobe`` values: queries/s and recall@10 against the exact top-10.

    .venv/bin/python benchmarks/bench_infer.py --quick          # CPU, small gallery (minutes)
    .venv/bin/python benchmarks/bench_infer.py                  # CPU, 1M x 512 gallery
    python3 benchmarks/bench_infer.py --device cuda             # GPU machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from reidkit.deploy.export import export_onnx  # noqa: E402
from reidkit.deploy.runtime import create_session  # noqa: E402
from reidkit.models import ReidModel  # noqa: E402

IMG_H, IMG_W = 256, 128


def _median_time(fn, repeats: int, warmup: int, sync) -> float:  # noqa: ANN001
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_model(
    name: str, batches: list[int], device: str, repeats: int, tmp: Path, threads: int | None
) -> list[dict]:
    """Rows of (model, batch, eager img/s, onnxruntime img/s) for one backbone."""
    torch.manual_seed(0)
    model = ReidModel(name, 751).eval()
    onnx_path = tmp / f"{name}.onnx"
    report = export_onnx(model, onnx_path, IMG_H, IMG_W, num_images=4)
    print(f"  {name}: {report.summary()}", flush=True)
    dev = torch.device(device)
    model = model.to(dev)
    providers = "cuda" if device == "cuda" else None
    try:
        session = create_session(onnx_path, providers, threads)
        ort_note = ",".join(p.replace("ExecutionProvider", "") for p in session.get_providers())
    except Exception as e:  # the CUDA provider is missing on some onnxruntime builds
        session = create_session(onnx_path, None, threads)
        ort_note = f"CPU only ({type(e).__name__})"
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, IMG_H, IMG_W, device=dev)
        x_np = x.cpu().numpy()

        def eager(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                model(x)

        def ort(x_np: np.ndarray = x_np) -> None:
            session.run(None, {"images": x_np})

        warm = 3 if batch > 1 else 10
        t_eager = _median_time(eager, repeats, warm, sync)
        t_ort = _median_time(ort, repeats, warm, lambda: None)
        rows.append(
            {
                "model": name,
                "batch": batch,
                "eager": batch / t_eager,
                "ort": batch / t_ort,
                "ort_providers": ort_note,
            }
        )
        print(
            f"    batch {batch:3d}: eager {batch / t_eager:8.1f} img/s   onnxruntime "
            f"{batch / t_ort:8.1f} img/s   ({ort_note})",
            flush=True,
        )
    return rows


def print_inference_table(rows: list[dict], device: str) -> None:
    import onnxruntime

    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"\nInference at {IMG_H}x{IMG_W}, device {device}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    print("| model | batch | PyTorch eager img/s | onnxruntime img/s | ratio ort/eager |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        ratio = r["ort"] / r["eager"]
        print(f"| {r['model']} | {r['batch']} | {r['eager']:.1f} | {r['ort']:.1f} | {ratio:.2f}x |")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 100k gallery")
    parser.add_argument("--models", default="resnet50,osnet_x1_0")
    parser.add_argument("--repeats", type=int, default=0, help="timed runs (default 10 / 5)")
    parser.add_argument("--gallery", type=int, default=0, help="gallery size (default 1M)")
    parser.add_argument("--queries", type=int, default=0, help="queries (default 1000)")
    parser.add_argument(
        "--threads", type=int, help="CPU threads of both engines (default: torch's / ort's own)"
    )
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-infer", action="store_true")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible")
    repeats = args.repeats or (5 if args.quick else 10)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_infer:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.models.split(","):
                rows += bench_model(name, [1, 32], args.device, repeats, Path(tmp), args.threads)
        print_inference_table(rows, args.device)
    if not args.skip_search:
        n = args.gallery or (100_000 if args.quick else 1_000_000)
        q = args.queries or (200 if args.quick else 1000)
        nlist = 1024 if n <= 200_000 else 2048
        bench_search(n, q, nlist, [8, 32, 128], max_train=min(n, 32 * nlist))


if __name__ == "__main__":
    main()
