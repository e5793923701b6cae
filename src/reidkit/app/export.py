"""Export a training run (or one checkpoint): what ``reidkit export`` does.

Gathers from the run what ``deploy.artefact.export_artefact`` needs: the model and config of the
checkpoint, the run's query / gallery (the accuracy check, with the run's evaluation settings),
N evenly spaced training images (INT8 calibration), the pairs file of a stored calibration, and
writes ``model[_fp16|_int8].onnx`` or ``model[_fp16|_int8].xml`` beside the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from reidkit.data import build_dataset
from reidkit.data.images import decode_rgb
from reidkit.data.video_records import image_view, is_video
from reidkit.deploy.accuracy import RetrievalSet
from reidkit.deploy.artefact import ArtefactReport, ExportSpec, export_artefact
from reidkit.deploy.calibrate import PAIRS_KEY, PairSet, load_pairs
from reidkit.evaluation.thresholds import ThresholdTable
from reidkit.models.checkpoint import load_checkpoint, model_from_state, resolve_checkpoint
from reidkit.utils.errors import ExportError, ReidkitError, first_line
from reidkit.utils.logging import get_logger

RETRIEVAL_EVALUATORS = (None, "market_evaluate", "video_evaluate")


def default_output(ckpt: Path, fmt: str = "onnx", precision: str = "fp32") -> Path:
    """``model.onnx``, ``model_fp16.onnx``, ``model_int8.xml`` ... beside the checkpoint."""
    suffix = "" if precision == "fp32" else f"_{precision}"
    return ckpt.parent / f"model{suffix}.{'onnx' if fmt == 'onnx' else 'xml'}"


def _default_images(batches_dir: str) -> Path | None:
    """Real images for the parity check: the dataset's query folder when it is on disk."""
    for name in ("query", "bounding_box_test"):
        folder = Path(batches_dir) / name
        if folder.is_dir() and any(folder.iterdir()):
            return folder
    return None


def image_reader(source: Any) -> Callable[[str], np.ndarray]:
    """``read(key) -> HWC uint8 RGB`` over a dataset's image source (the package's decoder)."""

    def read(key: str) -> np.ndarray:
        return decode_rgb(source.read(key), name=key)

    return read


def retrieval_set(cfg: Any, dataset: Any) -> RetrievalSet:
    """The run's query / gallery with its own evaluation settings."""
    ev = cfg.evaluation_params
    metric = ev.metric if ev.type in RETRIEVAL_EVALUATORS and ev.metric else "mAP"
    return RetrievalSet(
        name=dataset.name,
        query=dataset.query,
        gallery=dataset.gallery,
        read=image_reader(dataset.source),
        metric=metric,
        ranks=tuple(ev.ranks),
        distance=ev.distance,
        rerank=ev.rerank,
        query_expansion=ev.query_expansion,
        flip=cfg.data.flip_test,
    )


