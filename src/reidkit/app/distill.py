"""``reidkit distill``: train a small student from a trained teacher (docs/distillation.md).

``build_distill_run(cfg)`` assembles the parts as ``build_run`` does for training, and the same
``Trainer`` runs them: the student is the params file's model on its data; the network the
step calls is ``DistillNet`` (student + frozen teacher), the loss ``DistillLoss`` (the student's
own ReID loss, weighted, plus KD / feature / relation terms); the loader a ``TargetLoader``
(the batches ordinary training would draw) that also carries the teacher's cached outputs
when the augmentation allows caching them. With ``distill.unlabeled`` the student trains on
unlabeled crops from the teacher's features alone.

The result is an ordinary run folder: ``restore`` rebuilds the student (the teacher is not
needed to evaluate, export, calibrate or report it); the projection of the feature term is
part of the loss state, not of the model. Resume is exact: the teacher cache is rebuilt
deterministically, and the teacher's digest is checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reidkit.app.build import (
    RunParts,
    build_model_for_run,
    check_plan,
    make_evaluate,
    resolve_evaluator,
    settings_of,
)
from reidkit.app.distill_teacher import (
    Teacher,
    TeacherGuard,
    build_teacher_cache,
    cache_fits,
    kd_weight,
    load_teacher,
    table_digest,
    teacher_input,
)
from reidkit.app.evaluate import RunReport
from reidkit.app.launch import log_start, prepare
from reidkit.config import Config, load_config
from reidkit.data import ReidDataset, build_dataset
from reidkit.data.loaders import augment_from_config
from reidkit.data.plan import check_cache_fits
from reidkit.data.pseudo import unlabeled_records
from reidkit.data.records import require_train
from reidkit.data.targets import TargetLoader, cacheable_views
from reidkit.engine.callbacks import Callback, FreezeSchedule
from reidkit.engine.optim import build_optimizer, build_scheduler
from reidkit.engine.runlog import RunLog
from reidkit.engine.setup import resolve_device, seed_everything
from reidkit.engine.state import TrainSettings
from reidkit.losses import build_loss
from reidkit.losses.distill import DistillLoss, make_projection
from reidkit.models.distill import DistillNet, FrozenTeacher
from reidkit.utils.distributed import env_world
from reidkit.utils.errors import ConfigError, DataError
from reidkit.utils.logging import get_logger


def distill_config(
    config: str | Path,
    overrides: Sequence[str] = (),
    *,
    teacher: str | Path | None = None,
    unlabeled: str | Path | None = None,
    sub_working_dir: str | None = None,
) -> Config:
    """The student's params file with the overrides, and the command line's teacher and
    unlabeled folder in its ``distill`` section."""
    cfg = load_config(config, list(overrides), sub_working_dir=sub_working_dir)
    given = {"teacher": teacher, "unlabeled": unlabeled}
    update = {k: str(v) for k, v in given.items() if v is not None}
    if update:
        cfg = cfg.model_copy(update={"distill": cfg.distill.model_copy(update=update)})
    return cfg


def _check(cfg: Config) -> None:
    """What the distill section needs before anything is built."""
    d = cfg.distill
    if env_world()[2] > 1:
        raise ConfigError(
            "reidkit distill runs in one process (the first GPU of parallels, or the CPU); "
            "start it without torchrun"
        )
    if d.unlabeled and not Path(d.unlabeled).is_dir():
        raise ConfigError(f"distill.unlabeled = {d.unlabeled!r}: no such folder")
    if d.unlabeled and d.feature_weight == 0 and d.relation_weight == 0:
        raise ConfigError(
            "label-free distillation (distill.unlabeled) trains the feature and relation terms "
            "only, and both distill.feature_weight and distill.relation_weight are 0"
        )


def _loader(cfg: Config, records: list, source: Any, device: torch.device) -> TargetLoader:
    """The student's training batches: PK or random as configured (random without labels)."""
    bs = cfg.batch_sampling_params
    return TargetLoader(
        records,
        source,
        height=cfg.img_h,
        width=cfg.img_w,
        batch_size=cfg.batch_size,
        device=device,
        augment=augment_from_config(cfg),
        K=bs.K if bs.class_balanced and not cfg.distill.unlabeled else None,
        cache=cfg.data.cache,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
        progress=cfg.progress,
    )


