"""What a run shows: TensorBoard scalars, ``metrics.jsonl`` lines, and per-epoch summaries."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from reidkit.utils.errors import DiskError
from reidkit.utils.files import atomic_path, atomic_write_text
from reidkit.utils.logging import get_logger
from reidkit.utils.write_errors import write_guard

EVENTS = "events.out.tfevents.*"  # TensorBoard's file, as named in error lines
TB_KEPT = "the TensorBoard events stop there; checkpoints are untouched"


class RunLog:
    """Writes a run's scalars to TensorBoard and one JSON line per epoch to metrics.jsonl."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._writer: SummaryWriter | None = None
        self._closed = False
        self.metrics_path = run_dir / "metrics.jsonl"
        self.log = get_logger()

    @property
    def writer(self) -> SummaryWriter | None:
        """The TensorBoard writer, created on first use (nothing is written to the run folder
        before training starts); ``None`` on other ranks and after ``close``."""
        if self._writer is None and self.enabled and not self._closed:
            self._writer = SummaryWriter(str(self.run_dir))
        return self._writer

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        """Log ``prefix/key`` scalars at ``step`` (``DiskError`` when the events file cannot
        be written: TensorBoard's writer thread raises on the next call)."""
        with write_guard(self.run_dir / EVENTS, kept=TB_KEPT):
            writer = self.writer  # created on first use: a read-only folder fails here
            for key, value in values.items() if writer is not None else ():
                writer.add_scalar(f"{prefix}/{key}", float(value), step)

    def epoch_record(self, record: dict[str, Any]) -> None:
        """Add one epoch's record to metrics.jsonl: the file is rewritten atomically (one
        line per epoch: small), so a full disk leaves the previous file whole."""
        if not self.enabled:
            return
        old = self.metrics_path.read_bytes() if self.metrics_path.is_file() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"  # a line cut short by a kill stays its own (skipped) line
        line = json.dumps(record, sort_keys=True) + "\n"
        with atomic_path(self.metrics_path) as tmp:
            tmp.write_bytes(old + line.encode("utf-8"))
        if self._writer is not None:
            with write_guard(self.run_dir / EVENTS, kept=TB_KEPT):
                self._writer.flush()

    def epoch(
        self,
        epoch: int,
        total: int,
        iteration: int,
        stats: dict[str, float],
        metrics: dict[str, float],
        best: bool,
    ) -> None:
        """Log one finished epoch: TensorBoard scalars, a metrics.jsonl record, one log line."""
        self.scalars("epoch", stats, epoch)
        if metrics:
            self.scalars("eval", metrics, epoch)
        record = {"epoch": epoch, "iteration": iteration, "train": stats, "eval": metrics}
        self.epoch_record({**record, "best": best})
        mark = "  * best" if best and metrics else ""
        evals = f" + eval {stats['eval_s']:.1f}s" if "eval_s" in stats else ""
        self.log.info(
            f"epoch {epoch}/{total}  loss {stats.get('total', math.nan):.4f}  "
            f"lr {stats['lr']:.2e}  {stats['images_per_s']:.0f} img/s  {stats['epoch_s']:.1f}s"
            + evals
            + (f"  | {format_metrics(metrics)}{mark}" if metrics else "")
        )

    def truncate_after(self, epoch: int) -> None:
        """Drop records of epochs after ``epoch`` (work a resumed run is about to redo)."""
        if not self.metrics_path.is_file():
            return
        keep = [r for r in read_records(self.metrics_path) if r["epoch"] <= epoch]
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep)
        atomic_write_text(self.metrics_path, text)

    def close(self) -> None:
        """Flush and close the TensorBoard writer. It runs after the checkpoints are written
        (or while an error stops the run), so a failure to flush is a warning, not an error."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                with write_guard(self.run_dir / EVENTS, kept=TB_KEPT):
                    writer.close()
            except DiskError as e:
                self.log.warning(f"warning: TensorBoard events: {e}")
        self._closed = True


def _numbers(values: Any) -> dict[str, float]:
    """The numeric entries of a record's ``train`` / ``eval`` part (others dropped)."""
    if not isinstance(values, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def read_records(path: Path) -> list[dict[str, Any]]:
    """The epoch records of a ``metrics.jsonl``, for every reader (``runs``, ``report``,
    resume): lines a kill cut short or damage made unreadable (not UTF-8, not JSON, not an
    object, no positive integer ``epoch``) are skipped, and non-numeric values inside
    ``train`` / ``eval`` dropped, so a damaged file never stops the command reading it."""
    records = []
    if not path.is_file():
        return records
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        epoch = rec.get("epoch") if isinstance(rec, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            continue
        rec.update(train=_numbers(rec.get("train")), eval=_numbers(rec.get("eval")))
        rec["best"] = rec.get("best") is True
        records.append(rec)
    return records


def format_metrics(metrics: dict[str, float]) -> str:
    """``rank1 0.912  mAP 0.734`` style text for logs."""
    parts = []
    for key, value in metrics.items():
        if key.startswith("num_") and float(value).is_integer():
            parts.append(f"{key} {int(value)}")
        elif isinstance(value, float):
            parts.append(f"{key} {value:.4f}")
        else:
            parts.append(f"{key} {value}")
    return "  ".join(parts)


def summary_table(rows: list[tuple[str, str]]) -> str:
    """A two-column box table for the end-of-run summary."""
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * (vwidth + 2) + "+"
    body = [f"| {k:<{width}} | {v:>{vwidth}} |" for k, v in rows]
    return "\n".join([line, *body, line])


def summary_rows(summary: dict[str, Any], metric: str | None) -> list[tuple[str, str]]:
    """Rows of the end-of-run table from ``Trainer.fit``'s summary."""
    rows = [("run", str(summary["run_dir"])), ("epochs", str(summary["epochs"]))]
    rows.append(("train time", f"{summary['seconds']:.1f} s"))
    if "recompilations" in summary:
        rows.append(("recompilations after warm-up", str(summary["recompilations"])))
    if summary.get("skipped_images"):
        rows.append(("skipped images", f"{summary['skipped_images']} (unreadable; see train.log)"))
    if metric is not None and summary["best_metric"] is not None:
        rows.append((f"best {metric}", f"{summary['best_metric']:.4f}"))
        rows.append(("best epoch", str(summary["best_epoch"])))
        for k, v in summary["metrics"].items():
            rows.append((k, str(int(v)) if k.startswith("num_") else f"{v:.4f}"))
    return rows


class Timer:
    """Wall-clock seconds since construction or the last ``reset``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def reset(self) -> None:
        """Restart the clock."""
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start
