"""The training loop: train an epoch, checkpoint, evaluate, keep the best, log everything."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from reidkit.config import Config, save_config
from reidkit.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from reidkit.engine.distributed import barrier, wrap_ddp
from reidkit.engine.optim import build_optimizer, build_scheduler, lr_table
from reidkit.engine.runlog import RunLog, Timer, summary_rows, summary_table
from reidkit.engine.setup import resolve_device, seed_everything
from reidkit.utils.errors import CheckpointError, ReidkitError
from reidkit.utils.logging import get_logger, setup_logging


class TrainingError(ReidkitError):
    """Training cannot go on (a NaN loss, say); the message names the step and checkpoint."""


@dataclass
class TrainState:
    """Progress that survives a resume."""

    epoch: int = 0  # epochs completed
    iteration: int = 0  # optimiser steps taken
    best_metric: float | None = None
    best_epoch: int = 0
    last_metrics: dict[str, float] = field(default_factory=dict)
    step_in_epoch: int = 0  # batches of the current epoch already trained (mid-epoch saves)
    epoch_sums: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Owns one run: data, model, loss, optimiser, schedule, evaluator and run folder."""

    def __init__(self, cfg: Config, resume: str | None = None, rank: int = 0, world: int = 1):
        from reidkit.data import build_dataset, build_train_loader
        from reidkit.losses import build_loss
        from reidkit.models import apply_fine_tune, build_model, load_pretrain_snapshot

        self.cfg, self.rank, self.world = cfg, rank, world
        self.main = rank == 0
        self.run_dir = cfg.run_dir
        self.log = get_logger()
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            setup_logging(self.run_dir / "train.log")
            save_config(cfg, self.run_dir / "config.json")
        else:
            setup_logging(None, console=False)
        self.device = resolve_device(cfg, rank)
        seed_everything(cfg.seed + rank)
        self.dataset = build_dataset(cfg)
        self.loader = build_train_loader(
            cfg, self.dataset, self.device, rank=rank, world_size=world
        )
        self.num_classes = self.dataset.num_train_ids
        self.model = build_model(cfg, self.num_classes)
        if cfg.pretrain_snapshot:
            load_pretrain_snapshot(self.model, cfg.pretrain_snapshot)
        if cfg.fine_tune:
            trainable = apply_fine_tune(self.model)
            self.log.info(f"fine_tune: training the classifier only ({trainable:,} parameters)")
        self.model.to(self.device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = wrap_ddp(self.model, self.device, cfg.sync_bn) if world > 1 else self.model
        if cfg.compile:
            self.net = torch.compile(self.net)
        self.loss = build_loss(cfg, self.num_classes).to(self.device)
        self.optimizer = build_optimizer(cfg, self.model)
        self.loss_optimizer = self.loss.make_extra_optimizer()  # center-loss centres (BoT)
        self.scheduler = build_scheduler(self.optimizer, cfg, len(self.loader))
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=cfg.amp == "fp16" and self.device.type == "cuda"
        )
        self.evaluator = self._find_evaluator()
        self.state = TrainState()
        self._resume_rng: dict[str, Any] | None = None
        self._log_histograms = False
        self.runlog = RunLog(self.run_dir, enabled=self.main)
        if resume:
            self._resume(resume)
        elif self.main and (self.run_dir / "last.pth").exists():
            self.log.warning(
                f"{self.run_dir} holds an earlier run: starting over (use --resume to continue it)"
            )
            self.runlog.truncate_after(0)
        self._log_start()

    # ------------------------------------------------------------------ setup helpers
    def _find_evaluator(self) -> Any:
        ev = self.cfg.evaluation_params
        if ev.type is None:
            return None
        from reidkit.evaluation import default_metric, get_evaluator

        evaluator = get_evaluator(ev.type, ev.search_dirs)
        self.metric_name = ev.metric or default_metric(evaluator)
        return evaluator

    def _log_start(self) -> None:
        cfg, ds = self.cfg, self.dataset
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log.info(f"run folder: {self.run_dir}")
        self.log.info(
            f"data: {ds.name}  train {len(ds.train)} images / {ds.num_train_ids} ids  "
            f"query {len(ds.query)}  gallery {len(ds.gallery)}"
        )
        self.log.info(
            f"model: {cfg.model_params.backbone} ({n_params / 1e6:.2f}M params) on {self.device}, "
            f"{len(self.loader)} iterations/epoch x {cfg.epoch} epochs"
        )
        self.log.info("optimizer %s\n%s", cfg.optimizer, lr_table(self.optimizer))

    def _autocast(self) -> Any:
        if self.cfg.amp == "off":
            return nullcontext()
        dtype = torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    # ------------------------------------------------------------------ checkpoints
    def _state_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "model": self.model.state_dict(),
            "loss": self.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss_optimizer": self.loss_optimizer.state_dict() if self.loss_optimizer else {},
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": s.epoch,
            "iteration": s.iteration,
            "best_metric": s.best_metric,
            "best_epoch": s.best_epoch,
            "metrics": s.last_metrics,
            "step_in_epoch": s.step_in_epoch,
            "epoch_sums": s.epoch_sums,
            "config": self.cfg.to_dict(),
            "num_classes": self.num_classes,
            "rng": rng_state(),
        }

    def _save_last(self) -> None:
        if self.main:
            save_checkpoint(self._state_dict(), self.run_dir / "last.pth")

    def _resume(self, path: str) -> None:
        ckpt_path = self.run_dir / "last.pth" if path == "auto" else Path(path)
        if path == "auto" and not ckpt_path.exists():
            self.log.info("resume auto: no last.pth yet, starting fresh")
            return
        ckpt = load_checkpoint(ckpt_path, map_location=self.device)
        from reidkit.engine.resume import check_resume_compatible

        check_resume_compatible(ckpt.get("config", {}), self.cfg.to_dict(), ckpt_path)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.loss.load_state_dict(ckpt.get("loss", {}))
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.loss_optimizer is not None:
                self.loss_optimizer.load_state_dict(ckpt["loss_optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(f"{ckpt_path}: cannot resume from it ({first})") from None
        self.state = TrainState(
            epoch=int(ckpt["epoch"]),
            iteration=int(ckpt["iteration"]),
            best_metric=ckpt.get("best_metric"),
            best_epoch=int(ckpt.get("best_epoch", 0)),
            last_metrics=dict(ckpt.get("metrics") or {}),
            step_in_epoch=int(ckpt.get("step_in_epoch", 0)),
            epoch_sums=dict(ckpt.get("epoch_sums") or {}),
        )
        set_rng_state(ckpt["rng"])
        self._resume_rng = ckpt["rng"] if self.state.step_in_epoch else None
        if self.main:
            self.runlog.truncate_after(self.state.epoch)
        self.log.info(f"resumed from {ckpt_path} at epoch {self.state.epoch}")

    # ------------------------------------------------------------------ the loop
    def train_step(
        self, images: torch.Tensor, pids: torch.Tensor, check: bool = True
    ) -> dict[str, torch.Tensor]:
        """One optimiser step; returns the detached loss terms (still on the device).

        ``check`` syncs with the device to stop on a non-finite loss; the epoch loop checks
        only on logging steps so that the GPU is never waited for in between.
        """
        if self.cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            outputs = self.net(images, pids)
            total, terms = self.loss(outputs, pids)
        if self._log_histograms and self.runlog.writer is not None and "embedding" in outputs:
            norms = outputs["embedding"].detach().float().norm(dim=1).cpu()
            self.runlog.writer.add_histogram("embedding_norm", norms, self.state.iteration)
        if check:
            self._check_finite(total)
        self.optimizer.zero_grad(set_to_none=True)
        if self.loss_optimizer is not None:
            self.loss_optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        if self.loss_optimizer is not None:
            self.scaler.step(self.loss_optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.state.iteration += 1
        values = {k: v.detach() for k, v in terms.items()}
        values["total"] = total.detach()
        return values

    def _check_finite(self, total: torch.Tensor) -> None:
        """Stop with the step and the last good checkpoint when the loss is NaN / inf."""
        if bool(torch.isfinite(total)):
            return
        last = self.run_dir / "last.pth"
        where = f"last good checkpoint: {last}" if last.exists() else "no checkpoint yet"
        raise TrainingError(
            f"loss is {total.item()} at epoch {self.state.epoch + 1} iteration "
            f"{self.state.iteration}; {where} (try a lower lr, amp off, or grad_clip)"
        )

    def train_epoch(self) -> dict[str, float]:
        """Train (the rest of) one epoch; returns mean loss terms, lr and images/s."""
        s, epoch = self.state, self.state.epoch
        self.model.train()
        self.loader.set_epoch(epoch)
        mp = self.cfg.model_params
        if mp.freeze_layers and mp.freeze_epochs:
            from reidkit.models import set_frozen

            set_frozen(self.model, mp.freeze_layers, frozen=epoch < mp.freeze_epochs)
        n_images, timer = 0, Timer()
        pending: dict[str, torch.Tensor] = {}  # loss sums not yet copied from the device
        bar = tqdm(
            total=len(self.loader),
            initial=s.step_in_epoch,
            desc=f"epoch {epoch + 1}/{self.cfg.epoch}",
            disable=not (self.cfg.progress and self.main),
            leave=False,
            dynamic_ncols=True,
        )
        for step, batch in enumerate(self.loader):
            if step < s.step_in_epoch:  # resuming mid-epoch: same order, skip what was done
                if step + 1 == s.step_in_epoch and self._resume_rng is not None:
                    set_rng_state(self._resume_rng)
                continue
            log_step = step % self.cfg.log_every == 0 or step + 1 == len(self.loader)
            self._log_histograms = self.main and log_step
            terms = self.train_step(batch.images, batch.pids, check=log_step)
            n_images += batch.images.shape[0]
            for k, v in terms.items():
                pending[k] = pending[k] + v if k in pending else v
            s.step_in_epoch = step + 1
            every = self.cfg.checkpoint_every_iters
            saving = every and s.iteration % every == 0 and s.step_in_epoch < len(self.loader)
            if log_step or saving:  # one device sync: fold the pending sums into floats
                self._fold(pending, s.epoch_sums)
                lr = self.optimizer.param_groups[0]["lr"]
                values = {k: float(v) for k, v in terms.items()}
                if self.main:
                    self.runlog.scalars("loss", values, s.iteration)
                    self.runlog.scalars("lr", {"base": lr}, s.iteration)
                bar.set_postfix(loss=f"{values['total']:.3f}", lr=f"{lr:.2e}")
            if saving:
                self._save_last()
            bar.update(1)
        bar.close()
        self._fold(pending, s.epoch_sums)
        self._resume_rng = None
        means = {k: v / max(1, len(self.loader)) for k, v in s.epoch_sums.items()}
        means["lr"] = self.optimizer.param_groups[0]["lr"]
        means["images_per_s"] = n_images / max(timer.elapsed, 1e-9)
        means["epoch_s"] = timer.elapsed
        if self.device.type == "cuda":
            means["gpu_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        return means

    @staticmethod
    def _fold(pending: dict[str, torch.Tensor], sums: dict[str, float]) -> None:
        """Add device-side running sums into float sums and clear them."""
        for k, v in pending.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        pending.clear()

    def evaluate(self) -> dict[str, float]:
        """Run the configured evaluator on the current model."""
        from reidkit.evaluation import run_evaluator

        self.model.eval()
        with torch.inference_mode():
            metrics = run_evaluator(
                self.evaluator,
                self.cfg,
                self.model,
                dataset=self.dataset,
                device=self.device,
                writer=self.runlog.writer,
                epoch=self.state.epoch,
            )
        self.model.train()
        return metrics

    def _is_better(self, value: float) -> bool:
        best = self.state.best_metric
        if best is None:
            return True
        return value > best if self.cfg.evaluation_params.mode == "max" else value < best

    def _after_epoch(self, train_stats: dict[str, float]) -> None:
        """Evaluate (if due); write the epoch record, best.pth when improved, then last.pth.

        The order makes a kill at any point safe: last.pth is written last, so a resumed run
        redoes the epoch, gets the same metrics, and rewrites the record and best.pth.
        """
        s, cfg = self.state, self.cfg
        s.epoch += 1
        s.step_in_epoch, s.epoch_sums = 0, {}
        period = cfg.evaluation_params.period
        due = self.evaluator is not None and (s.epoch % period == 0 or s.epoch == cfg.epoch)
        metrics: dict[str, float] = {}
        improved = self.evaluator is None
        if due and self.main:
            metrics = self._evaluate_or_keep_last()
            s.last_metrics = metrics
            improved = self._is_better(float(metrics[self.metric_name]))
            if improved:
                s.best_metric, s.best_epoch = float(metrics[self.metric_name]), s.epoch
        self._report_epoch(train_stats, metrics, improved)
        if self.main:
            state = self._state_dict()
            if improved:
                save_checkpoint(state, self.run_dir / "best.pth")
            save_checkpoint(state, self.run_dir / "last.pth")
        barrier()

    def _evaluate_or_keep_last(self) -> dict[str, float]:
        """Run the evaluator; on failure keep a checkpoint of this epoch and stop clearly."""
        try:
            metrics = self.evaluate()
        except ReidkitError:
            self._save_last()
            raise
        if self.metric_name not in metrics:
            self._save_last()
            raise ReidkitError(
                f"evaluation_params.metric = {self.metric_name!r} is not among the "
                f"evaluator's results: {', '.join(sorted(metrics))}"
            )
        return metrics

    def _report_epoch(self, stats: dict[str, float], metrics: dict[str, float], best: bool) -> None:
        if self.main:
            s = self.state
            self.runlog.epoch(s.epoch, self.cfg.epoch, s.iteration, stats, metrics, best)

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs; returns a summary dict."""
        timer = Timer()
        try:
            while self.state.epoch < self.cfg.epoch:
                stats = self.train_epoch()
                self._after_epoch(stats)
        finally:
            self.runlog.close()
        summary = {
            "run_dir": str(self.run_dir),
            "skipped_images": self.dataset.skipped + self.loader.skipped,
            "epochs": self.state.epoch,
            "best_epoch": self.state.best_epoch,
            "best_metric": self.state.best_metric,
            "metrics": self.state.last_metrics,
            "seconds": timer.elapsed,
        }
        if self.main:
            self._log_summary(summary)
        return summary

    def _log_summary(self, summary: dict[str, Any]) -> None:
        metric = self.metric_name if self.evaluator is not None else None
        self.log.info("\n" + summary_table(summary_rows(summary, metric)))


def train(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train a model as ``cfg`` describes (one process); the public entry point of the engine."""
    return Trainer(cfg, resume=resume).fit()
