"""The torchreid 0.2.5 side of the side-by-side benchmarks, run in its own process.

It imports torchreid (and never reidkit) from the folder ``ensure_torchreid`` installs it into,
so the two frameworks never share a module. Two jobs, each writing one JSON file:

    PYTHONPATH=.bench/torchreid python benchmarks/torchreid_side.py train --root R --out r.json
    PYTHONPATH=.bench/torchreid python benchmarks/torchreid_side.py extract --files list.txt ...

``train`` runs torchreid's own ``ImageTripletEngine.run`` on a Market-1501 folder and times
each epoch's ``train()`` and ``test()``; ``extract`` runs ``FeatureExtractor`` over a list of
image files in chunks and times it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = [
    "torchreid==0.2.5",
    "gdown==6.5.1",  # imported by torchreid's dataset modules
    "requests==2.34.2",  # gdown's imports
    "beautifulsoup4==4.15.0",
]


def ensure_torchreid(target: Path) -> Path:
    """Install torchreid 0.2.5 and its few pure-Python imports into ``target`` (once), with
    ``pip --no-deps --target``: nothing goes into the project's environment."""
    if not (target / "torchreid" / "__init__.py").is_file():
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
        subprocess.run([*cmd, str(target), *PACKAGES], check=True)
    return target


def run_side(args: list[str], target: Path, threads: int | None) -> dict:
    """Run this file with ``args`` in a fresh process that sees only torchreid's folder."""
    out = Path(args[args.index("--out") + 1])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"torchreid side failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def train(a: argparse.Namespace) -> dict:
    """torchreid's engine: ResNet-18 (last stride 2), CE+LS + triplet, Adam, PK sampling."""
    from torchreid import reid

    class TimedEngine(reid.engine.ImageTripletEngine):
        """torchreid's triplet engine with each epoch's train() and test() timed."""

        train_s: list[float] = []
        test_s: list[float] = []
        rank1: list[float] = []

        def train(self, *args, **kwargs):
            t0 = time.perf_counter()
            super().train(*args, **kwargs)
            self.train_s.append(time.perf_counter() - t0)

        def test(self, *args, **kwargs):
            t0 = time.perf_counter()
            r1 = super().test(*args, **kwargs)
            self.test_s.append(time.perf_counter() - t0)
            self.rank1.append(float(r1))
            return r1

    dm = reid.data.ImageDataManager(
        root=a.root,
        sources="market1501",
        height=a.height,
        width=a.width,
        transforms=["random_flip", "random_crop", "random_erase"],
        use_gpu=False,
        batch_size_train=a.batch,
        batch_size_test=a.test_batch,
        workers=a.workers,
        num_instances=4,
        train_sampler="RandomIdentitySampler",
    )
    model = reid.models.build_model(
        "resnet18", num_classes=dm.num_train_pids, loss="triplet", pretrained=False
    )
    opt = reid.optim.build_optimizer(model, optim="adam", lr=3.5e-4, weight_decay=5e-4)
    sched = reid.optim.build_lr_scheduler(opt, lr_scheduler="single_step", stepsize=1000)
    engine = TimedEngine(
        dm, model, opt, margin=0.3, weight_t=1, weight_x=1, scheduler=sched, use_gpu=False
    )
    engine.run(save_dir=a.save_dir, max_epoch=a.epochs, eval_freq=1, print_freq=10**6)
    batches = len(dm.train_loader)
    return {
        "train_s": engine.train_s,
        "test_s": engine.test_s,
        "images_per_epoch": batches * a.batch,
        "rank1": engine.rank1,
        "num_query": len(dm.test_loader["market1501"]["query"].dataset),
        "num_gallery": len(dm.test_loader["market1501"]["gallery"].dataset),
    }


def extract(a: argparse.Namespace) -> dict:
    """torchreid's FeatureExtractor over the listed files, ``a.batch`` paths per call."""
    import numpy as np
    import torch
    from torchreid import reid

    files = Path(a.files).read_text().splitlines()
    t0 = time.perf_counter()
    weights = Path(a.weights)
    if not weights.is_file():  # the untrained network's own weights: no download
        torch.manual_seed(0)
        net = reid.models.build_model("osnet_x1_0", num_classes=1, pretrained=False)
        torch.save(net.state_dict(), weights)
    extractor = reid.utils.FeatureExtractor(
        model_name="osnet_x1_0",
        model_path=str(weights),
        image_size=(a.height, a.width),
        device="cpu",
        verbose=False,
    )
    t1 = time.perf_counter()
    feats = [extractor(files[s : s + a.batch]).numpy() for s in range(0, len(files), a.batch)]
    t2 = time.perf_counter()
    np.save(a.features, np.concatenate(feats))
    return {"setup_s": t1 - t0, "extract_s": t2 - t1, "images": len(files)}


def main() -> None:
    """Parse the job, run it, write its JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="job", required=True)
    t = sub.add_parser("train")
    t.add_argument("--root", required=True, help="folder holding market1501/")
    t.add_argument("--save-dir", required=True)
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--test-batch", type=int, default=100)
    t.add_argument("--height", type=int, default=128)
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--out", required=True)
    e = sub.add_parser("extract")
    e.add_argument("--files", required=True, help="text file, one image path per line")
    e.add_argument("--weights", required=True, help="state dict file (written if missing)")
    e.add_argument("--features", required=True, help=".npy to write")
    e.add_argument("--batch", type=int, default=64)
    e.add_argument("--height", type=int, default=256)
    e.add_argument("--width", type=int, default=128)
    e.add_argument("--out", required=True)
    a = p.parse_args()
    result = train(a) if a.job == "train" else extract(a)
    Path(a.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
