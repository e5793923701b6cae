"""Training throughput: the model alone (the ceiling) vs the full pipeline, eager vs compiled.

Every variant runs the real ``Trainer.train_step`` (forward, loss, backward, optimiser step,
schedule) built by ``build_run`` from a BoT config (ResNet-50, last stride 1, BNNeck, CE+LS +
triplet, Adam, 256x128, batch 64 = PK 16x4): (a) on one random batch already on the device,
(b) on batches from reidkit's loader over a synthetic Market-style set. A variant is a
precision, optionally with a torch.compile mode: ``bf16``, ``bf16+reduce-overhead``,
``off+default`` ... Per variant: warm-up seconds (compilation included), (a) and (b) images/s
(medians of blocks), b/a, graph recompilations after warm-up, host syncs per step of (a) the
training step alone and (b) step + loader (counted by the CUDA driver on GPUs; on the CPU by
``reidkit.utils.hostsync``, eager only), and with ``--extrapolate N`` the time of N epochs
(plus one evaluation with ``--eval``).
``--accuracy-epochs N`` then trains N epochs with each variant from the same seed and prints the
final metrics side by side (compiled and eager should agree within noise).

    python benchmarks/bench_train.py --quick                       # CPU smoke (ResNet-18)
    python benchmarks/bench_train.py --device cuda --data D --cache device \
        --variants bf16,bf16+reduce-overhead --extrapolate 120 --eval --accuracy-epochs 6
    python benchmarks/bench_train.py --vs-torchreid                # CPU, against torchreid
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from train_vs_torchreid import add_arguments, compare

from reidkit.app import build_run
from reidkit.config import validate_config
from reidkit.data.synthetic import generate_synthetic
from reidkit.utils.hostsync import count_host_syncs
from reidkit.utils.logging import setup_logging


def parse_variant(text: str) -> tuple[str, str | None]:
    """``"bf16+reduce-overhead"`` -> ``("bf16", "reduce-overhead")``; ``"off"`` -> eager."""
    amp, _, mode = text.partition("+")
    return amp, (mode or None)


def make_config(args: argparse.Namespace, data_dir: Path, work: Path, variant: str) -> dict:
    """A BoT-style config for one variant."""
    amp, mode = parse_variant(variant)
    return {
        "batches_dir": str(data_dir),
        "working_dir": str(work),
        "sub_working_dir": f"bench_{variant.replace('+', '_')}",
        "img_h": args.height,
        "img_w": args.width,
        "batch_size": args.batch,
        "epoch": max(1, args.accuracy_epochs),
        "optimizer": "adam",
        "lr": {"base_lr": 3.5e-4, "warmup_epochs": 1 if args.accuracy_epochs else 0},
        "model_params": {"backbone": args.backbone, "last_stride": args.last_stride},
        "data_augmentation": {"mirror": True, "padding": 10, "random_erasing": 0.5},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {
            "type": "market_evaluate" if args.eval or args.accuracy_epochs else None,
            "period": max(1, args.accuracy_epochs),
        },
        "data": {"cache": args.cache, "num_workers": args.workers},
        "device": args.device,
        "amp": amp,
        "channels_last": "auto",
        "compile": mode is not None,
        "compile_mode": mode or "default",
        "progress": False,
        "seed": 0,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_blocks(step, device: torch.device, iters: int, repeats: int) -> float:
    """Median seconds per iteration over ``repeats`` blocks of ``iters`` steps."""
    blocks = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        _sync(device)
        blocks.append((time.perf_counter() - t0) / iters)
    return statistics.median(blocks)


def count_syncs(step, device: torch.device, compiled: bool, n: int = 3) -> float | None:
    """Host syncs per step: the CUDA driver's count on GPUs, the torch-function count on the
    CPU (eager only: running a compiled step under a new torch-function mode recompiles it)."""
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for _ in range(n):
                step()
            _sync(device)
        torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in seen) / n
    if compiled:
        return None
    with count_host_syncs() as syncs:
        for _ in range(n):
            step()
    return syncs.count / n


def bench_variant(args: argparse.Namespace, data_dir: Path, work: Path, variant: str) -> dict:
    """Ceiling and pipeline images/s, warm-up, recompilations and syncs of one variant."""
    cfg = validate_config(make_config(args, data_dir, work, variant))
    trainer = build_run(cfg).trainer()
    trainer.model.train()
    device = trainer.device
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, args.height, args.width, generator=g).to(device)
    pids = torch.arange(args.batch // 4).repeat_interleave(4).to(device)
    batches = iter(())

    def ceiling_step() -> None:
        trainer.train_step(images, pids, check=False)

    def pipeline_step() -> None:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            trainer.loader.set_epoch(0)
            batches = iter(trainer.loader)
            batch = next(batches)
        trainer.train_step(batch.images, batch.pids, check=False)

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        pipeline_step()
    _sync(device)
    warm = time.perf_counter() - t0
    steps = (ceiling_step, pipeline_step)
    ceiling = time_blocks(ceiling_step, device, args.iters, args.repeats)
    pipeline = time_blocks(pipeline_step, device, args.iters, args.repeats)
    row = {
        "variant": variant,
        "warmup_s": warm,
        "ceiling": args.batch / ceiling,
        "pipeline": args.batch / pipeline,
        "recompilations": trainer.forward_loss.recompilations(),
        "syncs": [count_syncs(f, device, trainer.forward_loss.compiled) for f in steps],
        "epoch_images": len(trainer.loader) * args.batch,
    }
    if args.eval:  # the second evaluation: the first also decodes query / gallery once
        trainer.evaluate()
        _sync(device)
        t0 = time.perf_counter()
        trainer.evaluate()
        _sync(device)
        row["eval_s"] = time.perf_counter() - t0
    trainer.runlog.close()
    return row


def accuracy_run(args: argparse.Namespace, data_dir: Path, work: Path, variant: str) -> dict:
    """Train ``--accuracy-epochs`` epochs from seed 0; the final metrics and seconds."""
    cfg = validate_config(make_config(args, data_dir, work / "acc", variant))
    t0 = time.perf_counter()
    summary = build_run(cfg).trainer().fit()
    return {"seconds": time.perf_counter() - t0, **summary["metrics"]}


def print_table(args: argparse.Namespace, rows: list[dict], accuracy: dict) -> None:
    """The variants side by side, then the extrapolation and the accuracy check."""
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"\ntrain throughput: {args.backbone} (last stride {args.last_stride}) "
        f"{args.height}x{args.width} batch {args.batch} on {name}, torch {torch.__version__} "
        f"(median of {args.repeats} blocks x {args.iters} iterations after {args.warmup} warm-up)"
    )
    head = f"{'variant':<26} {'warm-up s':>9} {'(a) model img/s':>16} {'(b) pipeline img/s':>19}"
    print(f"{head} {'b/a':>5} {'recompiles':>10} {'syncs/step a|b':>14}")
    for r in rows:
        syncs = "|".join("-" if n is None else f"{n:g}" for n in r["syncs"])
        print(
            f"{r['variant']:<26} {r['warmup_s']:>9.1f} {r['ceiling']:>16.1f} "
            f"{r['pipeline']:>19.1f} {r['pipeline'] / r['ceiling']:>5.2f} "
            f"{r['recompilations']:>10} {syncs:>14}"
        )
    if args.extrapolate:
        print(f"\n{args.extrapolate} epochs of {rows[0]['epoch_images']} training images:")
        for r in rows:
            train_min = args.extrapolate * r["epoch_images"] / r["pipeline"] / 60
            line = f"{r['variant']:<26} training {train_min:6.1f} min"
            if "eval_s" in r:
                line += f"; one evaluation {r['eval_s']:.1f} s"
                for period in (1, 10):
                    total = train_min + args.extrapolate // period * r["eval_s"] / 60
                    line += f"; with eval every {period}: {total:.1f} min"
            print(line)
    if accuracy:
        print(f"\naccuracy after {args.accuracy_epochs} epochs (same seed, same data):")
        for variant, m in accuracy.items():
            metrics = "  ".join(f"{k} {m[k]:.4f}" for k in ("mAP", "rank1") if k in m)
            print(f"{variant:<26} {metrics}  ({m['seconds']:.0f} s)")


def main() -> None:
    """Parse arguments, build the dataset once, run the variants, print the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--last-stride", type=int, default=1)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--ids", type=int, default=751)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--cache", default="ram", choices=["none", "ram", "device"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--amp", default="off,bf16", help="comma list of off,bf16,fp16")
    p.add_argument("--compile", action="store_true", help="every --amp entry with compile")
    p.add_argument("--variants", help="comma list like bf16,bf16+reduce-overhead (overrides)")
    p.add_argument("--extrapolate", type=int, default=0, help="print the time of N epochs")
    p.add_argument("--eval", action="store_true", help="time one evaluation too")
    p.add_argument("--accuracy-epochs", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="ResNet-18, 128x64, batch 32, few iters")
    p.add_argument("--data", type=Path, default=None, help="reuse a dataset folder")
    p.add_argument("--vs-torchreid", action="store_true", help="CPU: side by side, torchreid")
    add_arguments(p)
    args = p.parse_args()
    if args.vs_torchreid:
        compare(args)
        return
    if args.quick:
        args.backbone, args.height, args.width, args.batch = "resnet18", 128, 64, 32
        args.ids, args.iters, args.repeats, args.warmup = 60, 4, 3, 2
    suffix = "+default" if args.compile else ""
    variants = (args.variants or ",".join(a + suffix for a in args.amp.split(","))).split(",")
    setup_logging(None, console=False)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data or Path(tmp) / "synth"
        if args.data is None:
            generate_synthetic(data_dir, num_ids=args.ids, seed=0)
        rows = [bench_variant(args, data_dir, Path(tmp) / "work", v) for v in variants]
        accuracy = {}
        if args.accuracy_epochs:
            accuracy = {v: accuracy_run(args, data_dir, Path(tmp) / "work", v) for v in variants}
    print_table(args, rows, accuracy)


if __name__ == "__main__":
    main()