def _data(
    cfg: Config, evaluator: Any, device: torch.device
) -> tuple[ReidDataset, ReidDataset | None, TargetLoader]:
    """``(train set, evaluation set or None, loader)``: the labelled train split of
    ``batches_dir``, or the unlabeled crops (then ``batches_dir`` is read only to evaluate)."""
    unlabeled = cfg.distill.unlabeled
    dataset = build_dataset(cfg) if not unlabeled or evaluator is not None else None
    if not unlabeled:
        assert dataset is not None
        check_plan(cfg, dataset, evaluator, device)
        require_train(dataset)
        return dataset, dataset, _loader(cfg, dataset.train, dataset.source, device)
    records, folder = unlabeled_records(unlabeled)
    if len(records) < 2:
        raise DataError(f"{unlabeled}: label-free distillation needs at least 2 crops")
    if dataset is not None:
        test_only = ReidDataset(dataset.name, [], dataset.query, dataset.gallery, 0, dataset.source)
        check_plan(cfg, test_only, evaluator, device)
    check_cache_fits(len(records), cfg.img_h, cfg.img_w, cfg.data.cache, device)
    loader = _loader(cfg, records, folder, device)
    query, gallery = (dataset.query, dataset.gallery) if dataset is not None else ([], [])
    name, skipped = f"unlabeled {unlabeled}", loader.skipped
    train = ReidDataset(name, loader.records, query, gallery, 0, folder, skipped=skipped)
    return train, dataset, loader


def _projection(cfg: Config, student: nn.Module, teacher: Teacher) -> nn.Module | None:
    """The feature term's projection, initialised from its own generator (``cfg.seed``) so the
    global RNG (and with it the rest of the run) is what ordinary training would have."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return make_projection(student.embedding_dim, teacher.embedding_dim, cfg.distill.projection)


def _cache(
    cfg: Config, frozen: FrozenTeacher, loader: TargetLoader, settings: TrainSettings, width: int
) -> str:
    """Fill the loader's teacher table when the augmentation allows it; returns the cache's
    digest ("" without one). Logs which way was chosen and why."""
    log = get_logger()
    views, why = cacheable_views(loader.augment)
    if cfg.distill.teacher_cache == "off":
        log.info("teacher: run on every batch (distill.teacher_cache = off)")
        return ""
    if views == 0:
        log.info(f"teacher: run on every batch, not cached ({why})")
        return ""
    fits, size = cache_fits(views, len(loader.records), width, loader.device)
    if not fits:
        log.info(f"teacher: run on every batch (a cache of {size} would not fit in memory)")
        return ""
    batch = cfg.data.test_batch_size
    tables = build_teacher_cache(frozen, loader, views, settings.amp, loader.device, batch)
    loader.set_table(tables)
    log.info(f"teacher: outputs cached once per image before training ({why}; {size})")
    return table_digest(tables)


def _loss(cfg: Config, model: nn.Module, teacher: Teacher, classes: int, kd: float) -> DistillLoss:
    """The student's ReID loss (none without labels) and the distillation terms."""
    d = cfg.distill
    reid = None if d.unlabeled else build_loss(cfg, classes, feat_dim=model.feature_dim)
    return DistillLoss(
        reid,
        reid_weight=d.reid_weight,
        kd_weight=kd,
        temperature=d.temperature,
        feature_weight=d.feature_weight,
        feature_kind=d.feature_loss,
        relation_weight=d.relation_weight,
        projection=_projection(cfg, model, teacher),
    )


