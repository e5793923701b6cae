"""``reidkit adapt``: adapt a model to unlabeled target crops (docs/adaptation.md).

``build_adapt_run(cfg)`` assembles the parts as ``build_run`` does for training, and the
same ``Trainer`` runs them: the loader is a ``PseudoLabelLoader`` over the target crops, the
loss ``AdaptLoss`` (ClusterNCE against a cluster memory, plus the supervised loss on source
batches when ``adapt.source_weight`` > 0), and the ``Recluster`` callback re-clusters the
crops before every epoch. Evaluation (when ``adapt.eval_data`` names a labelled folder) runs
after every epoch and keeps the best model, resume works as for training.

Where the model starts: ``pretrain_snapshot`` / ``imagenet_pretrain`` of the params file, or
``--from RUN`` (``adapt_config``): that run's stored config and weights. A run's schedule was
made for training from ImageNet (warm-up, decay late in many epochs); ``--from RUN`` replaces
it by ``FROM_RUN_SCHEDULE`` (the recipe measured best under benchmarks/real_crops.py's
protocol) unless the command line names those keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from reidkit.app.build import (
    RunParts,
    build_model_for_run,
    make_evaluate,
    resolve_evaluator,
    settings_of,
)
from reidkit.app.launch import prepare
from reidkit.config import Config, load_config, validate_config
from reidkit.config.loading import apply_overrides
from reidkit.data import ReidDataset, build_dataset, build_train_loader
from reidkit.data.loaders import augment_from_config
from reidkit.data.plan import check_cache_fits
from reidkit.data.pseudo import (
    CropTracklets,
    PseudoLabelLoader,
    crop_tracklets,
    min_crops,
    unlabeled_records,
)
from reidkit.engine.callbacks import Callback, FreezeSchedule
from reidkit.engine.optim import build_optimizer, build_scheduler
from reidkit.engine.pseudo_labels import Recluster
from reidkit.engine.runlog import RunLog
from reidkit.engine.setup import resolve_device, seed_everything
from reidkit.engine.state import TrainSettings
from reidkit.evaluation import Evaluator
from reidkit.losses import build_loss
from reidkit.losses.adapt import AdaptLoss, ClusterMemory, SourceLabels
from reidkit.models.checkpoint import resolve_checkpoint, restore
from reidkit.utils.errors import ConfigError, DataError
from reidkit.utils.logging import get_logger

# the adaptation schedule of ``--from RUN`` (each key kept when the command line names it)
FROM_RUN_SCHEDULE = {
    "epoch": "8",
    "lr.decay_step": "[6]",
    "lr.decay_unit": "epoch",
    "lr.warmup_epochs": "0",
}


def _schedule_overrides(overrides: Sequence[str]) -> list[str]:
    """``FROM_RUN_SCHEDULE`` as overrides, less the keys ``overrides`` names, then those."""
    named = {o.split("=", 1)[0].strip() for o in overrides}
    given = [f"{k}={v}" for k, v in FROM_RUN_SCHEDULE.items() if k not in named]
    return [*given, *overrides]


def _from_run_config(ckpt: Path, overrides: Sequence[str]) -> Config:
    """``ckpt``'s stored config as the start of an adaptation: its ``adapt`` section (the
    defaults of the day it was trained, or an earlier adaptation's recipe) replaced by
    today's defaults, its schedule by ``FROM_RUN_SCHEDULE``; then the overrides."""
    _, stored = restore(ckpt)
    data = stored.to_dict()
    data["adapt"] = {}
    return validate_config(apply_overrides(data, _schedule_overrides(overrides)), str(ckpt))


def adapt_config(
    config: str | Path | None,
    from_run: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    unlabeled: str | Path | None = None,
    eval_data: str | Path | None = None,
    sub_working_dir: str | None = None,
) -> Config:
    """The adapt run's config: the params file, or ``from_run``'s stored config (its weights
    become ``pretrain_snapshot``; the run goes beside it as ``<RUN>_adapt`` and is evaluated
    every epoch unless overridden), with the overrides and the command line's folders
    applied (``sub_working_dir`` last)."""
    if config is None and from_run is None:
        raise ConfigError("reidkit adapt: pass -c params.json, --from RUN, or both")
    update: dict[str, Any] = {}
    if from_run is not None:
        ckpt = resolve_checkpoint(from_run)
        if config is None:
            cfg = _from_run_config(ckpt, overrides)
        else:
            _, cfg = restore(ckpt, config, overrides)
        update = {"pretrain_snapshot": str(ckpt), "imagenet_pretrain": False}
        if config is None:  # the stored config: its run folder and evaluation schedule
            run, named = ckpt.parent, {o.split("=", 1)[0] for o in overrides}
            if "working_dir" not in named:
                update["working_dir"] = str(run.parent)
            update["sub_working_dir"] = f"{run.name}_adapt"
            if "evaluation_params.period" not in named:
                ev = cfg.evaluation_params.model_copy(update={"period": 1})
                update["evaluation_params"] = ev
    else:
        assert config is not None
        cfg = load_config(config, list(overrides))
    if sub_working_dir is not None:
        update["sub_working_dir"] = sub_working_dir
    folders = {"unlabeled": unlabeled, "eval_data": eval_data}
    given = {k: str(v) for k, v in folders.items() if v is not None}
    if given:
        update["adapt"] = cfg.adapt.model_copy(update=given)
    return cfg.model_copy(update=update) if update else cfg


