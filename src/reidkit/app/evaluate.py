"""``reidkit eval TARGET``: evaluate a run folder, a checkpoint, an ONNX model or saved features.

* run folder: its ``config.json`` and ``best.pth`` (``last.pth`` when there is no best);
* checkpoint (``.pth``): the model and config stored inside it;
* ``.onnx`` / OpenVINO ``.xml``: run with onnxruntime / OpenVINO through
  ``reidkit.deploy.Embedder``; the dataset comes from ``--config`` or the ``config.json`` beside
  the model;
* ``.npz``: saved features, either one file with ``qf, gf, q_pids, g_pids, q_camids,
  g_camids`` or a query features file of ``reidkit extract`` plus ``--gallery FILE``.

``data`` (``--data DIR``) evaluates a model on another dataset: the cross-domain protocol (train
on one dataset, test on another). It replaces the config's ``batches_dir`` and detects the
layout; the folder may hold only query and gallery (a test-only dataset).

The metrics are printed as a table and written to ``eval.json``; ``report`` > 0 also writes
the ranked lists of that many queries as ``report/ranked_lists.png`` and the run report page
``report/report.html`` (curves, per-camera figures, the worst queries; ``reidkit.app.report``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reidkit.app.eval_features import (
    FeatureSet,
    load_feature_file,
    model_features,
    onnx_features,
)
from reidkit.app.report import placeholder, write_report_page
from reidkit.config import Config, load_config
from reidkit.data import build_dataset
from reidkit.data.video_records import is_video
from reidkit.engine.callbacks import Callback
from reidkit.evaluation.builtins import evaluate_features
from reidkit.evaluation.registry import get_evaluator, run_evaluator
from reidkit.evaluation.report import (
    pick_queries,
    rank_queries,
    record_reader,
    render_ranked_lists,
    write_report,
)
from reidkit.evaluation.video import check_pool
from reidkit.models.checkpoint import restore, untrusted_config
from reidkit.utils.devices import pick_device
from reidkit.utils.errors import ConfigError, ReidkitError, first_line
from reidkit.utils.files import atomic_write_text


def _config_for(target: Path, config: str | None, overrides: Sequence[str]) -> Config:
    """The config given with --config, or the one beside an ONNX model / features file (a file
    we read: it may not name code, see ``untrusted_config``)."""
    if config:
        return load_config(config, list(overrides))
    folder = target if target.is_dir() else target.parent
    if (folder / "config.json").is_file():
        return untrusted_config(load_config(folder / "config.json", list(overrides)))
    raise ConfigError(
        f"{target}: no config.json beside it; pass --config params.json to say which dataset "
        "to evaluate on"
    )


def _with_eval_options(
    cfg: Any,
    rerank: bool | None,
    flip: bool | None,
    dataset: str | Path | None = None,
    pool: str | None = None,
) -> Any:
    """A copy of ``cfg`` with the --rerank / --flip / --pool switches and --data applied."""
    if pool is not None:
        cfg = cfg.model_copy(update={"video": cfg.video.model_copy(update={"pool": pool})})
    ev = cfg.evaluation_params
    if rerank is not None:
        ev = ev.model_copy(update={"rerank": rerank})
    data = cfg.data if flip is None else cfg.data.model_copy(update={"flip_test": flip})
    update: dict[str, Any] = {"evaluation_params": ev, "data": data}
    if dataset is not None:  # cross-domain: another dataset, its layout detected
        update["batches_dir"] = str(dataset)
        update["data"] = data.model_copy(update={"layout": "auto"})
    return cfg.model_copy(update=update)


def _write_report(
    fs: FeatureSet,
    n: int,
    topk: int,
    distance: str,
    out_dir: Path,
) -> Path:
    """Ranked lists of ``n`` queries as ``ranked_lists.png`` under ``out_dir`` (the HTML page
    is written by ``reidkit.app.report``)."""
    t = fs.tensors
    rows = rank_queries(
        t["qf"],
        t["gf"],
        t["q_pids"],
        t["g_pids"],
        t["q_camids"],
        t["g_camids"],
        pick_queries(len(t["qf"]), n),
        topk=topk,
        distance=distance,
    )
    if fs.dataset is not None and fs.records is not None:
        read_q = record_reader(fs.records[0], fs.dataset.source)
        read_g = record_reader(fs.records[1], fs.dataset.source)
    else:
        read_q = lambda i: placeholder(f"id {int(t['q_pids'][i])}")  # noqa: E731
        read_g = lambda i: placeholder(f"id {int(t['g_pids'][i])}")  # noqa: E731
    image = render_ranked_lists(rows, read_q, read_g)
    return write_report(out_dir, image)


def format_metrics(metrics: dict[str, float]) -> str:
    """A two-column text table of the metrics (counts as integers, the rest with 4 decimals)."""
    width = max(len(k) for k in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    for k, v in metrics.items():
        text = str(int(v)) if k.startswith("num_") else f"{v:.4f}"
        lines.append(f"{k:<{width}}  {text}")
    return "\n".join(lines)


def _checked_scales(scales: Sequence[float], path: Path) -> tuple[float, ...]:
    """The test-time scales as floats; ``ConfigError`` for bad ones or a non-PyTorch target."""
    out = tuple(float(x) for x in scales)
    if not out or any(x <= 0 for x in out):
        raise ConfigError(f"--scales {out}: expected positive factors such as 1.0,0.875")
    if out != (1.0,) and path.suffix in (".npz", ".onnx", ".xml"):
        raise ConfigError(
            f"--scales applies to PyTorch models (a run folder or checkpoint), not {path.name}"
        )
    return out


def evaluate_target(
    target: str | Path,
    *,
    config: str | None = None,
    overrides: Sequence[str] = (),
    gallery: str | Path | None = None,
    rerank: bool | None = None,
    flip: bool | None = None,
    report: int = 0,
    topk: int = 10,
    html: bool = True,
    output: str | Path | None = None,
    device: str = "auto",
    scales: Sequence[float] = (1.0,),
    evaluator: str | None = None,
    data: str | Path | None = None,
    tracklets: bool = False,
    pool: str | None = None,
) -> dict[str, float]:
    """Evaluate ``target`` (see the module docstring), write ``eval.json`` and return metrics.

    ``scales`` averages the embeddings of resized images (multi-scale test, PyTorch models).
    ``evaluator`` names the evaluator to run on a PyTorch model (a built-in or a plugin the
    user names); without it, the one of ``config`` or the built-in the stored config names.
    ``data`` is a dataset folder / store to evaluate on instead of the config's.
    ``tracklets`` scores query tracklets against gallery tracklets (an image dataset grouped
    by pid and camera; ``reidkit.app.evaluate_video``), ``pool`` (avg | max) overrides
    ``video.pool``; a video dataset is always scored tracklet by tracklet.
    """
    path = Path(target)
    scales = _check_target(path, data, scales, tracklets, pool)
    dev = pick_device(device)
    if path.suffix == ".npz":
        cfg = (
            _with_eval_options(_config_for(path, config, overrides), rerank, None)
            if config
            else None
        )
        fs = load_feature_file(path, gallery)
    elif path.suffix in (".onnx", ".xml"):
        cfg = _config_for(path, config, overrides)
        cfg = _with_eval_options(cfg, rerank, flip, data, pool)
        fs = onnx_features(path, cfg, dev, tracklets)
    else:
        model, cfg = restore(path, config, overrides, dev)
        cfg = _with_eval_options(cfg, rerank, flip, data, pool)
        kind = evaluator or cfg.evaluation_params.type or "market_evaluate"
        tracklets = tracklets or kind == "video_evaluate"
        if kind not in ("market_evaluate", "video_evaluate"):
            if tracklets:
                raise ConfigError(f"--tracklets: evaluator {kind} scores images, not tracklets")
            metrics = _run_configured(kind, cfg, model, dev)
            out_json = _save(path, output, metrics, kind, data)
            if report > 0 and html:
                _write_page(path, out_json, metrics, cfg, None, report, topk)
            return metrics
        fs = model_features(model, cfg, dev, scales, tracklets)
    ev = cfg.evaluation_params if cfg is not None else None
    distance = ev.distance if ev else "euclidean"
    metrics = evaluate_features(
        **fs.tensors,
        ranks=ev.ranks if ev else (1, 5, 10),
        distance=distance,
        rerank=bool(rerank) if ev is None else ev.rerank,
        query_expansion=ev.query_expansion if ev else 0,
    )
    video = fs.dataset is not None and (tracklets or is_video(fs.dataset))
    kind = "video_evaluate" if video else "market_evaluate"
    out_json = _save(
        path, output, metrics, kind, data, tracklets, cfg.video.pool if video else None
    )
    if report > 0:
        _write_report(fs, report, topk, distance, out_json.parent / "report")
        if html:
            _write_page(path, out_json, metrics, cfg, fs, report, topk, rerank, ev)
    return metrics


def _check_target(
    path: Path, data: Any, scales: Sequence[float], tracklets: bool, pool: str | None
) -> tuple[float, ...]:
    """One-line errors for a missing target / --data and options that do not fit it."""
    if not path.exists():
        raise ConfigError(f"{path}: no such run folder, checkpoint, .onnx, .xml or .npz file")
    if (data is not None or tracklets) and path.suffix == ".npz":
        flag = "--data" if data is not None else "--tracklets"
        raise ConfigError(f"{flag} applies to models, not to saved features ({path.name})")
    if data is not None and not Path(data).exists():
        raise ConfigError(f"--data {data}: no such dataset folder or .lmdb store")
    if pool is not None:
        check_pool(pool)
    out = _checked_scales(scales, path)
    if tracklets and out != (1.0,):
        raise ConfigError("--scales applies to image-level evaluation, not to --tracklets")
    return out


def _write_page(
    path: Path,
    out_json: Path,
    metrics: dict[str, float],
    cfg: Any,
    fs: FeatureSet | None,
    queries: int,
    topk: int,
    rerank: bool | None = None,
    ev: Any = None,
) -> Path:
    """The self-contained report page (``report/report.html``) of this evaluation."""
    return write_report_page(
        out_json.parent / "report",
        target=path,
        metrics=metrics,
        metrics_file=out_json,
        cfg=cfg,
        tensors=fs.tensors if fs is not None else None,
        records=fs.records if fs is not None and fs.dataset is not None else None,
        source=fs.dataset.source if fs is not None and fs.dataset is not None else None,
        distance=ev.distance if ev else "euclidean",
        rerank=bool(rerank) if ev is None else ev.rerank,
        query_expansion=ev.query_expansion if ev else 0,
        queries=queries,
        topk=topk,
    )


def _run_configured(kind: str, cfg: Any, model: torch.nn.Module, dev: torch.device) -> dict:
    """Run the config's own evaluator (classification, a user file ...) on the model."""
    ev = get_evaluator(kind, cfg.evaluation_params.search_dirs)
    return run_evaluator(ev, cfg, model, dataset=build_dataset(cfg), device=dev)


