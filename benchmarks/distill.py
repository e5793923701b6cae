"""Does distillation close the gap between a small student and its teacher? Same budget, seeds.

Three models trained on the same `reidkit synth` data with the same recipe and epochs, once per
seed (three by default):

* teacher: MobileNetV2 from torchvision's ImageNet weights (the only ImageNet file offline; a
  ResNet-50 would start from scratch like the student, at 3 img/s here; docs/benchmarks.md),
  one per seed or, with `--teacher-seed`, one for every student seed (the model one has);
* student alone: OSNet-x0.25 from scratch (a quarter of the teacher's multiply-adds, 6% of its
  parameters; MobileNetV3-Small from scratch kept near-constant eval embeddings for the first
  hundreds of steps here: torchvision's BatchNorm momentum 0.01), the ordinary `reidkit train`;
* student distilled: the same student, `reidkit distill --teacher` that seed's teacher.

Each is scored on the synthetic test set (its last epoch: the test set chooses nothing) and on
real pedestrians, the labelled crops of vtest.avi frames 200-399 (`reidkit crops --labelled`,
the protocol of benchmarks/real_crops.py; `reidkit eval RUN --data DIR`). The table shows the
median and min..max over seeds and the share of the student-teacher mAP gap the distilled
student recovers. No setting is chosen on those sets: `--select` compares distill settings on
a validation set of other synthetic people (`reidkit synth --seed 100`) and DISTILL_KEYS holds
its pick. `--label-free` adds a row: the student-alone run distilled without labels on the
unlabeled crops of frames 1-199 (never 200+).

`--throughput` exports the teacher to fp32 ONNX and the distilled student to INT8 (ONNX
Runtime and OpenVINO, each through `reidkit export`'s accuracy gate) and times them in one
process, interleaved (benchmarks/bench_infer.py's machinery): run it on a quiet machine.

    .venv/bin/python benchmarks/distill.py --select          # validation: pick the settings
    .venv/bin/python benchmarks/distill.py                   # accuracy table (3 seeds)
    .venv/bin/python benchmarks/distill.py --reuse --throughput --skip-real   # speed only
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

# the defaults: --select on the validation people kept them (docs/benchmarks.md)
DISTILL_KEYS: list[str] = []
CANDIDATES = {  # --select: name -> distill overrides
    "defaults (kd 1, T 4, feature 1 cosine, relation 1)": [],
    "kd only": ["distill.feature_weight=0", "distill.relation_weight=0"],
    "feature + relation only": ["distill.kd_weight=0"],
    "feature 5 (kd 1, relation 1)": ["distill.feature_weight=5"],
}
EVAL_FRAMES, FREE_FRAMES = "200:399", "1:199"
THREAD = threading.local()  # .log: where this thread's reidkit commands write (--jobs)
CROP_OPTIONS = ["--stride", "2", "--min-track", "5", "--max-crops-per-track", "16"]


def reidkit(*args: str) -> None:
    """Run one ``reidkit`` command of this checkout (printed first), failing loudly; its
    output goes to this thread's log file when one is set (``--jobs``)."""
    print("$ reidkit " + shlex.join(args), flush=True)
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "reidkit", *args]
    env = {**os.environ, "PYTHONPATH": path}
    log = getattr(THREAD, "log", None)
    if log is None:
        subprocess.run(cmd, check=True, env=env)
        return
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ reidkit " + shlex.join(args) + "\n")
        out.flush()
        subprocess.run(cmd, check=True, env=env, stdout=out, stderr=subprocess.STDOUT)


