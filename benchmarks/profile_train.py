"""Where a training step's time goes: torch.profiler's top operators and the host's gaps.

Profiles ``--steps`` training steps (the loader's next batch + ``Trainer.train_step``) after
``--warmup`` steps, and optionally one evaluation, of a run built by ``build_run``. Prints:

* the top operators by self time (CPU time on the CPU, device time on a GPU);
* the step split into the loader, forward + loss, backward and optimiser (reidkit's
  ``record_function`` ranges; the loader range is added here) and what is left;
* host gaps: on the CPU the share of the step's wall time spent outside any torch operator
  (Python, the loop's own work); on a GPU the share of the step during which no kernel runs.

It uses only APIs that older reidkit versions have too, so the same file profiles a checkout
before a change (``PYTHONPATH=/path/to/old/src python benchmarks/profile_train.py``).

    python benchmarks/profile_train.py                       # CPU: ResNet-18 128x64 batch 32
    python benchmarks/profile_train.py --eval                # + one evaluation (100 q x 800 g)
    python benchmarks/profile_train.py --device cuda --backbone resnet50 --last-stride 1 \
        --height 256 --width 128 --batch 64 --amp bf16 --compile-mode reduce-overhead
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from reidkit.app import build_run
from reidkit.config import validate_config
from reidkit.data.synthetic import generate_synthetic
from reidkit.utils.logging import setup_logging

RANGES = ("reidkit.data", "reidkit.forward_loss", "reidkit.backward", "reidkit.optimizer")


def make_config(a: argparse.Namespace, data: Path, work: Path) -> dict:
    """The profiled run's config (keys every reidkit version knows, plus the asked-for ones)."""
    cfg = {
        "batches_dir": str(data),
        "working_dir": str(work),
        "img_h": a.height,
        "img_w": a.width,
        "batch_size": a.batch,
        "epoch": 1,
        "optimizer": "adam",
        "lr": {"base_lr": 3.5e-4},
        "model_params": {"backbone": a.backbone, "last_stride": a.last_stride, "neck": a.neck},
        "data_augmentation": {"mirror": True, "padding": 10, "random_erasing": 0.5},
        "tri_loss_margin": 0.3,
        "batch_sampling_params": {"class_balanced": True, "K": 4},
        "evaluation_params": {"type": "market_evaluate" if a.eval else None},
        "data": {"cache": a.cache, "num_workers": 2, "test_batch_size": 100},
        "device": a.device,
        "progress": False,
    }
    if a.amp:
        cfg["amp"] = a.amp
    if a.compile_mode:
        cfg.update(compile=True, compile_mode=a.compile_mode)
    return cfg


def _wall(ev) -> tuple[float, float]:
    return ev.time_range.start, ev.time_range.end


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


def host_gaps(prof, device: str, wall_us: float) -> tuple[str, float]:
    """(what, share of the profiled wall time): CPU outside any op, or GPU without a kernel."""
    events = prof.events()
    if device == "cuda":
        kernels = [_wall(e) for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        return "GPU idle (no kernel running)", 1 - _union(kernels) / max(wall_us, 1e-9)
    # every op, nested or not (the union counts nested time once): in a checkout with
    # reidkit's record_function ranges the ops are children of those ranges, not top level
    ops = [
        _wall(e)
        for e in events
        if e.device_type == torch.autograd.DeviceType.CPU
        and not e.name.startswith(("reidkit.", "ProfilerStep", "Optimizer."))
    ]
    return "host outside torch ops", 1 - _union(ops) / max(wall_us, 1e-9)


def ranges_table(prof, wall_us: float, steps: int) -> list[str]:
    """Per-step milliseconds of reidkit's ranges and the rest."""
    totals = {r: 0.0 for r in RANGES}
    for e in prof.events():
        if e.name in totals:
            totals[e.name] += e.time_range.elapsed_us()
    rows = [f"  {r:<22} {v / steps / 1e3:9.1f} ms" for r, v in totals.items()]
    rest = wall_us - sum(totals.values())
    rows.append(f"  {'(rest of the loop)':<22} {rest / steps / 1e3:9.1f} ms")
    rows.append(f"  {'step (wall)':<22} {wall_us / steps / 1e3:9.1f} ms")
    return rows


def profile_steps(a: argparse.Namespace, trainer) -> None:
    """Profile ``a.steps`` steps after ``a.warmup`` and print the three views."""
    trainer.model.train()
    trainer.loader.set_epoch(0)
    batches = iter(trainer.loader)

    def step() -> None:
        with record_function("reidkit.data"):
            batch = next(batches)
        trainer.train_step(batch.images, batch.pids, check=False)

    for _ in range(a.warmup):
        step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if a.device == "cuda" else [])
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    sync()
    with profile(activities=acts) as prof:
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        sync()
        wall_us = (time.perf_counter() - t0) * 1e6
    key = "self_cuda_time_total" if a.device == "cuda" else "self_cpu_time_total"
    print(f"\ntop operators by {key} over {a.steps} steps:")
    print(prof.key_averages().table(sort_by=key, row_limit=a.top, max_name_column_width=48))
    print("per step:")
    print("\n".join(ranges_table(prof, wall_us, a.steps)))
    what, share = host_gaps(prof, a.device, wall_us)
    print(f"{what}: {share:.1%} of the profiled wall time")
    if a.trace:
        prof.export_chrome_trace(str(a.trace))


def profile_eval(a: argparse.Namespace, trainer) -> None:
    """One evaluation (after a first one that decodes query / gallery) profiled."""
    trainer.evaluate()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        metrics = trainer.evaluate()
        seconds = time.perf_counter() - t0
    shown = json.dumps({k: round(v, 4) for k, v in metrics.items()})
    print(f"\nevaluation: {seconds:.2f} s ({shown})")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top))


def main() -> None:
    """Parse arguments, build the data and the run, profile."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--last-stride", type=int, default=2)
    p.add_argument("--neck", default="none")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--cache", default="ram", choices=["ram", "device"])
    p.add_argument("--amp", default=None, help="off | bf16 | fp16 (default: the config's)")
    p.add_argument("--compile-mode", default=None)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--eval", action="store_true", help="also profile one evaluation")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--trace", type=Path, default=None, help="write a Chrome trace here")
    a = p.parse_args()
    setup_logging(None, console=False)
    with tempfile.TemporaryDirectory() as tmp:
        data = a.data or Path(tmp) / "synth"
        if a.data is None:
            generate_synthetic(
                data,
                num_ids=100,
                num_test_ids=34,
                images_per_id=24,
                train_images=800,
                num_junk=0,
                num_distractors=60,
                seed=0,
            )
        trainer = build_run(validate_config(make_config(a, data, Path(tmp) / "w"))).trainer()
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {a.device}")
        profile_steps(a, trainer)
        if a.eval:
            profile_eval(a, trainer)
        trainer.runlog.close()


if __name__ == "__main__":
    main()