def _save(
    target: Path,
    output: str | Path | None,
    metrics: dict[str, float],
    kind: str,
    data: str | Path | None = None,
    tracklets: bool = False,
    pool: str | None = None,
) -> Path:
    """Write ``eval.json`` (default: in the run folder, else beside the target).

    With ``--data DIR`` the default name is ``eval_<DIR name>.json``, so a cross-domain result
    does not replace the run's own; ``--tracklets`` adds ``_tracklets`` (the image-level file
    of the same data stays).
    """
    name = f"eval_{Path(data).resolve().name}" if data is not None else "eval"
    name += "_tracklets.json" if tracklets else ".json"
    out = Path(output) if output else (target if target.is_dir() else target.parent) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"target": str(target), "evaluator": kind, "metrics": metrics}
    if data is not None:
        record["data"] = str(data)
    if pool is not None:
        record["level"], record["pool"] = "tracklet", pool
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    return out


def report_run(
    run_dir: str | Path, *, queries: int = 10, topk: int = 10, device: str = "auto"
) -> tuple[dict[str, float], Path]:
    """``reidkit report RUN``: evaluate the run's best model (``eval.json``) and write the run
    report ``RUN/report/report.html``; returns the metrics and the page's path."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"{run}: not a run folder (expected config.json and best.pth inside)")
    if queries < 1 or topk < 1:
        raise ConfigError(f"--queries {queries} --topk {topk}: expected 1 or more")
    metrics = evaluate_target(run, report=queries, topk=topk, device=device)
    return metrics, run / "report" / "report.html"


class RunReport(Callback):
    """Writes the run report once training has finished (rank 0). A failure is logged as a
    warning: the finished training stands."""

    name = "run_report"

    def __init__(self, queries: int = 10, topk: int = 10) -> None:
        self.queries, self.topk = queries, topk

    def on_fit_end(self, trainer: Any, summary: dict[str, Any]) -> None:
        """Evaluate the best model and write ``report/report.html``."""
        if not trainer.main or trainer.evaluator is None:
            return
        try:
            _, page = report_run(
                trainer.run_dir, queries=self.queries, topk=self.topk, device=str(trainer.device)
            )
        except ReidkitError as e:
            trainer.log.warning(f"run report not written: {first_line(e)}")
            return
        trainer.log.info(f"report: {page}")
