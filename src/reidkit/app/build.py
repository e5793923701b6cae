"""``build_run``: the one place that turns a ``Config`` into the parts of a training run.

Config flows one way: params file -> validated ``Config`` -> the builders called here ->
plain constructors (``ReidModel``, ``ReidLoss``, ``Trainer`` ...), so every part can also be
built without a config. Nothing here writes to the run folder: ``reidkit.app.launch`` does that
only after every check has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reidkit.app.evaluate import RunReport
from reidkit.config import Config
from reidkit.data import ReidDataset, build_dataset, build_train_loader
from reidkit.data.plan import check_batch_fits, check_cache_fits
from reidkit.data.video_loaders import build_video_train_loader
from reidkit.data.video_records import VideoDataset, is_video
from reidkit.engine.callbacks import Callback, FreezeSchedule
from reidkit.engine.distributed import wrap_ddp
from reidkit.engine.optim import build_optimizer, build_scheduler
from reidkit.engine.runlog import RunLog
from reidkit.engine.setup import resolve_device, seed_everything
from reidkit.engine.trainer import Evaluate, Trainer, TrainSettings
from reidkit.evaluation import Evaluator, default_metric, get_evaluator, run_evaluator
from reidkit.evaluation.registry import check_metric
from reidkit.losses import build_loss
from reidkit.models import apply_fine_tune, build_model, load_pretrain_snapshot
from reidkit.utils.devices import resolve_amp, resolve_channels_last
from reidkit.utils.errors import ConfigError
from reidkit.utils.logging import get_logger

RETRIEVAL = ("market_evaluate", "video_evaluate")  # evaluators that rank a gallery


@dataclass
class RunParts:
    """Everything a ``Trainer`` is made of, built from one ``Config``."""

    cfg: Config
    device: torch.device
    dataset: ReidDataset | VideoDataset
    loader: Any
    model: nn.Module
    net: nn.Module
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    loss_optimizer: torch.optim.Optimizer | None
    scheduler: Any
    settings: TrainSettings
    runlog: RunLog
    evaluate: Evaluate | None = None
    evaluator: Evaluator | None = None
    callbacks: list[Callback] = field(default_factory=list)
    rank: int = 0

    def trainer(self) -> Trainer:
        """The ``Trainer`` over these parts."""
        return Trainer(
            self.model,
            self.loader,
            self.loss,
            self.optimizer,
            self.scheduler,
            self.settings,
            device=self.device,
            net=self.net,
            loss_optimizer=self.loss_optimizer,
            evaluate=self.evaluate,
            runlog=self.runlog,
            callbacks=self.callbacks,
            rank=self.rank,
            skipped_images=self.dataset.skipped,
        )


def resolve_evaluator(cfg: Config) -> tuple[Evaluator | None, str | None]:
    """The configured evaluator and the metric deciding the best model (checked up front)."""
    ev = cfg.evaluation_params
    if ev.type is None:
        return None, None
    evaluator = get_evaluator(ev.type, ev.search_dirs)
    metric = ev.metric or default_metric(evaluator)
    check_metric(evaluator, metric, ev.ranks)
    return evaluator, metric


def make_evaluate(
    evaluator: Evaluator, cfg: Config, dataset: ReidDataset, device: torch.device, runlog: RunLog
) -> Evaluate:
    """``evaluate(model, epoch) -> metrics``: the evaluator with this run's data and writer."""

    def evaluate(model: nn.Module, epoch: int) -> dict[str, float]:
        return run_evaluator(
            evaluator,
            cfg,
            model,
            dataset=dataset,
            device=device,
            writer=runlog.writer,
            epoch=epoch,
        )

    return evaluate


def check_plan(
    cfg: Config, dataset: ReidDataset, evaluator: Evaluator | None, device: torch.device
) -> None:
    """What can be checked from the config and the data before any image is decoded: the
    batch fits the train split, the caches fit in memory, the CMC ranks fit the gallery."""
    bs = cfg.batch_sampling_params
    check_video_plan(cfg, dataset, evaluator)
    check_batch_fits(dataset, cfg.batch_size, bs.class_balanced)
    count = dataset.num_frames if is_video(dataset) else lambda split: len(dataset.splits[split])
    cached = count("train")
    if evaluator is not None:
        cached += count("query") + count("gallery")
    check_cache_fits(cached, cfg.img_h, cfg.img_w, cfg.data.cache, device)
    if evaluator is not None and evaluator.name in RETRIEVAL and dataset.gallery:
        top = max(cfg.evaluation_params.ranks)
        if top > len(dataset.gallery):
            raise ConfigError(
                f"evaluation_params.ranks: rank {top} is larger than the gallery of "
                f"{dataset.name} ({len(dataset.gallery)} images)"
            )


