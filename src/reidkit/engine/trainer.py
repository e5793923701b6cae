"""The training loop: train an epoch, evaluate, keep the best, checkpoint, log.

The ``Trainer`` receives built parts (model, loader, loss, optimiser(s), scheduler, an
``evaluate`` callable, the run log) and plain ``TrainSettings``; it builds nothing from a
config. ``reidkit.app.build_run`` assembles the parts from a ``Config``; tests build them by
hand. Events for callbacks are listed in ``reidkit.engine.callbacks``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.profiler import record_function
from tqdm import tqdm

from reidkit.engine.callbacks import Callback
from reidkit.engine.resume import check_resume_compatible
from reidkit.engine.rng import rng_state, set_rng_state
from reidkit.engine.runlog import RunLog, Timer, summary_rows, summary_table
from reidkit.engine.state import TrainingError, TrainSettings, TrainState, stopped_text
from reidkit.engine.step import RECOMPILED, ForwardLoss, graph_compilations
from reidkit.models.checkpoint import load_checkpoint, save_checkpoint
from reidkit.utils.distributed import barrier
from reidkit.utils.errors import CheckpointError, ReidkitError, first_line
from reidkit.utils.logging import get_logger
from reidkit.utils.stopping import Terminated, clear_stop_request, deferred_stop, stop_requested

__all__ = ["Evaluate", "Trainer", "TrainingError", "TrainSettings", "TrainState"]

Evaluate = Callable[[nn.Module, int], dict[str, float]]


class Trainer:
    """Trains ``model`` with the given parts; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        loader: Any,
        loss: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        settings: TrainSettings,
        *,
        device: torch.device,
        net: nn.Module | None = None,
        loss_optimizer: torch.optim.Optimizer | None = None,
        evaluate: Evaluate | None = None,
        runlog: RunLog | None = None,
        callbacks: Sequence[Callback] = (),
        rank: int = 0,
        skipped_images: int = 0,
    ) -> None:
        self.model, self.loader, self.loss = model, loader, loss
        self.net = net if net is not None else model  # what the step calls (DDP / compiled)
        self.optimizer, self.loss_optimizer, self.scheduler = optimizer, loss_optimizer, scheduler
        self.settings, self.device, self.rank = settings, device, rank
        self.main = rank == 0
        self.run_dir = settings.run_dir
        self.evaluator = evaluate
        if evaluate is not None and not settings.metric:
            raise ValueError("TrainSettings.metric must name the metric when evaluate is given")
        self.runlog = runlog if runlog is not None else RunLog(self.run_dir, enabled=False)
        self.callbacks = list(callbacks)
        self.scaler = torch.amp.GradScaler(
            device.type, enabled=settings.amp == "fp16" and device.type == "cuda"
        )
        self.skipped_images = skipped_images
        self.state = TrainState()
        self.log = get_logger()
        self._resume_rng: dict[str, Any] | None = None
        self.running_epoch = 0  # the epoch being trained / evaluated / saved (1-based)
        self._log_histograms = False
        self._window_start = 0  # first iteration whose loss is not yet read from the device
        self.forward_loss = ForwardLoss(
            self.net,
            loss,
            device=device,
            amp=settings.amp,
            channels_last=settings.channels_last,
            compile_mode=settings.compile_mode,
            backend=settings.compile_backend,
        )

    @property
    def metric_name(self) -> str | None:
        """The metric that decides the best model (None without evaluation)."""
        return self.settings.metric if self.evaluator is not None else None

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (a plain dict; see ``reidkit.models.checkpoint``)."""
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
            "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
            "config": self.settings.config,
            "num_classes": int(getattr(self.model, "num_classes", 0)),
            "rng": rng_state(),
        }

    def save(self, best: bool = False) -> None:
        """Write checkpoints (rank 0): ``best.pth`` first when ``best``, then ``last.pth``.

        This is the one place that writes them, in the kill-safe order: the epoch's record is
        already in metrics.jsonl and last.pth comes last, so a kill at any point resumes to
        exactly the uninterrupted run (the epoch is redone and its files rewritten).
        """
        if not self.main:
            return
        state = self.state_dict()
        with deferred_stop():  # a SIGTERM meanwhile stops after the write
            if best:
                save_checkpoint(state, self.run_dir / "best.pth")
            save_checkpoint(state, self.run_dir / "last.pth")

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint (``"auto"``: the run folder's last.pth, if any)."""
        ckpt_path = self.run_dir / "last.pth" if path == "auto" else Path(path)
        if path == "auto" and not ckpt_path.exists():
            self.log.info("resume auto: no last.pth yet, starting fresh")
            return
        ckpt = load_checkpoint(ckpt_path, map_location=self.device)
        check_resume_compatible(ckpt.get("config", {}), self.settings.config, ckpt_path)
        try:
            self._load_parts(ckpt)
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{ckpt_path}: cannot resume from it ({first_line(e)})") from None
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

    def _load_parts(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.loss.load_state_dict(ckpt.get("loss", {}))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.loss_optimizer is not None:
            self.loss_optimizer.load_state_dict(ckpt["loss_optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        saved = ckpt.get("callbacks") or {}
        for cb in self.callbacks:
            if cb.name in saved:
                cb.load_state_dict(saved[cb.name])

    # ------------------------------------------------------------------ the loop
    def train_step(
        self, images: torch.Tensor, pids: torch.Tensor, check: bool = True
    ) -> dict[str, torch.Tensor]:
        """One optimiser step; returns the detached loss terms (still on the device). Nothing
        in it reads a value back from the device (``tests/engine/test_step_sync.py``): ``check``
        does (it stops on a non-finite loss before the update), so the epoch loop passes False
        and checks the sums of the loss it reads once per logging interval."""
        with record_function("reidkit.forward_loss"):
            total, values, feature = self.forward_loss(images, pids)
        if check:
            self._check_finite(total)
        if self._log_histograms and self.runlog.writer is not None:
            norms = feature.detach().float().norm(dim=1).cpu()
            if bool(torch.isfinite(norms).all()):  # TensorBoard refuses inf / NaN histograms
                self.runlog.writer.add_histogram("feature_norm", norms, self.state.iteration)
        self.optimizer.zero_grad(set_to_none=True)
        if self.loss_optimizer is not None:
            self.loss_optimizer.zero_grad(set_to_none=True)
        with record_function("reidkit.backward"):
            self.scaler.scale(total).backward()
        with record_function("reidkit.optimizer"):
            if self.settings.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
            self.scaler.step(self.optimizer)
            if self.loss_optimizer is not None:
                self.scaler.step(self.loss_optimizer)
            self.scaler.update()
            self.scheduler.step()
        self.state.iteration += 1
        return values

    def _check_finite(self, total: torch.Tensor) -> None:
        """Stop with the step and the last good checkpoint when the loss is NaN / inf."""
        if not bool(torch.isfinite(total)):
            self._stop_non_finite(total.item(), f"iteration {self.state.iteration}")

    def _stop_non_finite(self, value: float, when: str) -> None:
        last = self.run_dir / "last.pth"
        where = f"last good checkpoint: {last}" if last.exists() else "no checkpoint yet"
        raise TrainingError(
            f"loss is {value} at epoch {self.state.epoch + 1} {when}; {where} "
            "(try a lower lr, amp off, or grad_clip)"
        )

    def _batches(self) -> Any:
        """The epoch's batches with their index; on a mid-epoch resume the ones already
        trained are drawn (same order) and skipped, and the RNG is restored where they end."""
        done = self.state.step_in_epoch
        for step, batch in enumerate(self.loader):
            if step < done:
                if step + 1 == done and self._resume_rng is not None:
                    set_rng_state(self._resume_rng)
                continue
            yield step, batch

    def train_epoch(self) -> dict[str, float]:
        """Train (the rest of) one epoch; returns mean loss terms, lr and images/s."""
        s, n = self.state, len(self.loader)
        self.running_epoch = s.epoch + 1  # what a stop reports, until its checkpoint is written
        self.model.train()
        self.loader.set_epoch(s.epoch)
        for cb in self.callbacks:
            cb.on_epoch_start(self, s.epoch)
        n_images, timer, compiles = 0, Timer(), graph_compilations()
        pending: dict[str, torch.Tensor] = {}  # loss sums not yet copied from the device
        self._window_start = s.iteration
        bar = tqdm(
            total=n,
            initial=s.step_in_epoch,
            desc=f"epoch {s.epoch + 1}/{self.settings.epochs}",
            disable=not (self.settings.progress and self.main),
            leave=False,
            dynamic_ncols=True,
        )
        with deferred_stop():  # a SIGTERM stops after the step, checkpointed (utils.stopping)
            for step, batch in self._batches():
                log_step = step % self.settings.log_every == 0 or step + 1 == n
                self._log_histograms = self.main and log_step
                terms = self.train_step(batch.images, batch.pids, check=False)
                n_images += batch.images.shape[:-3].numel()  # frames of clips too
                for k, v in terms.items():
                    pending[k] = pending[k] + v if k in pending else v
                s.step_in_epoch = step + 1
                every = self.settings.checkpoint_every_iters
                stop = stop_requested() and s.step_in_epoch < n  # else stop after the epoch
                saving = stop or (every and s.iteration % every == 0 and s.step_in_epoch < n)
                if log_step or saving:  # one device sync: fold the pending sums into floats
                    self._log_step(pending, terms, bar)
                if saving:
                    self.save()
                if stop:
                    raise Terminated(stopped_text(self.run_dir, s.epoch + 1, (s.step_in_epoch, n)))
                bar.update(1)
        bar.close()
        self._fold(pending)
        self._resume_rng = None
        stats = self._epoch_stats(n_images, timer.elapsed)
        if self.forward_loss.compiled:  # counted, and reported when any follow warm-up
            stats["graph_compilations"] = graph_compilations() - compiles
            stats["recompilations"] = self.forward_loss.recompilations()
            if self.forward_loss.new_recompilations() and self.main:
                self.log.warning(f"epoch {s.epoch + 1}: {RECOMPILED}")
        return stats

    def _log_step(self, pending: dict[str, torch.Tensor], terms: dict, bar: Any) -> None:
        self._fold(pending)
        lr = self.optimizer.param_groups[0]["lr"]
        values = {k: float(v) for k, v in terms.items()}
        if self.main:
            self.runlog.scalars("loss", values, self.state.iteration)
            self.runlog.scalars("lr", {"base": lr}, self.state.iteration)
        bar.set_postfix(loss=f"{values['total']:.3f}", lr=f"{lr:.2e}")

    def _fold(self, pending: dict[str, torch.Tensor]) -> None:
        """Add device-side running sums into the epoch's float sums and clear them; stop when
        the loss of any step since the last fold was NaN / inf (it propagates into the sum)."""
        sums = self.state.epoch_sums
        window = {k: float(v) for k, v in pending.items()}  # the one device -> host read
        pending.clear()
        for k, v in window.items():
            sums[k] = sums.get(k, 0.0) + v
        first, self._window_start = self._window_start, self.state.iteration
        if "total" in window and not math.isfinite(window["total"]):
            when = f"between iterations {first} and {self.state.iteration - 1}"
            self._stop_non_finite(window["total"], when)

    def _epoch_stats(self, n_images: int, seconds: float) -> dict[str, float]:
        means = {k: v / max(1, len(self.loader)) for k, v in self.state.epoch_sums.items()}
        means["lr"] = self.optimizer.param_groups[0]["lr"]
        means["images_per_s"] = n_images / max(seconds, 1e-9)
        means["epoch_s"] = seconds
        if self.device.type == "cuda":
            means["gpu_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        return means

    def evaluate(self) -> dict[str, float]:
        """Run the evaluate callable on the current model (eval mode, inference mode)."""
        if self.evaluator is None:
            return {}
        self.model.eval()
        try:
            with torch.inference_mode():
                return self.evaluator(self.model, self.state.epoch)
        finally:
            self.model.train()

    def _is_better(self, value: float) -> bool:
        best = self.state.best_metric
        if best is None:
            return True
        return value > best if self.settings.mode == "max" else value < best

    def _after_epoch(self, stats: dict[str, float]) -> None:
        """Evaluate when due, tell the callbacks, write the record, then the checkpoints."""
        s = self.state
        s.epoch += 1
        s.step_in_epoch, s.epoch_sums = 0, {}
        period = self.settings.eval_period
        due = self.evaluator is not None and (
            s.epoch % period == 0 or s.epoch == self.settings.epochs
        )
        metrics: dict[str, float] = {}
        improved = self.evaluator is None
        if due and self.main:
            timer = Timer()
            metrics = self._evaluate_or_keep_last()
            stats["eval_s"] = timer.elapsed
            s.last_metrics = metrics
            improved = self._is_better(float(metrics[self.settings.metric]))
            if improved:
                s.best_metric, s.best_epoch = float(metrics[self.settings.metric]), s.epoch
        for cb in self.callbacks:
            cb.on_epoch_end(self, s.epoch, stats, metrics)
        if self.main:
            self.runlog.epoch(s.epoch, self.settings.epochs, s.iteration, stats, metrics, improved)
        self.save(best=improved)
        barrier()

    def _evaluate_or_keep_last(self) -> dict[str, float]:
        """Run the evaluation; on failure keep a checkpoint of this epoch and stop clearly."""
        try:
            metrics = self.evaluate()
        except ReidkitError:
            self.save()
            raise
        if self.settings.metric not in metrics:
            self.save()
            raise ReidkitError(
                f"evaluation_params.metric = {self.settings.metric!r} is not among the "
                f"evaluator's results: {', '.join(sorted(metrics))}"
            )
        return metrics

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs; returns a summary dict."""
        timer = Timer()
        clear_stop_request()  # a SIGTERM of an earlier fit in this process is not for this one
        for cb in self.callbacks:
            cb.on_fit_start(self)
        try:
            while self.state.epoch < self.settings.epochs:
                stats = self.train_epoch()
                self._after_epoch(stats)
                if stop_requested() and self.state.epoch < self.settings.epochs:
                    raise Terminated(stopped_text(self.run_dir, self.state.epoch, after=True))
        except Terminated as e:  # at a step (checkpointed) or at once: say how to continue
            raise Terminated(stopped_text(self.run_dir, self.running_epoch, why=e)) from None
        finally:
            self.runlog.close()
        summary = {
            "run_dir": str(self.run_dir),
            "skipped_images": self.skipped_images + int(getattr(self.loader, "skipped", 0)),
            "epochs": self.state.epoch,
            "best_epoch": self.state.best_epoch,
            "best_metric": self.state.best_metric,
            "metrics": self.state.last_metrics,
            "seconds": timer.elapsed,
        }
        if self.forward_loss.compiled:
            summary["recompilations"] = self.forward_loss.recompilations()
        for cb in self.callbacks:
            cb.on_fit_end(self, summary)
        if self.main:
            self.log.info("\n" + summary_table(summary_rows(summary, self.metric_name)))
        return summary