def _check(cfg: Config, world: int) -> None:
    """What the adapt section needs before anything is built."""
    a = cfg.adapt
    if world > 1:
        raise ConfigError(
            "reidkit adapt runs in one process: name one GPU in parallels (clustering "
            "needs every crop's features in one place)"
        )
    if not a.unlabeled:
        raise ConfigError("adapt.unlabeled is not set: pass --unlabeled DIR (the target crops)")
    for key in ("unlabeled", "eval_data"):
        value = getattr(a, key)
        if value and not Path(value).exists():
            raise ConfigError(f"adapt.{key} = {value!r}: no such folder")


def batch_shares(cfg: Config) -> tuple[int, int]:
    """(target images, source images) per batch, each a whole number of K-image identities."""
    a, K = cfg.adapt, cfg.batch_sampling_params.K
    source = round(cfg.batch_size * a.source_share / K) * K if a.source_weight > 0 else 0
    source = min(max(source, K if a.source_weight > 0 else 0), cfg.batch_size - K)
    target = cfg.batch_size - source
    if target < K or (a.source_weight > 0 and source < K):
        raise ConfigError(
            f"batch_size = {cfg.batch_size} with batch_sampling_params.K = {K}: each batch "
            "needs at least one target identity (and one source identity when "
            "adapt.source_weight > 0) of K images; raise batch_size"
        )
    return target, source


def _evaluation(
    cfg: Config, device: torch.device, runlog: RunLog
) -> tuple[Any, Evaluator | None, str | None]:
    """``evaluate`` on ``adapt.eval_data`` (market_evaluate unless another is configured)."""
    if not cfg.adapt.eval_data:
        return None, None, None
    ev = cfg.evaluation_params
    if ev.type is None:
        ev = ev.model_copy(update={"type": "market_evaluate"})
    data = cfg.data.model_copy(update={"layout": "auto"})
    eval_cfg = cfg.model_copy(
        update={"batches_dir": cfg.adapt.eval_data, "evaluation_params": ev, "data": data}
    )
    evaluator, metric = resolve_evaluator(eval_cfg)
    assert evaluator is not None
    dataset = build_dataset(eval_cfg)
    return make_evaluate(evaluator, eval_cfg, dataset, device, runlog), evaluator, metric


def _loaders(
    cfg: Config, device: torch.device, source: ReidDataset | None
) -> tuple[PseudoLabelLoader, ReidDataset]:
    """The target loader (with the source loader inside it when mixing) and the target set."""
    records, folder = unlabeled_records(cfg.adapt.unlabeled or "")
    a, K = cfg.adapt, cfg.batch_sampling_params.K
    need = min_crops(a.k1, a.min_samples, K)
    if len(records) < need:
        raise DataError(
            f"{a.unlabeled}: {len(records)} crops are too few to cluster; adapt needs at least "
            f"{need} (adapt.k1 = {a.k1}, adapt.min_samples = {a.min_samples}, "
            f"batch_sampling_params.K = {K}); a few hundred or more adapt well"
        )
    n_target, n_source = batch_shares(cfg)
    extra = len(source.train) if source is not None else 0
    check_cache_fits(len(records) + extra, cfg.img_h, cfg.img_w, cfg.data.cache, device)
    source_loader = None
    if source is not None:
        bs = cfg.batch_sampling_params.model_copy(update={"class_balanced": True})
        src_cfg = cfg.model_copy(update={"batch_size": n_source, "batch_sampling_params": bs})
        source_loader = build_train_loader(src_cfg, source, device)
    loader = PseudoLabelLoader(
        records,
        folder,
        height=cfg.img_h,
        width=cfg.img_w,
        batch_size=n_target,
        K=cfg.batch_sampling_params.K,
        steps=cfg.adapt.iters,
        device=device,
        augment=augment_from_config(cfg),
        cache=cfg.data.cache,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
        progress=cfg.progress,
        mean=cfg.data.mean,
        std=cfg.data.std,
        pixel_range=cfg.data.pixel_range,
        source_loader=source_loader,
    )
    target = ReidDataset("unlabeled", loader.records, [], [], 0, folder, skipped=loader.skipped)
    return loader, target