def recipe(args: argparse.Namespace, data: Path, work: Path, epochs: int) -> dict:
    """The shared recipe (configs/demo.json's, at --size): Adam, warm-up, BNNeck, CE +
    triplet, PK batches, flip + pad-crop + random erasing, lr / 10 for the last fifth of the
    epochs (at least one); evaluated after the last epoch only."""
    h, w = (int(v) for v in args.size.split("x"))
    return {
        "batches_dir": str(data),
        "working_dir": str(work),
        "img_h": h,
        "img_w": w,
        "batch_size": 32,
        "epoch": epochs,
        "optimizer": "adam",
        "lr": {
            "base_lr": 0.00035,
            "fc_lr": 0.0035,
            "decay_step": [max(1, epochs - max(1, round(epochs / 5)))],  # the demo's 8 of 10
            "decay_unit": "epoch",
            "warmup_epochs": 1,
        },
        "weight_decay": 0.0005,
        "model_params": {"backbone": args.student, "last_stride": 1},
        "data_augmentation": {"mirror": True, "padding": 10 * h // 128, "random_erasing": 0.5},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "data": {"cache": "ram", "num_workers": 1},
        "evaluation_params": {"type": "market_evaluate", "metric": "mAP", "period": epochs},
        "progress": False,
        "device": args.device,
    }


def write_params(path: Path, params: dict) -> Path:
    """Write a params file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(params, indent=1), encoding="utf-8")
    return path


def params_files(args: argparse.Namespace, data: Path, runs: Path) -> tuple[Path, Path]:
    """(teacher params, student params) for ``data``, runs under ``runs``."""
    student = recipe(args, data, runs, args.epochs)
    teacher = {**recipe(args, data, runs, args.teacher_epochs), "imagenet_pretrain": True}
    teacher["model_params"] = {**student["model_params"], "backbone": args.teacher}
    return (
        write_params(runs / "params_teacher.json", teacher),
        write_params(runs / "params_student.json", student),
    )


def done(run: Path) -> bool:
    """Whether ``run`` finished (its last epoch's record is written)."""
    return (run / "best.pth").is_file() and (run / "report").is_dir()


def train(params: Path, run: Path, seed: int, reuse: bool, *extra: str) -> Path:
    """``reidkit train`` (skipped with --reuse when finished)."""
    if not (reuse and done(run)):
        reidkit(
            "train",
            "-c",
            str(params),
            "--sub-working-dir",
            run.name,
            "--overwrite",
            f"seed={seed}",
            *extra,
        )
    return run


def distill(params: Path, teacher: Path, run: Path, seed: int, reuse: bool, *extra: str) -> Path:
    """``reidkit distill --teacher`` (skipped with --reuse when finished)."""
    if not (reuse and done(run)):
        reidkit(
            "distill",
            "-c",
            str(params),
            "--teacher",
            str(teacher),
            "--sub-working-dir",
            run.name,
            "--overwrite",
            f"seed={seed}",
            *extra,
        )
    return run


def last_eval(run: Path) -> dict[str, float]:
    """The last epoch's metrics on the run's own test set."""
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    return [r["eval"] for r in records if r.get("eval")][-1]


def real_eval(run: Path, data: Path) -> dict[str, float]:
    """``reidkit eval RUN --data DIR`` (cached in the run folder)."""
    out = run / f"eval_{data.name}.json"
    if not out.is_file():
        reidkit("eval", str(run), "--data", str(data), "--device", "cpu")
    return json.loads(out.read_text())["metrics"]


def spread(values: list[float]) -> str:
    """``median [min..max]`` in points."""
    v = [100 * x for x in values]
    if len(v) == 1:
        return f"{v[0]:.1f}"
    return f"{statistics.median(v):.1f} [{min(v):.1f}..{max(v):.1f}]"


def recovered(teacher: float, alone: float, distilled: float) -> str:
    """The share of the teacher - student gap the distilled student closes."""
    gap = teacher - alone
    return f"{100 * (distilled - alone) / gap:.0f}%" if abs(gap) > 1e-9 else "-"


def table(rows: dict[str, dict[str, list[float]]], columns: list[str]) -> None:
    """Markdown table: one row per model, median [min..max] per column, gap recovered."""
    print("| model | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for name, cols in rows.items():
        print(f"| {name} | " + " | ".join(spread(cols[c]) for c in columns if c in cols) + " |")
    t, a, d = (rows.get(k) for k in ("teacher", "student alone", "student distilled"))
    if t and a and d:
        for c in columns:
            med = [statistics.median(x[c]) for x in (t, a, d)]
            teach = t[c] * len(a[c]) if len(t[c]) == 1 else t[c]  # one teacher for all seeds
            per_seed = [recovered(*x) for x in zip(teach, a[c], d[c], strict=True)]
            print(
                f"gap recovered ({c}): {recovered(*med)} of the medians; per seed "
                f"{', '.join(per_seed)}"
            )


def select(args: argparse.Namespace, work: Path) -> None:
    """Compare the distill CANDIDATES on validation people (seed 0): mAP on their test set."""
    data = work / "synth_val"
    if not (data / "query").is_dir():
        reidkit("synth", str(data), "--ids", str(args.ids), "--seed", "100")
    runs = work / "runs_val"
    tp, sp = params_files(args, data, runs)
    teacher = train(tp, runs / "teacher_s0", 0, args.reuse)
    rows = {
        "teacher": last_eval(teacher),
        "student alone": last_eval(train(sp, runs / "student_s0", 0, args.reuse)),
    }
    for i, (name, keys) in enumerate(CANDIDATES.items()):
        run = distill(sp, teacher, runs / f"distilled_c{i}_s0", 0, args.reuse, *keys)
        rows[f"distilled: {name}"] = last_eval(run)
    print(f"\nvalidation people ({data}), seed 0, {args.epochs} epochs at {args.size}")
    print("| model | mAP | rank-1 |\n| --- | ---: | ---: |")
    for name, m in rows.items():
        print(f"| {name} | {100 * m['mAP']:.1f} | {100 * m['rank1']:.1f} |")


def real_sets(work: Path) -> tuple[Path, Path]:
    """The labelled real test set (frames 200-399) and the unlabeled crops of frames 1-199."""
    from reidkit.utils.sample_data import sample_video

    video = sample_video()
    eval_dir, free_dir = work / "vtest_eval_200_399", work / "vtest_unlabeled_1_199"
    if not (eval_dir / "crops.json").is_file():
        reidkit(
            "crops",
            str(video),
            "--frames",
            EVAL_FRAMES,
            "--labelled",
            *CROP_OPTIONS,
            "--out",
            str(eval_dir),
        )
    if not (free_dir / "crops.json").is_file():
        reidkit(
            "crops",
            str(video),
            "--frames",
            FREE_FRAMES,
            "--stride",
            "1",
            "--min-track",
            "5",
            "--out",
            str(free_dir),
        )
    return eval_dir, free_dir


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "data" / "distill_bench"))
    parser.add_argument("--ids", type=int, default=60, help="synthetic training identities")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every student run")
    parser.add_argument(
        "--teacher-epochs", type=int, default=10, help="epochs of the teacher (the demo's 10)"
    )
    parser.add_argument("--device", default="cpu", help="device of every run (cpu, cuda, auto)")
    parser.add_argument("--size", default="128x64", help="input size HxW of every model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher", default="mobilenet_v2", help="teacher backbone (ImageNet)")
    parser.add_argument("--student", default="osnet_x0_25", help="student (from scratch)")
    parser.add_argument("--select", action="store_true", help="validation comparison only")
    parser.add_argument("--label-free", action="store_true", help="add the label-free row")
    parser.add_argument("--skip-real", action="store_true", help="no real-crop evaluation")
    parser.add_argument("--throughput", action="store_true", help="speed part (quiet machine)")
    parser.add_argument("--reuse", action="store_true", help="keep finished runs")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs trained at a time (output: runs/<run>.log)"
    )
    parser.add_argument(
        "--teacher-seed", type=int, help="one teacher (this seed) for every student seed"
    )
    return parser.parse_args()


