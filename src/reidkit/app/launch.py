"""Training a run: one process, one rank of a torchrun job, or one process per GPU here.

``train(cfg)`` is the public entry point (what ``reidkit train`` and the seed's ``train.py``
call). Every check runs before the run folder is touched: the config, the evaluator, the data,
the model and, with ``resume``, that the checkpoint fits; only then are ``config.json`` and
``train.log`` written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import torch
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from reidkit.app.build import RunParts, build_run
from reidkit.app.rundir import check_run_dir, clear_run_dir
from reidkit.config import Config, save_config, validate_config
from reidkit.engine.optim import build_schedule, decay_in_iterations, lr_table, schedule_summary
from reidkit.engine.trainer import Trainer
from reidkit.utils.distributed import (
    destroy_process_group,
    env_world,
    init_process_group,
)
from reidkit.utils.files import remove_stale_temp_files
from reidkit.utils.logging import get_logger, open_log_file, setup_logging


def log_start(parts: RunParts) -> None:
    """The run's opening lines: folder, data, model, iterations and the lr table."""
    cfg, ds, log = parts.cfg, parts.dataset, get_logger()
    n_params = sum(p.numel() for p in parts.model.parameters())
    log.info(f"run folder: {cfg.run_dir}")
    log.info(
        f"data: {ds.name}  train {len(ds.train)} images / {ds.num_train_ids} ids  "
        f"query {len(ds.query)}  gallery {len(ds.gallery)}"
    )
    log.info(
        f"model: {cfg.model_params.backbone} ({n_params / 1e6:.2f}M params) on {parts.device}, "
        f"{len(parts.loader)} iterations/epoch x {cfg.epoch} epochs"
    )
    st = parts.settings
    fused = parts.optimizer.defaults.get("fused") and "fused" or "foreach"
    log.info(
        f"step: amp {st.amp} (amp: {cfg.amp}), channels_last {st.channels_last}, "
        f"compile {st.compile_mode or 'off'}, {fused} optimizer kernels"
    )
    log.info("optimizer %s\n%s", cfg.optimizer, lr_table(parts.optimizer))
    iters = len(parts.loader)
    note = ""
    if decay_in_iterations(cfg) and cfg.lr.decay_unit == "auto":
        note = (
            "; with class-balanced sampling decay_step counts iterations (the seed's rule): "
            "set lr.decay_unit to epoch if decay_step was meant in epochs"
        )
    text, warning = schedule_summary(build_schedule(cfg, iters), cfg.lr.base_lr, iters, note)
    log.info(text)
    if warning:
        log.warning(f"warning: {warning}")


def prepare(
    cfg: Config,
    resume: str | None = None,
    rank: int = 0,
    world: int = 1,
    overwrite: bool = False,
    build: Callable[[Config, int, int], RunParts] = build_run,
    describe: Callable[[RunParts], None] = log_start,
) -> Trainer:
    """Check and build the run, apply ``resume``, then open the run folder (rank 0).

    Nothing is written before the checks (``app.rundir``, the config, the data plan, the
    resume compatibility) have passed; a started run is replaced only with ``overwrite``.
    ``build`` assembles the parts (``build_run``; ``reidkit adapt`` passes its own) and
    ``describe`` logs the run's opening lines.
    """
    main = rank == 0
    setup_logging(None, console=main, hold=main)
    if main:  # other ranks would race with rank 0 writing config.json
        check_run_dir(cfg.run_dir, resume, overwrite)
    parts = build(cfg, rank, world)
    trainer = parts.trainer()
    if resume:
        trainer.resume(resume)
    if main:
        if overwrite and not resume:
            clear_run_dir(cfg.run_dir)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(cfg.run_dir)
        open_log_file(cfg.run_dir / "train.log")
        save_config(cfg, cfg.run_dir / "config.json")
        describe(parts)
    return trainer


def train(cfg: Config, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train a model as ``cfg`` describes, in this process; returns the run summary."""
    return prepare(cfg, resume, overwrite=overwrite).fit()


def run_rank(cfg: Config, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train as one rank of a DDP job whose rank / world size are in the environment."""
    rank, _, world = env_world()
    init_process_group(cfg.device != "cpu" and torch.cuda.is_available())
    try:
        return prepare(cfg, resume, rank, world, overwrite).fit()
    finally:
        destroy_process_group()


def _worker(cfg_dict: dict[str, Any], resume: str | None, overwrite: bool) -> dict[str, Any]:
    """What each process started by ``launch_local`` runs (module level: picklable)."""
    return run_rank(validate_config(cfg_dict), resume, overwrite)


def launch_local(
    cfg: Config, nproc: int, resume: str | None = None, overwrite: bool = False
) -> dict[str, Any]:
    """Start ``nproc`` processes on this machine with torch's elastic launcher."""
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"reidkit-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=1,
    )
    results = elastic_launch(config, _worker)(cfg.to_dict(), resume, overwrite)
    return results[0]


def launch_training(
    cfg: Config, resume: str | None = None, overwrite: bool = False
) -> dict[str, Any]:
    """Train as ``cfg`` says.

    - under ``torchrun`` (WORLD_SIZE > 1): this process is one rank of a DDP job;
    - ``parallels`` naming several visible GPUs: start one process per GPU here;
    - otherwise: a single process (GPU 0 / the first of ``parallels``, or the CPU).
    """
    if env_world()[2] > 1:
        return run_rank(cfg, resume, overwrite)
    gpus = len(cfg.parallels) if torch.cuda.is_available() and cfg.device != "cpu" else 0
    if gpus > 1:
        return launch_local(cfg, gpus, resume, overwrite)
    return train(cfg, resume, overwrite)
