"""Training side by side with torchreid 0.2.5's engine on the same data and the same network.

Both train ResNet-18 with last stride 2 (global average pooling -> 512-d feature -> linear
classifier, no neck), 128x64 inputs, batch 32 = 8 identities x 4 images (PK sampling), Adam
3.5e-4 with weight decay 5e-4, cross-entropy with label smoothing 0.1 + batch-hard triplet
(margin 0.3), flip + crop + random erasing, and evaluate after every epoch (query vs gallery,
Market protocol), each in its own process (``python -m reidkit train`` and torchreid's
``ImageTripletEngine.run``). Per epoch: training images/s, the epoch's training seconds and the
evaluation's seconds; the table shows medians over epochs and rounds. The rounds alternate
which framework goes first; on a machine shared with other jobs, many short rounds
(``--rounds 4 --epochs 1``) spread the changes of load over both sides.

    python benchmarks/bench_train.py --vs-torchreid --rounds 4 --epochs 1   # docs/benchmarks.md
    python benchmarks/bench_train.py --vs-torchreid --epochs 2 --train-images 800   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from torchreid_side import ensure_torchreid, run_side

ROOT = Path(__file__).resolve().parents[1]


def make_data(folder: Path, train_images: int, seed: int = 0) -> dict:
    """100 train ids, and 34 test ids giving about 100 queries and 800 gallery images
    (distractors included, no junk: torchreid drops junk images, reidkit would embed them)."""
    sys.path.insert(0, str(ROOT / "src"))
    from reidkit.data.synthetic import generate_synthetic

    return generate_synthetic(
        folder,
        num_ids=100,
        num_test_ids=34,
        images_per_id=24,
        train_images=train_images,
        num_junk=0,
        num_distractors=60,
        seed=seed,
    )


def reidkit_params(data: Path, work: Path, epochs: int, workers: int) -> dict:
    """The reidkit config of the same recipe."""
    return {
        "batches_dir": str(data),
        "working_dir": str(work),
        "img_h": 128,
        "img_w": 64,
        "batch_size": 32,
        "epoch": epochs,
        "optimizer": "adam",
        "weight_decay": 5e-4,
        "lr": {"base_lr": 3.5e-4, "decay_step": 1000},
        "model_params": {"backbone": "resnet18", "last_stride": 2, "neck": "none"},
        "data_augmentation": {"mirror": True, "padding": 10, "random_erasing": 0.5},
        "tri_loss_margin": 0.3,
        "label_smoothing": 0.1,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {"type": "market_evaluate", "ranks": [1, 5, 10, 20]},
        "data": {"cache": "ram", "num_workers": workers, "test_batch_size": 100},
        "device": "cpu",
        "progress": False,
    }


def run_reidkit(data: Path, work: Path, args: argparse.Namespace) -> dict:
    """``python -m reidkit train`` in a fresh process; per-epoch numbers from metrics.jsonl."""
    params = work / "params.json"
    work.mkdir(parents=True, exist_ok=True)
    params.write_text(json.dumps(reidkit_params(data, work, args.epochs, args.workers)))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    cmd = [sys.executable, "-m", "reidkit", "train", "-c", str(params), "--sub-working-dir", "r"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"reidkit failed:\n{done.stderr[-3000:]}")
    records = [json.loads(x) for x in (work / "r" / "metrics.jsonl").read_text().splitlines()]
    return {
        "images_per_s": [r["train"]["images_per_s"] for r in records],
        "train_s": [r["train"]["epoch_s"] for r in records],
        "eval_s": [r["train"]["eval_s"] for r in records],
        "mAP": records[-1]["eval"]["mAP"],
        "rank1": records[-1]["eval"]["rank1"],
    }


def run_torchreid(root: Path, work: Path, args: argparse.Namespace, target: Path) -> dict:
    """torchreid's engine in its own process (see ``torchreid_side.train``)."""
    out = work / "torchreid.json"
    side = ["train", "--root", str(root), "--save-dir", str(work / "t"), "--out", str(out)]
    side += ["--epochs", str(args.epochs), "--workers", str(args.workers)]
    r = run_side(side, target, args.threads)
    n = r["images_per_epoch"]
    return {
        "images_per_s": [n / s for s in r["train_s"]],
        "train_s": r["train_s"],
        "eval_s": r["test_s"],
        "rank1": r["rank1"][-1],
        "mAP": None,
        "num_query": r["num_query"],
        "num_gallery": r["num_gallery"],
    }


def compare(args: argparse.Namespace) -> None:
    """Generate the data, run the rounds (alternating who goes first), print the table."""
    target = ensure_torchreid(args.torchreid_dir)
    load0 = os.getloadavg()[0]
    results: dict[str, list[dict]] = {"torchreid": [], "reidkit": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth"
        summary = make_data(data, args.train_images)
        (Path(tmp) / "trroot").mkdir()
        (Path(tmp) / "trroot" / "market1501").symlink_to(data)
        for r in range(args.rounds):
            order = ["reidkit", "torchreid"] if r % 2 == 0 else ["torchreid", "reidkit"]
            for name in order:
                work = Path(tmp) / f"{name}{r}"
                if name == "reidkit":
                    results[name].append(run_reidkit(data, work, args))
                else:
                    results[name].append(run_torchreid(Path(tmp) / "trroot", work, args, target))
                print(f"round {r + 1} {name}: {json.dumps(results[name][-1])}", flush=True)
    load1 = os.getloadavg()[0]
    print_table(args, summary, results, (load0, load1))


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(v for r in rows for v in r[key])


def print_table(args, summary: dict, results: dict, load: tuple[float, float]) -> None:
    """The side-by-side table (medians over every epoch of every round)."""
    threads = args.threads or "torch default (2)"
    print(
        f"\nResNet-18 (last stride 2) 128x64, batch 32 (PK 8x4), Adam, CE+LS + triplet; "
        f"{summary['train_images']} train images / {summary['train_ids']} ids; eval "
        f"{summary['query_images']} queries x {summary['gallery_images']} gallery; "
        f"{args.epochs} epochs x {args.rounds} round(s); threads {threads}; "
        f"load average {load[0]:.1f} -> {load[1]:.1f}"
    )
    head = f"{'framework':<10} {'train img/s':>12} {'min..max':>12} {'epoch s':>9} {'eval s':>8}"
    print(head + f" {'eval/epoch':>11} {'rank-1':>7}")
    rows = {}
    for name in ("torchreid", "reidkit"):
        rs = results[name]
        ips, ep, ev = (_median(rs, k) for k in ("images_per_s", "train_s", "eval_s"))
        rows[name] = ips
        r1 = statistics.median(r["rank1"] for r in rs)
        all_ips = [v for r in rs for v in r["images_per_s"]]
        span = f"{min(all_ips):.1f}..{max(all_ips):.1f}"
        print(
            f"{name:<10} {ips:>12.1f} {span:>12} {ep:>9.1f} {ev:>8.1f} {ev / ep:>10.0%} {r1:>7.3f}"
        )
    print(f"reidkit / torchreid training images/s: {rows['reidkit'] / rows['torchreid']:.2f}x")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench_train.py --vs-torchreid``."""
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1, help="repeat both sides, alternating")
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for both (0: default)")
    p.add_argument("--torchreid-dir", type=Path, default=ROOT / ".bench" / "torchreid")