def _logged(runs: Path, name: str, jobs: int, fn, *args):  # noqa: ANN001, ANN202
    """``fn(*args)`` with this thread's reidkit output in ``runs/<name>.log`` when jobs > 1."""
    THREAD.log = runs / f"{name}.log" if jobs > 1 else None
    return fn(*args)


def train_all(args: argparse.Namespace, runs: Path, tp: Path, sp: Path) -> dict[str, list[Path]]:
    """The teachers and the students alone (``--jobs`` runs at a time), then each seed's
    distilled student (from that seed's teacher, or ``--teacher-seed``'s)."""
    teacher_seeds = args.seeds if args.teacher_seed is None else [args.teacher_seed]
    first = [(tp, runs / f"teacher_s{s}", s) for s in teacher_seeds]
    first += [(sp, runs / f"student_s{s}", s) for s in args.seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done_first = list(
            pool.map(lambda t: _logged(runs, t[1].name, args.jobs, train, *t, args.reuse), first)
        )
        teachers = done_first[: len(teacher_seeds)]
        teacher_of = {
            s: teachers[0 if args.teacher_seed is not None else i] for i, s in enumerate(args.seeds)
        }
        second = [(sp, teacher_of[s], runs / f"distilled_s{s}", s) for s in args.seeds]
        distilled = list(
            pool.map(
                lambda t: _logged(
                    runs, t[2].name, args.jobs, distill, *t, args.reuse, *DISTILL_KEYS
                ),
                second,
            )
        )
    return {
        "teacher": teachers,
        "student alone": done_first[len(teacher_seeds) :],
        "student distilled": distilled,
        "_teacher_of": [teacher_of[s] for s in args.seeds],
    }


def score(
    trained: dict[str, list[Path]], eval_dir: Path | None
) -> tuple[dict[str, dict[str, list[float]]], list[str]]:
    """Per model, per column, one value per seed: synthetic (last epoch) and real mAP / rank-1."""
    columns = ["synthetic mAP", "synthetic rank-1"]
    if eval_dir is not None:
        columns += ["real mAP", "real rank-1"]
    rows: dict[str, dict[str, list[float]]] = {}
    for name, found in trained.items():
        own = [last_eval(r) for r in found]
        rows[name] = {
            "synthetic mAP": [m["mAP"] for m in own],
            "synthetic rank-1": [m["rank1"] for m in own],
        }
        if eval_dir is not None:
            real = [real_eval(r, eval_dir) for r in found]
            rows[name]["real mAP"] = [m["mAP"] for m in real]
            rows[name]["real rank-1"] = [m["rank1"] for m in real]
    return rows, columns


def main() -> None:
    """Train / distil every seed, evaluate, print the table (and the speed table)."""
    args = parse_args()
    work = Path(args.work).resolve()
    if args.select:
        select(args, work)
        return
    data = work / f"synth_{args.ids}"
    if not (data / "query").is_dir():
        reidkit("synth", str(data), "--ids", str(args.ids), "--seed", "0")
    runs = work / "runs"
    tp, sp = params_files(args, data, runs)
    trained = train_all(args, runs, tp, sp)
    eval_dir = free_dir = None
    if not args.skip_real:
        eval_dir, free_dir = real_sets(work)
    teacher_of = trained.pop("_teacher_of")
    if args.label_free and free_dir is not None:
        pairs = zip(teacher_of, trained["student alone"], args.seeds, strict=True)
        trained["student alone, then distilled label-free on real crops 1-199"] = [
            free_distill(sp, t, s, free_dir, seed, args.reuse) for t, s, seed in pairs
        ]
    rows, columns = score(trained, eval_dir)
    print(
        f"\n{args.teacher} (ImageNet, {args.teacher_epochs} epochs) -> {args.student} (scratch, "
        f"{args.epochs} epochs), {args.ids} synthetic ids at {args.size}, seeds {args.seeds}; "
        f"real crops: {eval_dir}"
    )
    table(rows, columns)
    if args.throughput:
        from distill_speed import speed_table

        speed_table(trained["teacher"][0], trained["student distilled"][0], work)


def free_distill(
    params: Path, teacher: Path, student: Path, crops: Path, seed: int, reuse: bool
) -> Path:
    """The student-alone run distilled without labels on the unlabeled real crops."""
    run = student.parent / f"{student.name}_free"
    if not (reuse and (run / "best.pth").is_file()):
        reidkit(
            "distill",
            "-c",
            str(params),
            "--teacher",
            str(teacher),
            "--unlabeled",
            str(crops),
            "--sub-working-dir",
            run.name,
            "--overwrite",
            f"seed={seed}",
            f"pretrain_snapshot={student / 'best.pth'}",
            "epoch=4",
            "lr.decay_step=[3]",
            "lr.warmup_epochs=0",
            *DISTILL_KEYS,
        )
    return run


if __name__ == "__main__":
    main()
