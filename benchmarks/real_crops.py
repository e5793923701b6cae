"""Do reidkit's synthetic people transfer to real ones? mAP / rank-1 on real pedestrian crops.

The real test set is cut from OpenCV's sample video vtest.avi (frames 200-399) by
`reidkit crops --labelled`: HOG tracklets are the identities, each tracklet's earlier half the
query and its later half the gallery. Side by side, evaluated the same way
(`reidkit eval RUN --data DIR`, the cross-domain protocol):

* ImageNet: torchvision's ImageNet MobileNetV2, no training (the demo recipe's model with
  `imagenet_pretrain`, head untouched: BNNeck at its initial statistics);
* synthetic-trained: the demo recipe (configs/demo.json: that model fine-tuned on
  `reidkit synth --ids 480`: eight times the demo's identities), also scored on its own
  synthetic test set;
* synthetic-trained then adapted: `reidkit adapt --from` that run on the unlabeled crops of
  frames 1-199 (every HOG crop of those frames, no labels), evaluated after every epoch on the
  frames 200-399 set, once per adaptation seed (``--adapt-seeds``, three by default). The row
  shows the last epoch (the test set chooses nothing) of the median seed; each seed's last
  and best epoch (chosen on the test set itself, so optimistic) are printed apart.

Every command is printed before it runs. Frames >= 400 are never read; the adaptation never
reads frames 200-399.

    .venv/bin/python benchmarks/real_crops.py                  # CPU: minutes quiet, ~1 h shared
    .venv/bin/python benchmarks/real_crops.py --reuse          # keep a trained synthetic run
    .venv/bin/python benchmarks/real_crops.py --skip-train     # ImageNet row + data only
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reidkit.config import load_config, save_config  # noqa: E402
from reidkit.models import build_model  # noqa: E402
from reidkit.models.checkpoint import save_checkpoint  # noqa: E402
from reidkit.utils.sample_data import sample_video  # noqa: E402

EVAL_FRAMES, ADAPT_FRAMES = "200:399", "1:199"
DEMO_EPOCHS = json.loads((ROOT / "configs" / "demo.json").read_text())["epoch"]
CROP_OPTIONS = ["--stride", "2", "--min-track", "5", "--max-crops-per-track", "16"]
ADAPT_CROP_OPTIONS = ["--stride", "1", "--min-track", "5"]  # every crop: more to cluster
ADAPT_OPTIONS = [  # k1 ~ the crops one person has (~40 here); docs/adaptation.md
    "adapt.k1=20",
    "adapt.target_bn=false",
    "adapt.iters=20",
    "epoch=8",
    "lr.decay_step=[6]",  # the last two epochs at lr / 10: the last epoch's model settles
    "lr.warmup_epochs=0",
    "progress=false",
]


def reidkit(*args: str) -> None:
    """Run one ``reidkit`` command (printed first), failing loudly."""
    cmd = [sys.executable, "-m", "reidkit", *args]
    print("$ reidkit " + shlex.join(args), flush=True)
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": path})  # this checkout


def build_sets(video: Path, work: Path) -> tuple[Path, Path]:
    """The labelled real test set (frames 200-399) and the unlabeled adaptation set (1-199)."""
    eval_dir, adapt_dir = work / "vtest_eval_200_399", work / "vtest_adapt_1_199_all"
    eval_args = ["--frames", EVAL_FRAMES, "--labelled", *CROP_OPTIONS]
    adapt_args = ["--frames", ADAPT_FRAMES, *ADAPT_CROP_OPTIONS]
    for out, args in ((eval_dir, eval_args), (adapt_dir, adapt_args)):
        if not (out / "crops.json").is_file():
            reidkit("crops", str(video), *args, "--out", str(out))
    return eval_dir, adapt_dir


def imagenet_run(work: Path, data: Path) -> Path:
    """A run folder holding the demo recipe's model straight from ImageNet (no training)."""
    import torch

    run = work / "runs" / "imagenet"
    cfg = load_config(ROOT / "configs" / "demo.json", [f"batches_dir={data}"])
    torch.manual_seed(0)
    model = build_model(cfg, 60).eval()
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.json")
    ckpt = {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": 60, "epoch": 0}
    save_checkpoint(ckpt, run / "best.pth")
    return run


def evaluate(run: Path, data: Path) -> dict[str, float]:
    """``reidkit eval RUN --data DIR`` and its metrics."""
    reidkit("eval", str(run), "--data", str(data), "--device", "cpu")
    return json.loads((run / f"eval_{data.name}.json").read_text())["metrics"]


def train_synthetic(work: Path, synth: Path, ids: int, seed: int, name: str) -> Path:
    """The demo recipe on ``reidkit synth`` data: returns the run folder."""
    reidkit("synth", str(synth), "--ids", str(ids), "--seed", str(seed))
    runs = work / "runs"
    reidkit(
        "train",
        "-c",
        str(ROOT / "configs" / "demo.json"),
        "--sub-working-dir",
        name,
        f"batches_dir={synth}",
        f"working_dir={runs}",
        "progress=false",
        # configs/demo.json unchanged, evaluated once, after its last epoch: saves CPU time
        f"evaluation_params.period={DEMO_EPOCHS}",
    )
    return runs / name


def adapt_run(run: Path, unlabeled: Path, eval_dir: Path, seed: int) -> tuple[dict, dict]:
    """``reidkit adapt --from RUN seed=SEED``: the (last, best) epoch's metrics on ``eval_dir``."""
    name = f"{run.name}_adapt_s{seed}"
    reidkit(
        "adapt",
        "--from",
        str(run),
        "--unlabeled",
        str(unlabeled),
        "--eval-data",
        str(eval_dir),
        "--sub-working-dir",
        name,
        "--overwrite",
        *ADAPT_OPTIONS,
        f"seed={seed}",
    )
    lines = (run.parent / name / "metrics.jsonl").read_text().splitlines()
    scores = [json.loads(x)["eval"] for x in lines if x]
    return scores[-1], max(scores, key=lambda m: m["mAP"])


def median_run(results: list[dict[str, float]]) -> dict[str, float]:
    """The result whose mAP is the median (the lower middle one for an even count)."""
    ordered = sorted(results, key=lambda m: m["mAP"])
    return ordered[(len(ordered) - 1) // 2]


def best_in_domain(run: Path) -> dict[str, float]:
    """The best epoch's metrics on the run's own (synthetic) test set."""
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    return max((r["eval"] for r in records if r.get("eval")), key=lambda m: m["mAP"])


def main() -> None:
    """Command line: build the sets, evaluate both models, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "data" / "real_crops"))
    parser.add_argument("--video", help="vtest.avi (default: found or fetched from opencv-doc)")
    parser.add_argument(
        "--ids", type=int, default=480, help="synthetic training identities (the demo: 60)"
    )
    parser.add_argument("--seed", type=int, default=0, help="reidkit synth seed")
    parser.add_argument("--name", default="synthetic", help="run name of the trained model")
    parser.add_argument(
        "--adapt-seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="one adaptation per seed; the table shows the median (one test set of 150 "
        "queries: a single run moves by +-2 mAP from seed to seed)",
    )
    parser.add_argument("--skip-train", action="store_true", help="ImageNet row only")
    parser.add_argument(
        "--reuse", action="store_true", help="use runs/NAME if it is trained, do not retrain"
    )
    args = parser.parse_args()
    work = Path(args.work).resolve()
    video = Path(args.video) if args.video else sample_video()
    eval_dir, adapt_dir = build_sets(video, work)
    synth = work / f"synth_{args.ids}_s{args.seed}"
    imagenet = evaluate(imagenet_run(work, eval_dir), eval_dir)
    rows = [("ImageNet MobileNetV2 (no training)", imagenet)]
    if not args.skip_train:
        run = work / "runs" / args.name
        if not (args.reuse and (run / "best.pth").is_file()):
            run = train_synthetic(work, synth, args.ids, args.seed, args.name)
        real = evaluate(run, eval_dir)
        own = best_in_domain(run)
        rows.append((f"synthetic-trained (demo recipe, {args.ids} ids)", real))
        print(
            f"synthetic-trained on its own synthetic test set: mAP {100 * own['mAP']:.1f}, "
            f"rank-1 {100 * own['rank1']:.1f}"
        )
        runs = [adapt_run(run, adapt_dir, eval_dir, seed) for seed in args.adapt_seeds]
        for seed, (last, best) in zip(args.adapt_seeds, runs, strict=True):
            print(
                f"adapted, seed {seed}: last epoch mAP {100 * last['mAP']:.1f}, rank-1 "
                f"{100 * last['rank1']:.1f}; best epoch (chosen on the test set) mAP "
                f"{100 * best['mAP']:.1f}"
            )
        label = f"median of {len(runs)} seeds, " if len(runs) > 1 else ""
        rows.append(
            (
                f"synthetic-trained then adapted ({label}last epoch)",
                median_run([r[0] for r in runs]),
            )
        )
    n = rows[0][1]
    print(
        f"\nreal crops: {eval_dir} ({int(n['num_queries'])} queries); adaptation crops: {adapt_dir}"
    )
    print("| model | mAP | rank-1 | vs ImageNet mAP |\n| --- | ---: | ---: | ---: |")
    for name, m in rows:
        delta = 100 * (m["mAP"] - n["mAP"])
        print(f"| {name} | {100 * m['mAP']:.1f} | {100 * m['rank1']:.1f} | {delta:+.1f} |")


if __name__ == "__main__":
    main()
