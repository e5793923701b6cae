"""``reidkit extract`` from a checkpoint vs torchreid's FeatureExtractor: same crops, same net.

Both embed the same real pedestrian crops (``benchmarks/hog_crops.py``: OpenCV's HOG detections
on frames 1-399 of ``vtest.avi``) with OSNet x1.0 at 256x128 on the CPU, untrained weights
(each framework's own OSNet x1.0 implementation of the same architecture), each command in a
fresh process, alternating which goes first:

(a) torchreid 0.2.5: ``FeatureExtractor(model_name="osnet_x1_0", model_path=...)`` called on
    chunks of ``--batch`` file paths (its documented use), features saved with numpy;
(b) ``python -m reidkit extract CKPT CROPS --out F.npz``, what a user runs: imports, restoring
    the model from the checkpoint, decoding, preprocessing, the network, the features file.

The table gives the whole command's wall time (process start to exit) and images/s, medians of
``--repeats``; below it, each network alone on one random batch (eval mode, the ceiling).

    python benchmarks/bench_extract.py                   # 777 crops, 3 repeats
    python benchmarks/bench_extract.py --limit 200 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hog_crops import make_crops
from torchreid_side import ensure_torchreid, run_side

from reidkit.config import validate_config
from reidkit.models import build_model
from reidkit.models.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def write_checkpoint(path: Path, height: int, width: int) -> Path:
    """A reidkit checkpoint of an untrained OSNet x1.0 ReidModel (BNNeck, 751 classes)."""
    cfg = validate_config(
        {
            "batches_dir": ".",
            "img_h": height,
            "img_w": width,
            "model_params": {"backbone": "osnet_x1_0"},
        }
    )
    torch.manual_seed(0)
    model = build_model(cfg, 751)
    state = {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": 751}
    save_checkpoint({**state, "epoch": 0}, path)
    return path


def _env(threads: int) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_reidkit(ckpt: Path, crops: Path, out: Path, a: argparse.Namespace) -> float:
    """Wall seconds of ``python -m reidkit extract`` over the crops folder."""
    cmd = [sys.executable, "-m", "reidkit", "extract", str(ckpt), str(crops), "--out", str(out)]
    cmd += ["--batch-size", str(a.batch), "--no-progress", "--no-resume"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=_env(a.threads), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"reidkit extract failed:\n{done.stderr[-3000:]}")
    return seconds


def run_torchreid(files: Path, work: Path, a: argparse.Namespace, target: Path) -> float:
    """Wall seconds of the torchreid FeatureExtractor process over the same files."""
    side = ["extract", "--files", str(files), "--weights", str(work / "osnet_tr.pth")]
    side += ["--features", str(work / "tr.npy"), "--batch", str(a.batch)]
    side += ["--out", str(work / "tr.json")]
    t0 = time.perf_counter()
    run_side(side, target, a.threads)
    return time.perf_counter() - t0


def model_only(a: argparse.Namespace, target: Path, work: Path) -> dict[str, float]:
    """Images/s of each OSNet x1.0 alone on a random batch (eval mode, inference)."""
    code = (
        "import time, torch, sys\n"
        "from torchreid import reid\n"
        "m = reid.models.build_model('osnet_x1_0', num_classes=1, pretrained=False).eval()\n"
        f"x = torch.randn({a.batch}, 3, 256, 128)\n"
        "ts = []\n"
        "with torch.no_grad():\n"
        "    m(x)\n"
        "    for _ in range(3):\n"
        "        t0 = time.perf_counter(); m(x); ts.append(time.perf_counter() - t0)\n"
        f"print({a.batch} / sorted(ts)[1])\n"
    )
    env = {**_env(a.threads), "PYTHONPATH": str(target)}
    tr = float(
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    if a.threads:
        torch.set_num_threads(a.threads)
    model = build_model(
        validate_config({"batches_dir": ".", "model_params": {"backbone": "osnet_x1_0"}}), 751
    ).eval()
    x = torch.randn(a.batch, 3, 256, 128)
    out = {"torchreid OSNet x1.0 (NCHW)": tr}
    for name, inp in (
        ("NCHW", x),
        ("channels_last", x.contiguous(memory_format=torch.channels_last)),
    ):
        ts = []
        with torch.inference_mode():
            model(inp)
            for _ in range(3):
                t0 = time.perf_counter()
                model(inp)
                ts.append(time.perf_counter() - t0)
        out[f"reidkit OSNet x1.0 ({name})"] = a.batch / statistics.median(ts)
    return out


def main() -> None:
    """Make the crops and the checkpoint, run both sides ``--repeats`` times, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crops", type=Path, default=ROOT / ".bench" / "crops")
    p.add_argument("--max-crops", type=int, default=777)
    p.add_argument("--limit", type=int, default=0, help="use only the first N crops")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS (0: torch default)")
    p.add_argument("--torchreid-dir", type=Path, default=ROOT / ".bench" / "torchreid")
    a = p.parse_args()
    target = ensure_torchreid(a.torchreid_dir)
    make_crops(a.crops, a.max_crops)
    files = sorted(a.crops.glob("*.jpg"))[: a.limit or None]
    load0 = os.getloadavg()[0]
    times: dict[str, list[float]] = {"torchreid FeatureExtractor": [], "reidkit extract": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        crops = work / "crops"
        crops.mkdir()
        for f in files:
            (crops / f.name).symlink_to(f.resolve())
        listing = work / "files.txt"
        listing.write_text("\n".join(str(f.resolve()) for f in files))
        ckpt = write_checkpoint(work / "osnet.pth", 256, 128)
        for r in range(a.repeats):
            order = ["reidkit extract", "torchreid FeatureExtractor"]
            for name in order if r % 2 == 0 else order[::-1]:
                if name == "reidkit extract":
                    t = run_reidkit(ckpt, crops, work / "rk.npz", a)
                else:
                    t = run_torchreid(listing, work, a, target)
                times[name].append(t)
                print(f"repeat {r + 1}: {name} {t:.1f} s", flush=True)
        ceiling = model_only(a, target, work)
    load1 = os.getloadavg()[0]
    n = len(files)
    print(
        f"\n{n} real crops, OSNet x1.0 256x128, batch {a.batch}, CPU threads "
        f"{a.threads or torch.get_num_threads()}, median of {a.repeats}; "
        f"load average {load0:.1f} -> {load1:.1f}"
    )
    print(f"{'command':<28} {'wall s':>8} {'img/s':>7} {'vs torchreid':>13}")
    base = statistics.median(times["torchreid FeatureExtractor"])
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:<28} {t:>8.1f} {n / t:>7.1f} {base / t:>12.2f}x")
    print("\nnetwork alone, random batch (img/s):")
    for name, v in ceiling.items():
        print(f"  {name:<36} {v:7.1f}")


if __name__ == "__main__":
    main()
