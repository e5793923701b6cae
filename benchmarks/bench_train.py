"""Training throughput: the model alone on random tensors (the ceiling) vs the full pipeline.

Both columns run the same ``Trainer.train_step`` (forward, losses, backward, optimiser step,
schedule); (a) feeds it a pre-made random batch already on the device, (b) feeds it batches from
reidkit's data pipeline over a synthetic Market-style dataset. The ratio (b)/(a) says how far the
data pipeline keeps the model fed (goal on an H100: >= 0.8).

    python benchmarks/bench_train.py --quick                 # CPU smoke (ResNet-18, 128x64)
    python benchmarks/bench_train.py --device cuda           # BoT ResNet-50, 256x128, batch 64
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from reidkit.app import build_run
from reidkit.config import validate_config
from reidkit.utils.logging import setup_logging


def make_config(args: argparse.Namespace, data_dir: Path, work: Path, amp: str) -> dict:
    """A BoT-style config for the benchmark."""
    return {
        "batches_dir": str(data_dir),
        "working_dir": str(work),
        "sub_working_dir": f"bench_{amp}",
        "img_h": args.height,
        "img_w": args.width,
        "batch_size": args.batch,
        "epoch": 1,
        "optimizer": "adam",
        "lr": {"base_lr": 3.5e-4},
        "model_params": {"backbone": args.backbone, "last_stride": 1},
        "data_augmentation": {"mirror": True, "padding": 10, "random_erasing": 0.5},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "data": {"cache": args.cache, "num_workers": args.workers},
        "device": args.device,
        "amp": amp,
        "channels_last": args.device == "cuda",
        "compile": args.compile,
        "progress": False,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_blocks(step, device: torch.device, iters: int, repeats: int, warmup: int) -> float:
    """Median seconds per iteration over ``repeats`` blocks of ``iters`` steps."""
    for _ in range(warmup):
        step()
    _sync(device)
    blocks = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        _sync(device)
        blocks.append((time.perf_counter() - t0) / iters)
    return statistics.median(blocks)


def bench_one(
    args: argparse.Namespace, data_dir: Path, work: Path, amp: str
) -> tuple[float, float]:
    """(ceiling img/s, pipeline img/s) for one precision setting."""
    cfg = validate_config(make_config(args, data_dir, work, amp))
    trainer = build_run(cfg).trainer()
    trainer.model.train()
    device = trainer.device
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, args.height, args.width, generator=g).to(device)
    k = cfg.batch_sampling_params.K
    pids = torch.arange(args.batch // k).repeat_interleave(k).to(device)

    def ceiling_step() -> None:
        trainer.train_step(images, pids, check=False)

    batches = iter(())

    def pipeline_step() -> None:
        nonlocal batches
        try:
            batch = next(batches)
        except StopIteration:
            trainer.loader.set_epoch(0)
            batches = iter(trainer.loader)
            batch = next(batches)
        trainer.train_step(batch.images, batch.pids, check=False)

    ceiling = time_blocks(ceiling_step, device, args.iters, args.repeats, args.warmup)
    pipeline = time_blocks(pipeline_step, device, args.iters, args.repeats, args.warmup)
    trainer.runlog.close()
    return args.batch / ceiling, args.batch / pipeline


def main() -> None:
    """Parse arguments, build the dataset once, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--ids", type=int, default=751)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--cache", default="ram", choices=["none", "ram", "device"])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--amp", default="off,bf16", help="comma list of off,bf16,fp16")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (compile: true)")
    p.add_argument("--quick", action="store_true", help="ResNet-18, 128x64, batch 32, few iters")
    p.add_argument("--data", type=Path, default=None, help="reuse a dataset folder")
    args = p.parse_args()
    if args.quick:
        args.backbone, args.height, args.width, args.batch = "resnet18", 128, 64, 32
        args.ids, args.iters, args.repeats, args.warmup = 60, 4, 3, 2
    setup_logging(None, console=False)
    from reidkit.data.synthetic import generate_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data or Path(tmp) / "synth"
        if args.data is None:
            generate_synthetic(data_dir, num_ids=args.ids, seed=0)
        rows = []
        for amp in args.amp.split(","):
            ceiling, pipeline = bench_one(args, data_dir, Path(tmp) / "work", amp)
            rows.append((amp, ceiling, pipeline))
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"\ntrain throughput: {args.backbone} {args.height}x{args.width} batch {args.batch} "
        f"on {name} (median of {args.repeats} blocks x {args.iters} iterations)"
    )
    head = f"{'precision':<10} {'(a) model only img/s':>22} {'(b) full pipeline img/s':>25}"
    print(f"{head} {'b/a':>6}")
    for amp, ceiling, pipeline in rows:
        print(f"{amp:<10} {ceiling:>22.1f} {pipeline:>25.1f} {pipeline / ceiling:>6.2f}")


if __name__ == "__main__":
    main()
