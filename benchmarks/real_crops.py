"""Real pedestrian crops, under a protocol that cannot tune on its own test: ImageNet features,
the synthetic-trained demo model, and `reidkit adapt` (crops; crops with tracklets).

Frames 1-399 of OpenCV's vtest.avi are cut into ``FOLDS`` disjoint frame ranges. For each
range `reidkit crops` writes a labelled test set (``--labelled``: HOG tracklets are the
identities, each tracklet's earlier half the query, its later half the gallery) and the
unlabeled crops of the same frames (what a user adapts on: their own footage, no labels),
once with the tracklet names `reidkit crops` writes and once renamed without them.

Every adaptation setting is a *candidate* (``CANDIDATES``: explicit overrides, so the
comparison does not depend on the code's current defaults). Each candidate runs on every
range and seed: `reidkit adapt --from DEMO_RUN --unlabeled CROPS` plus its overrides, no
test set during adaptation (the last epoch is the model), then `reidkit eval RUN --data
TEST`. For a held-out range the candidate is chosen by its median mAP on the *other*
ranges, and only its held-out scores are reported: no number in the table was chosen on the
frames it is measured on. The table gives the median and min..max over ranges x seeds; the
gain over ImageNet is paired (same range). Frames >= 400 are never read: they are kept for
an independent check of the default commands.

    .venv/bin/python benchmarks/real_crops.py                   # everything (CPU: hours)
    .venv/bin/python benchmarks/real_crops.py --seeds 0 --candidates default
    .venv/bin/python benchmarks/real_crops.py --tracklet-eval   # + `reidkit eval --tracklets`

Runs are kept under ``--work``; a finished run (its eval file written) is not run again, so
an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reidkit.config import load_config, save_config  # noqa: E402
from reidkit.data.crops import parse_crop_name  # noqa: E402
from reidkit.models import build_model  # noqa: E402
from reidkit.models.checkpoint import save_checkpoint  # noqa: E402
from reidkit.utils.sample_data import sample_video  # noqa: E402

FOLDS = ((1, 133), (134, 266), (267, 399))  # frames 1-399 only
EVAL_OPTIONS = ["--labelled", "--stride", "2", "--min-track", "5", "--max-crops-per-track", "16"]
CROP_OPTIONS = ["--stride", "2", "--min-track", "5"]  # every crop of every second frame
# candidate adaptation recipes: name -> (crop folder kind, overrides of `reidkit adapt`)
AUTO = ["adapt.eps=auto"]
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "crops/q=0.8": (
        "plain",
        ["adapt.target_bn=false", "adapt.k1=20", *AUTO, "adapt.eps_quantile=0.8"],
    ),
    "crops/q=0.9": (
        "plain",
        ["adapt.target_bn=false", "adapt.k1=20", *AUTO, "adapt.eps_quantile=0.9"],
    ),
    # the defaults before this protocol (target BatchNorm, k1 30), eps chosen from the data
    "crops/bn-on,k1=30": (
        "plain",
        ["adapt.target_bn=true", "adapt.k1=30", *AUTO, "adapt.eps_quantile=0.9"],
    ),
    "tracklets/bn-off": ("tracklets", ["adapt.target_bn=false", *AUTO]),
    "tracklets/bn-on": ("tracklets", ["adapt.target_bn=true", *AUTO]),
    # what `reidkit adapt --from RUN --unlabeled DIR` does with no setting at all
    "default/crops": ("plain", []),
    "default/tracklets": ("tracklets", []),
}
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
}


def reidkit(*args: str, log: Path | None = None) -> None:
    """Run one ``reidkit`` command of this checkout (printed first), failing loudly."""
    print("$ reidkit " + shlex.join(args), flush=True)
    cmd = [sys.executable, "-m", "reidkit", *args]
    if log is None:
        subprocess.run(cmd, check=True, env=ENV)
        return
    with log.open("w") as out:
        done = subprocess.run(cmd, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): see {log}")


def fold_name(fold: tuple[int, int]) -> str:
    """``A_B`` of frames A..B."""
    return f"{fold[0]}_{fold[1]}"


def build_fold(video: Path, work: Path, fold: tuple[int, int]) -> dict[str, Path]:
    """The range's labelled test set, its tracklet-named crops, and the same crops renamed
    without tracklets (``crop_<n>.jpg``, in frame order)."""
    name, frames = fold_name(fold), f"{fold[0]}:{fold[1]}"
    sets = {
        "eval": work / f"eval_{name}",
        "tracklets": work / f"crops_s2_{name}",
        "plain": work / f"plain_s2_{name}",
    }
    for key, options in (("eval", EVAL_OPTIONS), ("tracklets", CROP_OPTIONS)):
        if not (sets[key] / "crops.json").is_file():
            reidkit("crops", str(video), "--frames", frames, *options, "--out", str(sets[key]))
    plain = sets["plain"]
    if not plain.is_dir():
        tmp = plain.with_name(plain.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        named = sorted(sets["tracklets"].glob("f*.jpg"))
        for n, f in enumerate(sorted(named, key=lambda p: parse_crop_name(p.name) or (0, 0))):
            shutil.copy(f, tmp / f"crop_{n:06d}.jpg")
        tmp.rename(plain)
    return sets


def imagenet_run(work: Path, data: Path) -> Path:
    """A run folder holding the demo recipe's model straight from ImageNet (no training)."""
    import torch

    run = work / "runs" / "imagenet"
    if (run / "best.pth").is_file():
        return run
    cfg = load_config(ROOT / "configs" / "demo.json", [f"batches_dir={data}"])
    torch.manual_seed(0)
    model = build_model(cfg, 60).eval()
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.json")
    ckpt = {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": 60, "epoch": 0}
    save_checkpoint(ckpt, run / "best.pth")
    return run


def demo_run(work: Path, ids: int) -> Path:
    """The demo recipe (configs/demo.json, as `make demo`) on `reidkit synth --ids IDS`."""
    run = work / "runs" / f"demo_{ids}"
    if (run / "best.pth").is_file() and (run / "last.pth").is_file():
        return run
    synth = work / f"synth_{ids}_s0"
    if not (synth / "bounding_box_train").is_dir():
        reidkit("synth", str(synth), "--ids", str(ids), "--seed", "0")
    epochs = json.loads((ROOT / "configs" / "demo.json").read_text())["epoch"]
    reidkit(
        "train", "-c", str(ROOT / "configs" / "demo.json"), "--sub-working-dir", run.name,
        f"batches_dir={synth}", f"working_dir={run.parent}", "progress=false",
        f"evaluation_params.period={epochs}", "--overwrite",
    )  # fmt: skip
    return run


def evaluate(run: Path, data: Path, tracklets: bool = False) -> dict[str, float]:
    """``reidkit eval RUN --data DIR`` (``--tracklets``: tracklet-level) and its metrics."""
    out = run / f"eval_{data.name}{'_tracklets' if tracklets else ''}.json"
    if not out.is_file():
        extra = ["--tracklets"] if tracklets else []
        reidkit(
            "eval", str(run), "--data", str(data), "--device", "cpu", "--output", str(out),
            "--no-html", *extra, log=run.parent / f"{out.stem}_{run.name}.log",
        )  # fmt: skip
    return json.loads(out.read_text())["metrics"]


def adapt(start: Path, crops: Path, overrides: list[str], seed: int, name: str) -> Path:
    """``reidkit adapt --from START --unlabeled CROPS`` + overrides: the adapted run."""
    run, done = start.parent / name, start.parent / f"{name}.done"
    if done.is_file():
        return run
    reidkit(
        "adapt", "--from", str(start), "--unlabeled", str(crops), "--sub-working-dir", name,
        "--overwrite", *overrides, "progress=false", f"seed={seed}",
        log=start.parent / f"{name}.log",
    )  # fmt: skip
    done.write_text("ok\n")
    return run


def same_as_default(start: Path, crops: Path, cand: str) -> bool:
    """Whether ``reidkit adapt --from START --unlabeled CROPS`` with no setting resolves to the
    same config as candidate ``cand`` (so the candidate's runs are the default command's)."""
    from reidkit.app.adapt import adapt_config

    def resolved(overrides: list[str]) -> dict:
        data = adapt_config(None, start, overrides, unlabeled=crops, sub_working_dir="x").to_dict()
        if data["adapt"]["target_bn"] == "auto":  # on for crops, off for whole tracklets
            data["adapt"]["target_bn"] = CANDIDATES[cand][0] == "plain"
        return data

    return resolved(CANDIDATES[cand][1]) == resolved([])


def spread(values: list[float], sign: str = "") -> str:
    """``median (min..max)`` in percent (``sign`` "+": signed numbers)."""
    v = [100 * x for x in values]
    return f"{statistics.median(v):{sign}.1f} ({min(v):{sign}.1f}..{max(v):{sign}.1f})"


def choose(scores: dict[str, dict[str, list[float]]], held: str, kind: str) -> str:
    """The candidate of ``kind`` whose median mAP over the ranges other than ``held`` is best."""
    pool = {c: s for c, s in scores.items() if c.startswith(kind + "/")}

    def other(c: str) -> float:
        return statistics.median(v for f, vs in pool[c].items() if f != held for v in vs)

    return max(sorted(pool), key=other)


def run_one(
    args: argparse.Namespace, start: Path, sets: dict[str, Path], cand: str, fold: str, seed: int
) -> dict[str, float]:
    """One candidate on one range and seed: adapt (or reuse), evaluate, return the metrics."""
    kind, overrides = CANDIDATES[cand]
    name = f"adapt_{cand.replace('/', '-').replace(',', '_').replace('=', '')}_{fold}_s{seed}"
    run = adapt(start, sets[kind], overrides, seed, name)
    m = evaluate(run, sets["eval"])
    if args.tracklet_eval:
        t = evaluate(run, sets["eval"], tracklets=True)
        m = {**m, **{f"tracklet_{k}": v for k, v in t.items()}}
    print(f"{cand} frames {fold} seed {seed}: mAP {100 * m['mAP']:.1f}", flush=True)
    return m


def cross(
    args: argparse.Namespace, start: Path, folds: dict[str, dict[str, Path]], cand: str
) -> dict[str, list[dict[str, float]]]:
    """Per range R: the runs of ``cand`` adapted on the *other* ranges' crops (every seed),
    scored on R's test set: a model adapted on earlier footage of the camera, then used on
    new frames and mostly new people (its tracklets were never the adaptation's labels)."""
    out: dict[str, list[dict[str, float]]] = {}
    for held, sets in folds.items():
        out[held] = []
        for fold, other in folds.items():
            if fold == held:
                continue
            for seed in args.seeds:
                run_one(args, start, other, cand, fold, seed)  # adapt on that range (or reuse)
                name = f"adapt_{cand.replace('/', '-').replace(',', '_').replace('=', '')}"
                run = start.parent / f"{name}_{fold}_s{seed}"
                m = evaluate(run, sets["eval"])
                print(f"{cand} adapted on {fold} seed {seed}, scored on {held}: "
                      f"mAP {100 * m['mAP']:.1f}", flush=True)  # fmt: skip
                out[held].append(m)
    return out


def held_out(
    args: argparse.Namespace, start: Path, folds: dict[str, dict[str, Path]], kind: str
) -> tuple[dict[str, list[dict[str, float]]], dict[str, str], dict[str, dict[str, list[float]]]]:
    """Per range: the ``kind`` candidate chosen on the other ranges (seeds ``select_seeds``)
    and its scores on that range for ``seeds``; also every candidate's selection scores."""
    pool = [c for c in args.candidates if c.startswith(kind + "/")]
    if not pool:
        return {}, {}, {}
    maps = {
        c: {f: [run_one(args, start, sets, c, f, s)["mAP"] for s in args.select_seeds]
            for f, sets in folds.items()}
        for c in pool
    }  # fmt: skip
    picked = {f: choose(maps, f, kind) for f in folds}
    scores = {
        f: [run_one(args, start, folds[f], c, f, s) for s in args.seeds] for f, c in picked.items()
    }
    return scores, picked, maps


def table(
    base: dict[str, dict[str, dict[str, float]]],
    rows: list[tuple[str, dict[str, list[dict[str, float]]]]],
    metric: str = "mAP",
) -> list[str]:
    """Markdown rows: median (min..max) over ranges x seeds, and the paired gain over ImageNet."""
    out = [
        f"| model | {metric} | rank-1 | {metric} - ImageNet {metric} |",
        "| --- | ---: | ---: | ---: |",
    ]
    rank = "rank1" if metric == "mAP" else metric.replace("mAP", "rank1")
    imnet = base["imagenet"]
    for label, per_fold in rows:
        vals = [m for ms in per_fold.values() for m in ms]
        gains = [m[metric] - imnet[f][metric] for f, ms in per_fold.items() for m in ms]
        gain = "-" if label.startswith("ImageNet") else spread(gains, "+")
        out.append(
            f"| {label} | {spread([m[metric] for m in vals])} | "
            f"{spread([m[rank] for m in vals])} | {gain} |"
        )
    return out


def main() -> None:
    """Command line: build the ranges' sets, run the grid, print the protocol's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "data" / "protocol"))
    parser.add_argument("--video", help="vtest.avi (default: found or fetched from opencv-doc)")
    parser.add_argument("--ids", type=int, default=60, help="synthetic identities (demo: 60)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the reported runs"
    )
    parser.add_argument(
        "--select-seeds", type=int, nargs="+", default=[0],
        help="seeds on which every candidate runs to be chosen (on the other ranges)",
    )  # fmt: skip
    parser.add_argument(
        "--candidates", nargs="*", default=[c for c in CANDIDATES if not c.startswith("default")],
        choices=list(CANDIDATES), help="adaptation recipes to run (default: the grid)",
    )  # fmt: skip
    parser.add_argument(
        "--tracklet-eval", action="store_true",
        help="also score every run by `reidkit eval --tracklets` (tracklet-level)",
    )  # fmt: skip
    parser.add_argument(
        "--folds", nargs="+", help="only these ranges (A_B), to split the work over processes"
    )
    parser.add_argument(
        "--cross", action="store_true",
        help="also score the default command's runs on the other ranges (new frames, new people)",
    )  # fmt: skip
    args = parser.parse_args()
    work = Path(args.work).resolve()
    video = Path(args.video) if args.video else sample_video()
    chosen_folds = [f for f in FOLDS if not args.folds or fold_name(f) in args.folds]
    folds = {fold_name(f): build_fold(video, work, f) for f in chosen_folds}
    start = demo_run(work, args.ids)
    imnet = imagenet_run(work, next(iter(folds.values()))["eval"])
    base: dict[str, dict[str, dict[str, float]]] = {"imagenet": {}, "synthetic": {}}
    for fold, sets in folds.items():
        base["imagenet"][fold] = evaluate(imnet, sets["eval"])
        base["synthetic"][fold] = evaluate(start, sets["eval"])
        if args.tracklet_eval:
            for key, run in (("imagenet", imnet), ("synthetic", start)):
                t = evaluate(run, sets["eval"], tracklets=True)
                base[key][fold] |= {f"tracklet_{k}": v for k, v in t.items()}
    rows = [
        ("ImageNet MobileNetV2 (no training)", {f: [m] for f, m in base["imagenet"].items()}),
        (f"synthetic-trained (demo recipe, {args.ids} ids)",
         {f: [m] for f, m in base["synthetic"].items()}),
    ]  # fmt: skip
    chosen: dict[str, dict[str, list[float]]] = {}
    for kind, label in (("crops", "adapted, crops"), ("tracklets", "adapted, with tracklets")):
        scores, picked, maps = held_out(args, start, folds, kind)
        if scores:
            rows.append((f"{label} (held-out; recipe chosen on the other ranges)", scores))
            print(f"{kind}: recipe chosen for each held-out range: {picked}")
            chosen |= maps
    any_sets = next(iter(folds.values()))
    for cand in args.candidates:
        kind = CANDIDATES[cand][0]
        if not cand.startswith("default/") and same_as_default(start, any_sets[kind], cand):
            print(f"{cand}: the default command (`reidkit adapt --from RUN --unlabeled DIR`)")
            per = {f: [run_one(args, start, s, cand, f, x) for x in args.seeds]
                   for f, s in folds.items()}  # fmt: skip
            what = "crops" if kind == "plain" else "crops with tracklets"
            rows.append((f"default command, {what} (= {cand}; not held-out)", per))
            if args.cross:
                rows.append((f"default command, {what}, adapted on the other ranges", cross(
                    args, start, folds, cand)))  # fmt: skip
    for cand in ("default/crops", "default/tracklets"):
        if cand in args.candidates:
            per = {f: [run_one(args, start, s, cand, f, x) for x in args.seeds]
                   for f, s in folds.items()}  # fmt: skip
            rows.append((f"`reidkit adapt --from RUN --unlabeled DIR` ({cand[8:]})", per))
    queries = {f: int(m["num_queries"]) for f, m in base["imagenet"].items()}
    print(f"\nframes 1-399 in ranges {list(folds)} (queries {queries}); seeds {args.seeds}")
    print("median (min..max) over ranges x seeds; gain paired with ImageNet on the same range")
    print("\n".join(table(base, rows)))
    if args.tracklet_eval:
        print("\ntracklet-level evaluation (`reidkit eval --tracklets`) of the same runs:")
        print("\n".join(table(base, rows, "tracklet_mAP")))
    print(f"\nselection scores (mAP, seeds {args.select_seeds}):")
    for cand, per_fold in chosen.items():
        each = ", ".join(
            f"{f}: " + "/".join(f"{100 * v:.1f}" for v in vs) for f, vs in per_fold.items()
        )
        print(f"  {cand}: {each}")


if __name__ == "__main__":
    main()