def target_tracklets(cfg: Config, loader: PseudoLabelLoader) -> CropTracklets | None:
    """The crops' tracklets as ``adapt.tracklets`` asks: None when off or absent (auto)."""
    mode = cfg.adapt.tracklets
    if mode is False:
        return None
    found = crop_tracklets(loader.records)
    if found is None and mode is True:
        raise DataError(
            f"{cfg.adapt.unlabeled}: adapt.tracklets = true, but no crop name carries a "
            "tracklet (f<frame>_t<track>, as `reidkit crops` writes); set adapt.tracklets "
            "to auto or false"
        )
    return found


def _settings(cfg: Config, metric: str | None, device: torch.device) -> TrainSettings:
    """The loop's settings, always eager: the cluster memory changes size at every
    re-clustering and is rewritten after every step, which a compiled graph cannot hold."""
    settings = settings_of(cfg, metric, device)
    if settings.compile_mode is not None:
        get_logger().info("adapt: compile ignored (the cluster memory changes every step)")
    return replace(settings, compile_mode=None)


def build_adapt_run(cfg: Config, rank: int = 0, world: int = 1) -> RunParts:
    """Assemble an adaptation run (see the module docstring); nothing is written."""
    _check(cfg, world)
    a = cfg.adapt
    device = resolve_device(cfg, 0)
    seed_everything(cfg.seed)
    runlog = RunLog(cfg.run_dir, enabled=True)
    evaluate, evaluator, metric = _evaluation(cfg, device, runlog)
    source = build_dataset(cfg) if a.source_weight > 0 else None
    loader, target = _loaders(cfg, device, source)
    classes = source.num_train_ids if source is not None else 1
    model = build_model_for_run(cfg, classes, device)
    memory = ClusterMemory(model.embedding_dim, a.momentum, a.memory_update).to(device)
    source_loss = build_loss(cfg, classes, model.feature_dim) if source is not None else None
    loss = AdaptLoss(memory, a.temperature, source_loss, a.source_weight).to(device)
    optimizer = build_optimizer(cfg, model)
    tracklets = target_tracklets(cfg, loader)
    target_bn = (tracklets is None) if a.target_bn == "auto" else bool(a.target_bn)
    recluster = Recluster(
        loader, memory, eps=a.eps, min_samples=a.min_samples, k1=a.k1, k2=a.k2,
        flip=cfg.data.flip_test, batch_size=cfg.data.test_batch_size, target_bn=target_bn,
        eps_quantile=a.eps_quantile, tracklets=tracklets,
    )  # fmt: skip
    callbacks: list[Callback] = [recluster]
    mp = cfg.model_params
    if mp.freeze_layers and mp.freeze_epochs:
        callbacks.append(FreezeSchedule(mp.freeze_layers, mp.freeze_epochs))
    return RunParts(
        cfg=cfg,
        device=device,
        dataset=target,
        loader=loader,
        model=model,
        net=SourceLabels(model) if source is not None else model,
        loss=loss,
        optimizer=optimizer,
        loss_optimizer=loss.make_extra_optimizer(),
        scheduler=build_scheduler(optimizer, cfg, len(loader)),
        settings=_settings(cfg, metric, device),
        runlog=runlog,
        evaluate=evaluate,
        evaluator=evaluator,
        callbacks=callbacks,
    )


def log_adapt_start(parts: RunParts) -> None:
    """The adapt run's opening lines: where it starts from and what it adapts to."""
    cfg, log = parts.cfg, get_logger()
    a = cfg.adapt
    start = cfg.pretrain_snapshot or ("ImageNet" if cfg.imagenet_pretrain else "random init")
    log.info(f"adapting {cfg.model_params.backbone} from {start} on {parts.device}")
    log.info(
        f"target: {a.unlabeled} ({len(parts.dataset.train)} crops), {len(parts.loader)} "
        f"iterations/epoch x {cfg.epoch} epochs; evaluated on {a.eval_data or 'nothing'}"
    )
    eps = a.eps if a.eps is not None else f"auto (quantile {a.eps_quantile})"
    tracks = next((c.tracklets for c in parts.callbacks if isinstance(c, Recluster)), None)
    units = (
        f"{tracks.num_tracklets} tracklets ({len(tracks.cannot_link)} cannot-linked pairs), "
        "clustered as wholes"
        if tracks is not None
        else f"crops, Jaccard k1 {a.k1} k2 {a.k2}"
    )
    bn = next((c.target_bn for c in parts.callbacks if isinstance(c, Recluster)), False)
    auto = " (auto)" if a.target_bn == "auto" else ""
    log.info(
        f"target BatchNorm statistics (adapt.target_bn): {'on' if bn else 'off'}{auto}; "
        f"clustering: DBSCAN eps {eps} min_samples {a.min_samples} over {units}; memory "
        f"momentum {a.momentum} ({a.memory_update}), temperature {a.temperature}; source "
        f"weight {a.source_weight}"
    )


def adapt(cfg: Config, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run the adaptation ``cfg`` describes in this process; returns the run summary."""
    build, describe = build_adapt_run, log_adapt_start
    return prepare(cfg, resume, overwrite=overwrite, build=build, describe=describe).fit()