def calibration_images(dataset: Any, count: int) -> list[np.ndarray]:
    """``count`` training images spread evenly over the (sorted) training list."""
    train = dataset.train
    if count < 1 or not train:
        raise ExportError(
            f"INT8 calibration needs training images: --calib-images {count}, "
            f"{len(train)} in {dataset.name}"
        )
    n = min(count, len(train))
    read = image_reader(dataset.source)
    return [read(train[i * len(train) // n].path) for i in range(n)]


def load_run_dataset(cfg: Any, needed: bool) -> Any:
    """The run's dataset, or ``None`` (with a warning saying why) when it cannot be read and
    ``needed`` is false. A video run's dataset is seen through its frames (``image_view``):
    the exported file embeds one frame at a time."""
    try:
        dataset = build_dataset(cfg)
        return image_view(dataset) if is_video(dataset) else dataset
    except ReidkitError as e:
        if needed:
            raise ExportError(
                f"the accuracy check needs the run's dataset ({first_line(e)}); pass "
                "--no-accuracy-check to export fp32/fp16 with the parity check only"
            ) from None
        get_logger().warning(
            f"no query/gallery accuracy check: the run's dataset cannot be read "
            f"({first_line(e)}); the export is checked against PyTorch only (parity)"
        )
        return None


def stored_calibration(state: dict[str, Any], ckpt: Path) -> ThresholdTable | None:
    """The checkpoint's ``calibration`` table, if it has one."""
    if state.get("calibration") is None:
        return None
    return ThresholdTable.from_dict(state["calibration"], f"{ckpt}[calibration]")


def _pairs_of(table: ThresholdTable | None) -> PairSet | None:
    file = (table.extra.get(PAIRS_KEY) if table else None) or None
    if file and Path(file).is_file():
        return load_pairs(file)
    if file:
        get_logger().warning(f"{file}: pairs file of the stored calibration is gone; copying it")
    return None


def export_run(
    target: Union[str, Path],
    out: Union[str, Path, None] = None,
    *,
    precision: str = "fp32",
    fmt: str = "onnx",
    opset: int = 17,
    fp16: bool = False,
    preprocess: str = "float-nchw",
    l2norm: bool = False,
    images_dir: Union[str, Path, None] = None,
    num_images: int = 8,
    exporter: str = "auto",
    calib_images: int = 300,
    max_drop: float | None = None,
    accuracy_control: bool = False,
    accuracy_check: bool | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    threads: int | None = None,
    verbose: bool = True,
) -> Path:
    """Rebuild the model of a run / checkpoint, export it, check it; return the file written.

    ``fp16=True`` is the old spelling of ``precision="fp16"``. ``accuracy_check``: ``None``
    (default) runs the retrieval check when the run's dataset is on disk and otherwise warns
    and exports fp32 / fp16 with the parity check only (an imported run, a dataset moved
    away); ``True`` requires it; ``False`` skips it (fp32 / fp16 only). INT8 always needs it.
    ``mean`` / ``std`` override the normalisation stored in the artefact (default: the run's
    ``data.mean`` / ``data.std`` / ``data.pixel_range``; see ``ExportSpec``).
    """
    if fp16 and precision not in ("fp32", "fp16"):
        raise ExportError(f"--fp16 contradicts --precision {precision}; use one of them")
    precision = "fp16" if fp16 else precision
    spec = ExportSpec(
        precision=precision,
        format=fmt,
        preprocess=preprocess,
        l2norm=l2norm,
        opset=opset,
        exporter=exporter,
        mean=None if mean is None else tuple(float(v) for v in mean),
        std=None if std is None else tuple(float(v) for v in std),
        max_drop=max_drop,
        accuracy_control=accuracy_control,
        threads=threads,
    )
    if accuracy_check is False and precision == "int8":
        raise ExportError("--no-accuracy-check is not allowed for INT8: its accuracy must be shown")
    ckpt = resolve_checkpoint(target)
    state = load_checkpoint(ckpt)
    model, cfg = model_from_state(state, str(ckpt))
    stored = stored_calibration(state, ckpt)
    dataset = None
    if accuracy_check is not False:
        dataset = load_run_dataset(cfg, needed=bool(accuracy_check) or precision == "int8")
    data = retrieval_set(cfg, dataset) if dataset is not None else None
    calib = calibration_images(dataset, calib_images) if precision == "int8" else None
    if images_dir is None:
        images_dir = _default_images(cfg.batches_dir)
    report: ArtefactReport = export_artefact(
        model,
        Path(out) if out is not None else default_output(ckpt, fmt, precision),
        cfg.img_h,
        cfg.img_w,
        spec,
        data=data,
        calib_images=calib,
        pairs=_pairs_of(stored),
        fallback_calibration=stored,
        distance=cfg.evaluation_params.distance,
        mean=cfg.data.mean,
        std=cfg.data.std,
        pixel_range=cfg.data.pixel_range,
        config=cfg.to_dict(),
        backbone=cfg.model_params.backbone,
        images_dir=images_dir,
        num_images=num_images,
        verbose=verbose,
    )
    if verbose:
        print(report.summary())
        if report.calibration is not None:
            print(report.calibration.format())
    return report.path