def _optimizer(cfg: Config, model: nn.Module, loss: DistillLoss) -> torch.optim.Optimizer:
    """The run's optimiser, with the projection as one more group (the head's lr, so it
    follows the schedule)."""
    optimizer = build_optimizer(cfg, model)
    if loss.projection_parameters():
        fc_lr = cfg.lr.fc_lr if cfg.lr.fc_lr is not None else cfg.lr.base_lr
        group = {"params": loss.projection_parameters(), "lr": fc_lr, "name": "projection"}
        optimizer.add_param_group({**group, "weight_decay": cfg.weight_decay})
    return optimizer


def build_distill_run(cfg: Config, rank: int = 0, world: int = 1) -> RunParts:
    """Assemble a distillation run (see the module docstring); nothing is written."""
    _check(cfg)
    evaluator, metric = resolve_evaluator(cfg)
    device = resolve_device(cfg, 0)
    teacher = load_teacher(cfg, device)  # checked before any image is decoded
    size, renorm, input_note = teacher_input(cfg, teacher)
    seed_everything(cfg.seed)
    dataset, eval_set, loader = _data(cfg, evaluator, device)
    classes = dataset.num_train_ids if not cfg.distill.unlabeled else 1
    kd = kd_weight(cfg, teacher, classes)
    model = build_model_for_run(cfg, classes, device)
    frozen = FrozenTeacher(teacher.model, size=size, renorm=renorm, logits=kd > 0).to(device)
    loss = _loss(cfg, model, teacher, classes, kd).to(device)
    optimizer = _optimizer(cfg, model, loss)
    settings = settings_of(cfg, metric, device)
    runlog = RunLog(cfg.run_dir, enabled=True)
    get_logger().info(
        f"distilling from {teacher.checkpoint} ({teacher.cfg.model_params.backbone}, "
        f"{teacher.embedding_dim}-d, {teacher.num_classes} classes) into "
        f"{cfg.model_params.backbone} ({model.embedding_dim}-d); {input_note}"
    )
    width = teacher.embedding_dim + (teacher.num_classes if kd > 0 else 0)
    callbacks: list[Callback] = [
        TeacherGuard(teacher, _cache(cfg, frozen, loader, settings, width))
    ]
    mp = cfg.model_params
    if mp.freeze_layers and mp.freeze_epochs:
        callbacks.append(FreezeSchedule(mp.freeze_layers, mp.freeze_epochs))
    evaluate = None
    if evaluator is not None and eval_set is not None:
        evaluate = make_evaluate(evaluator, cfg, eval_set, device, runlog)
        callbacks.append(RunReport())
    return RunParts(
        cfg=cfg,
        device=device,
        dataset=dataset,
        loader=loader,
        model=model,
        net=DistillNet(model, frozen, kd=kd > 0),
        loss=loss,
        optimizer=optimizer,
        loss_optimizer=loss.make_extra_optimizer(),
        scheduler=build_scheduler(optimizer, cfg, len(loader)),
        settings=settings,
        runlog=runlog,
        evaluate=evaluate,
        evaluator=evaluator,
        callbacks=callbacks,
    )


def log_distill_start(parts: RunParts) -> None:
    """The run's opening lines (as training) and the distillation terms."""
    log_start(parts)
    loss = parts.loss
    d = parts.cfg.distill
    terms = [f"reid x{loss.reid_weight:g}"] if loss.reid_loss is not None else []
    if loss.kd_weight > 0:
        terms.append(f"kd x{loss.kd_weight:g} (T {loss.temperature:g})")
    if loss.feature_weight > 0:
        proj = "projected, " if loss.projection is not None else ""
        terms.append(f"feature x{loss.feature_weight:g} ({proj}{loss.feature_kind})")
    if loss.relation_weight > 0:
        terms.append(f"relation x{loss.relation_weight:g}")
    mode = f"label-free on {d.unlabeled}" if d.unlabeled else "labelled"
    get_logger().info(f"distillation ({mode}): {' + '.join(terms)}")


def distill(cfg: Config, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run the distillation ``cfg`` describes in this process; returns the run summary."""
    build, describe = build_distill_run, log_distill_start
    return prepare(cfg, resume, overwrite=overwrite, build=build, describe=describe).fit()
