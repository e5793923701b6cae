"""Data pipeline throughput: images/s delivered to the training loop, side by side.

(a) the anchors' way: a torch DataLoader with worker processes running a per-sample PIL
    pipeline (Resize, RandomHorizontalFlip, Pad, RandomCrop, ToTensor, Normalize,
    RandomErasing), batches moved to the device;
(b) reidkit's TrainLoader: images decoded once into a uint8 cache (``ram``, and on CUDA also
    ``device``), batches built by indexing and augmented batched on the device with the same
    augmentations and per-image parameters (the one-time decode is reported separately).

The dataset is a Market-sized synthetic set (12,936 train images, 751 ids, 128x64 JPEGs),
generated once and cached in the temp folder; output 256x128, batch 64.

    python benchmarks/bench_data.py --quick              # small set, CPU
    python benchmarks/bench_data.py                      # Market-sized, CPU
    python benchmarks/bench_data.py --device cuda        # on a GPU machine
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from reidkit.data import BatchAugment, TrainLoader, load_dataset
from reidkit.data.augment import IMAGENET_MEAN, IMAGENET_STD
from reidkit.data.synthetic import generate_synthetic
from reidkit.utils.logging import setup_logging


class PilDataset(Dataset):
    """The per-sample pipeline of torchreid / fast-reid style training."""

    def __init__(self, root: Path, paths: list[str], h: int, w: int, padding: int) -> None:
        self.root, self.paths = root, paths
        self.tf = T.Compose(
            [
                T.Resize((h, w)),
                T.RandomHorizontalFlip(0.5),
                T.Pad(padding),
                T.RandomCrop((h, w)),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
                T.RandomErasing(0.5, value=0),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.root / self.paths[i]) as im:
            return self.tf(im.convert("RGB")), i


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(batches, device: torch.device, iters: int, repeats: int, batch: int) -> list[float]:
    """images/s of ``repeats`` blocks of ``iters`` batches (after one warm-up batch)."""
    it = iter(batches())
    next(it)
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            try:
                next(it)
            except StopIteration:
                it = iter(batches())
                next(it)
        _sync(device)
        rates.append(iters * batch / (time.perf_counter() - start))
    return rates


def bench_pil(ds, args, device: torch.device) -> list[float]:
    """(a): DataLoader + workers + PIL transforms, batches copied to the device."""
    data = PilDataset(Path(ds.source.root), [r.path for r in ds.train], args.height, args.width, 10)
    loader = DataLoader(
        data,
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )

    def batches():
        for images, _ in loader:
            yield images.to(device, non_blocking=True)

    return measure(batches, device, args.iters, args.repeats, args.batch)


def bench_ours(ds, args, device: torch.device, cache: str) -> tuple[list[float], float]:
    """(b): reidkit's TrainLoader; returns (rates, one-time caching seconds)."""
    start = time.perf_counter()
    loader = TrainLoader(
        ds.train,
        ds.source,
        height=args.height,
        width=args.width,
        batch_size=args.batch,
        device=device,
        cache=cache,
        num_workers=args.workers,
        progress=False,
        augment=BatchAugment(mirror=True, padding=10, random_erasing=0.5),
    )
    setup = time.perf_counter() - start

    def batches():
        for b in loader:
            yield b.images

    return measure(batches, device, args.iters, args.repeats, args.batch), setup


def dataset(args) -> Path:
    """The synthetic benchmark set (generated once, kept in the temp folder)."""
    if args.data:
        return args.data
    root = Path(tempfile.gettempdir()) / f"reidkit_bench_{args.ids}ids_{args.images}"
    if not (root / "query").is_dir():
        print(f"generating {args.images} train images of {args.ids} ids in {root} ...")
        generate_synthetic(
            root,
            num_ids=args.ids,
            train_images=args.images,
            num_test_ids=8,
            img_h=128,
            img_w=64,
            seed=0,
        )
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--ids", type=int, default=751)
    p.add_argument("--images", type=int, default=12936)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=None, help="default: 2 on CPU, 8 on CUDA")
    p.add_argument("--iters", type=int, default=None, help="batches per timed block")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--data", type=Path, default=None, help="use this dataset folder")
    p.add_argument("--quick", action="store_true", help="1,500 images / 100 ids, fewer batches")
    args = p.parse_args()
    if args.quick:
        args.ids, args.images, args.repeats = 100, 1500, 3
    args.workers = args.workers if args.workers is not None else (2 if args.device == "cpu" else 8)
    args.iters = args.iters or (10 if args.device == "cpu" else 50)
    setup_logging(None, console=False)
    device = torch.device(args.device)
    ds = load_dataset(dataset(args))
    rows = [
        (
            "(a) PIL per-sample, DataLoader",
            f"{args.workers} workers",
            bench_pil(ds, args, device),
            None,
        )
    ]
    for cache in ("ram", "device") if device.type == "cuda" else ("ram",):
        rates, setup = bench_ours(ds, args, device, cache)
        rows.append((f"(b) reidkit cache={cache}", f"decode once {setup:.1f}s", rates, setup))
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"\ndata pipeline: {len(ds.train)} train images ({args.ids} ids, 128x64 JPEG) -> "
        f"{args.height}x{args.width}, batch {args.batch}, flip + pad 10/crop + erasing 0.5, "
        f"on {name}; median of {args.repeats} blocks x {args.iters} batches"
    )
    base = statistics.median(rows[0][2])
    print(f"{'pipeline':<34} {'setup':<20} {'img/s (median)':>15} {'min..max':>17} {'vs (a)':>7}")
    for label, setup, rates, _ in rows:
        med = statistics.median(rates)
        print(
            f"{label:<34} {setup:<20} {med:>15,.0f} {min(rates):>8,.0f}..{max(rates):<8,.0f} "
            f"{med / base:>6.1f}x"
        )


if __name__ == "__main__":
    main()