def check_video_plan(
    cfg: Config, dataset: ReidDataset | VideoDataset, evaluator: Evaluator | None
) -> None:
    """Temporal attention needs clips to learn from, and a video dataset needs an evaluator
    that scores tracklets."""
    if cfg.video.temporal == "attention" and not is_video(dataset):
        raise ConfigError(
            f"video.temporal = 'attention' needs a video dataset, and {dataset.name} holds "
            "images; use a video layout (data.layout: tracklets groups an image dataset by "
            "identity and camera) or video.temporal: avg"
        )
    scores_tracklets = evaluator is None or not evaluator.builtin
    scores_tracklets = scores_tracklets or evaluator.name in RETRIEVAL
    if is_video(dataset) and not scores_tracklets:
        raise ConfigError(
            f"evaluation_params.type = {evaluator.name!r} scores images; a video dataset "
            "is evaluated by market_evaluate or video_evaluate (tracklet by tracklet)"
        )


def build_model_for_run(cfg: Config, num_classes: int, device: torch.device) -> nn.Module:
    """The configured model, from a snapshot and fine-tune-frozen when asked, on ``device``."""
    model = build_model(cfg, num_classes)
    if cfg.pretrain_snapshot:
        load_pretrain_snapshot(model, cfg.pretrain_snapshot)
    if cfg.fine_tune:
        trainable = apply_fine_tune(model)
        get_logger().info(f"fine_tune: training the classifier only ({trainable:,} parameters)")
    model.to(device)
    if resolve_channels_last(cfg.channels_last, device):
        model.to(memory_format=torch.channels_last)
    return model


def settings_of(cfg: Config, metric: str | None, device: torch.device) -> TrainSettings:
    """The loop's plain settings from a ``Config`` (``auto`` values made concrete for
    ``device``)."""
    return TrainSettings(
        run_dir=cfg.run_dir,
        epochs=cfg.epoch,
        amp=resolve_amp(cfg.amp, device),
        channels_last=resolve_channels_last(cfg.channels_last, device),
        compile_mode=cfg.compile_mode if cfg.compile else None,
        grad_clip=cfg.grad_clip,
        log_every=cfg.log_every,
        checkpoint_every_iters=cfg.checkpoint_every_iters,
        eval_period=cfg.evaluation_params.period,
        metric=metric,
        mode=cfg.evaluation_params.mode,
        progress=cfg.progress,
        config=cfg.to_dict(),
    )


def build_run(cfg: Config, rank: int = 0, world: int = 1) -> RunParts:
    """Assemble every part of a training run for process ``rank`` of ``world``.

    The evaluator is resolved first (a wrong name fails before any data is read); the RNGs
    are seeded before the data and model are built, so two builds of one config are equal.
    """
    evaluator, metric = resolve_evaluator(cfg)
    device = resolve_device(cfg, rank)
    seed_everything(cfg.seed + rank)
    dataset = build_dataset(cfg)
    check_plan(cfg, dataset, evaluator, device)
    make_loader = build_video_train_loader if is_video(dataset) else build_train_loader
    loader = make_loader(cfg, dataset, device, rank=rank, world_size=world)
    model = build_model_for_run(cfg, dataset.num_train_ids, device)
    net = wrap_ddp(model, device, cfg.sync_bn) if world > 1 else model
    loss = build_loss(cfg, dataset.num_train_ids, feat_dim=model.feature_dim).to(device)
    optimizer = build_optimizer(cfg, model)
    runlog = RunLog(cfg.run_dir, enabled=rank == 0)
    mp = cfg.model_params
    callbacks: list[Callback] = []
    if mp.freeze_layers and mp.freeze_epochs:
        callbacks.append(FreezeSchedule(mp.freeze_layers, mp.freeze_epochs))
    if evaluator is not None and rank == 0:
        callbacks.append(RunReport())  # report/report.html after the last epoch
    return RunParts(
        cfg=cfg,
        device=device,
        dataset=dataset,
        loader=loader,
        model=model,
        net=net,
        loss=loss,
        optimizer=optimizer,
        loss_optimizer=loss.make_extra_optimizer(),
        scheduler=build_scheduler(optimizer, cfg, len(loader)),
        settings=settings_of(cfg, metric, device),
        runlog=runlog,
        evaluate=make_evaluate(evaluator, cfg, dataset, device, runlog) if evaluator else None,
        evaluator=evaluator,
        callbacks=callbacks,
        rank=rank,
    )
