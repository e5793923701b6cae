"""Benchmark: ReID evaluation from features to all metrics, reidkit vs a per-query reference.

Market-1501-scale synthetic features (3,368 queries, 15,913 gallery images, 2,048-d, 751 ids
plus distractors and junk, 6 cameras). "total" is features -> all metrics; "ranking" starts
from a precomputed distance matrix (the part the per-query loops of other toolkits spend
their time on; the distance matmul is the same work for both).

Each identity has a centre; images are the centre plus a camera offset plus noise, tuned so
that rank-1 / mAP / mINP come out near 0.99 / 0.78 / 0.2, like a well-trained model with some
hard matches; ``--random`` uses unstructured features instead (the worst case for our
candidate pruning: every true match lies at a random rank).

Each method runs in its own process (so peak memory is its own): the per-query numpy reference
(numpy distance matrix, then a Python loop over queries with a stable argsort, the published
protocol written plainly) and ``reidkit.evaluation.evaluate_reid``. Prints medians, the speed
ratio, peak memory and the largest metric difference.

    .venv/bin/python benchmarks/bench_eval.py                 # CPU, Market scale
    .venv/bin/python benchmarks/bench_eval.py --device cuda   # GPU (reference stays on CPU)
    .venv/bin/python benchmarks/bench_eval.py --device cuda --large   # 100k x 1M, bounded memory
    .venv/bin/python benchmarks/bench_eval.py --rerank        # + k-reciprocal re-ranking time
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NQ, NG, DIM, IDS, CAMS = 3368, 15913, 2048, 751, 6


def make_features(seed: int, nq: int, ng: int, dim: int, random: bool) -> dict[str, np.ndarray]:
    """Market-like query/gallery features with ids, distractors (0), junk (-1) and cameras."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, IDS + 1, nq)
    g_pids = rng.integers(1, IDS + 1, ng)
    kind = rng.random(ng)
    g_pids[kind < 0.16] = 0  # distractors
    g_pids[(kind >= 0.16) & (kind < 0.24)] = -1  # junk
    q_cams, g_cams = rng.integers(1, CAMS + 1, nq), rng.integers(1, CAMS + 1, ng)
    if random:
        qf = rng.standard_normal((nq, dim), dtype=np.float32)
        gf = rng.standard_normal((ng, dim), dtype=np.float32)
    else:
        centres = 0.37 * rng.standard_normal((IDS + 1, dim), dtype=np.float32)
        cam_off = 0.15 * rng.standard_normal((CAMS + 1, dim), dtype=np.float32)

        def sample(pids: np.ndarray, cams: np.ndarray) -> np.ndarray:
            out = centres[np.clip(pids, 0, None)] + cam_off[cams]
            out += rng.standard_normal(out.shape, dtype=np.float32)
            n_other = int((pids <= 0).sum())
            out[pids <= 0] = 1.05 * rng.standard_normal((n_other, dim), dtype=np.float32)
            return out

        qf, gf = sample(q_pids, q_cams), sample(g_pids, g_cams)
    return {
        "qf": qf,
        "gf": gf,
        "q_pids": q_pids,
        "g_pids": g_pids,
        "q_camids": q_cams,
        "g_camids": g_cams,
    }


def reference_distance(d: dict[str, np.ndarray]) -> np.ndarray:
    """The full query x gallery squared Euclidean matrix in numpy (float32, same formula and
    order as reidkit, so both methods rank the same distances)."""
    qf, gf = d["qf"], d["gf"]
    dist = (-2 * qf) @ gf.T
    dist += (qf * qf).sum(1)[:, None]
    dist += (gf * gf).sum(1)[None, :]
    return np.maximum(dist, 0, out=dist)


def reference_ranking(dist: np.ndarray, d: dict[str, np.ndarray], ranks=(1, 5, 10)) -> dict:
    """The per-query numpy implementation of the Market protocol (what the anchors do)."""
    cmc, aps, inps = np.zeros(max(ranks)), [], []
    for i in range(dist.shape[0]):
        order = np.argsort(dist[i], kind="stable")
        p, c = d["g_pids"][order], d["g_camids"][order]
        keep = ~(((p == d["q_pids"][i]) & (c == d["q_camids"][i])) | (p == -1))
        raw = (p[keep] == d["q_pids"][i]).astype(np.int64)
        if not raw.any():
            continue
        hits = raw.cumsum()
        cmc[np.argmax(raw) :] += 1
        aps.append((hits / np.arange(1, raw.size + 1) * raw).sum() / raw.sum())
        inps.append(raw.sum() / (np.nonzero(raw)[0].max() + 1))
    n = len(aps)
    out = {f"rank{k}": cmc[k - 1] / n for k in ranks}
    out.update(mAP=float(np.mean(aps)), mINP=float(np.mean(inps)), num_valid_queries=n)
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker(method: str, path: str, device: str, repeats: int, queue: mp.Queue) -> None:
    """Run one method in a fresh process and report its times, peak memory and metrics."""
    data = dict(np.load(path))
    import torch

    from reidkit.evaluation import evaluate_reid

    times, metrics = [], {}
    base_rss = _peak_rss_mb()
    if method == "rerank":
        from reidkit.evaluation import KReciprocalDistance

        t0 = time.perf_counter()
        tensors = {k: torch.from_numpy(v).to(device) for k, v in data.items()}
        rr = KReciprocalDistance(tensors["qf"], tensors["gf"])
        metrics = evaluate_reid(**tensors, dist_fn=rr)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        peak = _peak_rss_mb() - base_rss
        queue.put((times, peak, {k: float(v) for k, v in metrics.items()}, [], []))
        return
    if method == "ours":
        tensors = {k: torch.from_numpy(v).to(device) for k, v in data.items()}
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base_gpu = torch.cuda.memory_allocated()
    cpu, ranking = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        if method == "reference":
            dist = reference_distance(data)
            t1 = time.perf_counter()
            metrics = reference_ranking(dist, data)
            ranking.append(time.perf_counter() - t1)
        else:
            metrics = evaluate_reid(**tensors)
            if device == "cuda":
                torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak = _peak_rss_mb() - base_rss
    if method == "ours" and device == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base_gpu) / 2**20
    if method == "ours":  # ranking only, from a precomputed matrix (after the memory peak)
        from reidkit.evaluation import pairwise_distance

        full = pairwise_distance(tensors["qf"], tensors["gf"], "euclidean")
        for _ in range(repeats):
            t1 = time.perf_counter()
            evaluate_reid(**tensors, dist_fn=lambda s, e: full[s:e])
            if device == "cuda":
                torch.cuda.synchronize()
            ranking.append(time.perf_counter() - t1)
    queue.put((times, peak, {k: float(v) for k, v in metrics.items()}, cpu, ranking))


def run_isolated(method: str, path: str, device: str, repeats: int):
    """Start ``_worker`` in a spawned process and return its result."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(method, path, device, repeats, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def market_scale(args: argparse.Namespace) -> None:
    """Reference vs ours on Market-scale features; prints a table."""
    data = make_features(0, NQ, NG, DIM, args.random)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "feats.npz")
        np.savez(path, **data)
        ours = run_isolated("ours", path, args.device, args.repeats)
        ref = run_isolated("reference", path, "cpu", 1 if args.quick_ref else args.repeats)
    med = statistics.median
    t_ours, t_ref = med(ours[0]), med(ref[0])
    r_ours, r_ref = med(ours[4]), med(ref[4])
    diff = max(abs(ours[2][k] - ref[2][k]) for k in ref[2])
    mem = "GPU MiB" if args.device == "cuda" else "RSS MiB"
    print(f"features: {NQ} x {NG}, {DIM}-d, {'random' if args.random else 'BoT-like'}")
    head = f"{'method':<28}{'total s':>9}{'ranking s':>11}{'CPU s':>8}{'peak ' + mem:>16}"
    print(head)
    for name, r, t, rk in (
        ("per-query numpy reference", ref, t_ref, r_ref),
        (f"reidkit evaluate_reid ({args.device})", ours, t_ours, r_ours),
    ):
        print(f"{name:<28}{t:>9.3f}{rk:>11.3f}{med(r[3]):>8.2f}{r[1]:>16.0f}")
    print(
        f"speed-up: total {t_ref / t_ours:.1f}x, ranking only {r_ref / r_ours:.1f}x   "
        f"max |metric difference|: {diff:.2e}"
    )
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} ({os.cpu_count()} cores)")
    print("metrics:", {k: round(v, 4) for k, v in ours[2].items()})
    if args.rerank:
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "feats.npz")
            np.savez(path, **data)
            rr = run_isolated("rerank", path, args.device, 1)
        print(
            f"k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3) + metrics: {rr[0][0]:.1f} s, "
            f"peak RSS +{rr[1]:.0f} MiB ({args.device})"
        )
        print("re-ranked metrics:", {k: round(v, 4) for k, v in rr[2].items()})


def large(args: argparse.Namespace) -> None:
    """100k queries x 1M gallery on the GPU: memory stays bounded by the chunk size."""
    import torch

    from reidkit.evaluation import evaluate_reid

    nq, ng, dim = args.large_nq, args.large_ng, args.large_dim
    g = torch.Generator(device=args.device).manual_seed(0)
    n_ids = ng // 20  # about 20 gallery images per identity
    ids = [torch.randint(1, n_ids + 1, (n,), device=args.device, generator=g) for n in (nq, ng)]
    cams = [torch.randint(0, CAMS, (n,), device=args.device, generator=g) for n in (nq, ng)]
    if args.random:
        qf = torch.randn(nq, dim, device=args.device, generator=g)
        gf = torch.randn(ng, dim, device=args.device, generator=g)
    else:  # the same recipe as the Market-scale features, built on the GPU
        centres = 0.37 * torch.randn(n_ids + 1, dim, device=args.device, generator=g)
        qf = centres[ids[0]] + torch.randn(nq, dim, device=args.device, generator=g)
        gf = centres[ids[1]]
        gf += torch.randn(ng, dim, device=args.device, generator=g)
        del centres
    ids = [ids[0], ids[1], cams[0], cams[1]]
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else _peak_rss_mb() * 2**20
    t0 = time.perf_counter()
    m = evaluate_reid(qf, gf, ids[0], ids[1], ids[2], ids[3])
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() if cuda else _peak_rss_mb() * 2**20) - base
    full = nq * ng * 4 / 2**30
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"large: {nq} x {ng}, {dim}-d on {name}")
    print(
        f"time {dt:.1f} s   peak extra memory {peak / 2**30:.2f} GiB   (a full float32 "
        f"distance matrix would need {full:.1f} GiB)"
    )
    print("metrics:", {k: round(float(v), 5) for k, v in m.items()})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--random", action="store_true", help="unstructured features (worst case)")
    p.add_argument("--quick-ref", action="store_true", help="run the slow reference once")
    p.add_argument("--rerank", action="store_true", help="also time k-reciprocal re-ranking")
    p.add_argument("--large", action="store_true", help="100k x 1M run (GPU)")
    p.add_argument("--large-nq", type=int, default=100_000)
    p.add_argument("--large-ng", type=int, default=1_000_000)
    p.add_argument("--large-dim", type=int, default=2048)
    args = p.parse_args(argv)
    if args.large:
        large(args)
    else:
        market_scale(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
