"""Export a model to a checked deployment artefact: ONNX or OpenVINO, fp32 / fp16 / INT8.

``export_artefact`` builds the file in a temporary folder beside the destination, checks it and
moves it into place only when every check passed, so a failed export leaves nothing behind:

1. fp32 / fp16: the graph against PyTorch on random + real images (``parity``);
   INT8: an fp32 graph (parity-checked) quantized on calibration images (``quantize``);
2. the retrieval accuracy check (``accuracy``): the run's query / gallery through the artefact
   and through PyTorch, the metric may drop at most ``max_drop`` points;
3. same-person thresholds measured on the artefact itself (``calibrate``) written into its
   metadata: from the accuracy check's features, or from a pairs file.

The library function takes plain arguments (a model, images, ids); ``reidkit export RUN``
gathers them from a run folder.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from reidkit.deploy.accuracy import AccuracyReport, RetrievalSet, accuracy_check, per_query_metric
from reidkit.deploy.calibrate import PairSet, pair_thresholds, store_in_file
from reidkit.deploy.embedder import Embedder
from reidkit.deploy.export import export_onnx
from reidkit.deploy.onnx_meta import OnnxModelInfo, config_hash, update_onnx_metadata
from reidkit.deploy.openvino_ir import (
    compile_ir,
    convert_wrapper,
    move_ir,
    read_ir,
    save_ir,
    set_rt_metadata,
)
from reidkit.deploy.parity import compare_with_model, wrapper_for
from reidkit.deploy.preprocess import IMAGENET_MEAN, IMAGENET_STD, check_input_format
from reidkit.deploy.quantize import calibration_batches, quantize_ir, quantize_onnx
from reidkit.evaluation.thresholds import ThresholdTable
from reidkit.utils.choices import EXPORT_FORMATS, PRECISIONS
from reidkit.utils.errors import ExportError
from reidkit.utils.files import remove_stale_temp_files, temp_folder, undo_new_folders
from reidkit.utils.logging import get_logger
from reidkit.utils.write_errors import write_guard

DEFAULT_MAX_DROP = {"fp32": 0.2, "fp16": 0.2, "int8": 1.0}

# (mean, std, pixel_range): how the model's own training pipeline normalised its inputs.
Normalisation = tuple[Sequence[float], Sequence[float], float]


@dataclass(frozen=True)
class ExportSpec:
    """What to write. ``mean`` / ``std`` / ``pixel_range`` override the normalisation the
    artefact applies (``None``: the model's own, as given to ``export_artefact``; the accuracy
    check rejects wrong values); ``max_drop`` defaults to ``DEFAULT_MAX_DROP[precision]``
    points."""

    precision: str = "fp32"
    format: str = "onnx"
    preprocess: str = "float-nchw"
    l2norm: bool = False
    opset: int = 17
    exporter: str = "auto"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pixel_range: float | None = None
    max_drop: float | None = None
    accuracy_control: bool = False
    threads: int | None = None

    @property
    def drop_limit(self) -> float:
        return DEFAULT_MAX_DROP[self.precision] if self.max_drop is None else self.max_drop

    def check(self, has_data: bool, has_calib: bool) -> None:
        """One-line ``ExportError`` for combinations that cannot be honoured."""
        if self.precision not in PRECISIONS:
            raise ExportError(f"precision = {self.precision!r} is not valid: expected {PRECISIONS}")
        if self.format not in EXPORT_FORMATS:
            raise ExportError(
                f"format = {self.format!r} is not valid: expected one of {EXPORT_FORMATS}"
            )
        check_input_format(self.preprocess)
        if self.drop_limit < 0:
            raise ExportError(f"max_drop = {self.max_drop} is not valid: expected >= 0 points")
        if self.accuracy_control and (self.format, self.precision) != ("openvino", "int8"):
            raise ExportError("accuracy_control applies to --format openvino --precision int8")
        if self.precision == "int8" and not (has_data and has_calib):
            raise ExportError(
                "INT8 export needs calibration images and the query/gallery accuracy check "
                "(the run's dataset must be on disk)"
            )

    @property
    def label(self) -> str:
        return f"{'onnxruntime' if self.format == 'onnx' else 'openvino'} {self.precision}"


@dataclass
class ArtefactReport:
    """What ``export_artefact`` wrote and what it measured."""

    path: Path
    info: OnnxModelInfo
    parity: dict[str, float] | None
    accuracy: AccuracyReport | None
    calibration: ThresholdTable | None
    seconds: float

    def summary(self) -> str:
        graph = "fp32 graph before quantization" if self.info.precision == "int8" else "graph"
        parity = (
            f"; {graph} vs PyTorch: max abs {self.parity['max_abs']:.3g}, min cosine "
            f"{self.parity['min_cosine']:.6f}"
            if self.parity
            else ""
        )
        return (
            f"wrote {self.path} ({self.info.exporter}, {self.info.precision}, input "
            f"{self.info.input_format}, D={self.info.embedding_dim}){parity}"
        )


def _base_info(
    model: nn.Module, img_h: int, img_w: int, spec: ExportSpec, norm: Normalisation, **meta: Any
) -> OnnxModelInfo:
    """The artefact's metadata: ``spec``'s normalisation where it overrides the model's."""
    mean, std, pixel_range = norm
    info = OnnxModelInfo(
        input_format=spec.preprocess,
        img_h=img_h,
        img_w=img_w,
        embedding_dim=1,
        mean=tuple(float(v) for v in (mean if spec.mean is None else spec.mean)),
        std=tuple(float(v) for v in (std if spec.std is None else spec.std)),
        pixel_range=float(pixel_range if spec.pixel_range is None else spec.pixel_range),
        l2_normalized=spec.l2norm,
        precision=spec.precision,
        **meta,
    )
    wrapper = wrapper_for(model, info)
    with torch.no_grad():
        dim = int(wrapper(wrapper.example_input(2, torch.Generator().manual_seed(0))).shape[1])
    return replace(info, embedding_dim=dim)


def _onnx_artefact(
    model: nn.Module, tmp: Path, info: OnnxModelInfo, spec: ExportSpec, ctx: dict[str, Any]
) -> tuple[Path, dict[str, float] | None, OnnxModelInfo]:
    """The ONNX file in ``tmp`` (fp32 / fp16 parity-checked; INT8 quantized from fp32)."""
    fp16 = spec.precision == "fp16"
    target = tmp / ("fp32.onnx" if spec.precision == "int8" else "model.onnx")
    report = export_onnx(
        model,
        target,
        info.img_h,
        info.img_w,
        opset=spec.opset,
        fp16=fp16,
        preprocess=spec.preprocess,
        l2norm=spec.l2norm,
        mean=info.mean,
        std=info.std,
        pixel_range=info.pixel_range,
        distance=info.distance,
        config=ctx.get("config"),
        backbone=info.backbone,
        images_dir=ctx.get("images_dir"),
        num_images=ctx.get("num_images", 8),
        exporter=spec.exporter,
    )
    parity = {"max_abs": report.max_abs, "min_cosine": report.min_cosine}
    info = replace(report.info, config_sha256=info.config_sha256)
    if spec.precision != "int8":
        return target, parity, info
    out = tmp / "model.onnx"
    quantize_onnx(target, out, calibration_batches(ctx["calib"], info), info.input_name)
    info = replace(info, precision="int8")
    update_onnx_metadata(out, info.to_metadata())
    return out, parity, info


def _openvino_artefact(
    model: nn.Module, tmp: Path, info: OnnxModelInfo, spec: ExportSpec, ctx: dict[str, Any]
) -> tuple[Path, dict[str, float] | None, OnnxModelInfo]:
    """The OpenVINO IR in ``tmp`` (converted from PyTorch; INT8 through nncf)."""
    info = replace(info, exporter="openvino")
    wrapper = wrapper_for(model, info)
    example = wrapper.example_input(2, torch.Generator().manual_seed(0))
    ov_model = convert_wrapper(wrapper, example, info)
    out, parity = tmp / "model.xml", None
    if spec.precision == "int8":
        batches = calibration_batches(ctx["calib"], info, batch_size=1)
        validation = _accuracy_control(ctx, info) if spec.accuracy_control else None
        ov_model = quantize_ir(
            ov_model, batches, validation=validation, max_drop=spec.drop_limit / 100.0
        )
    set_rt_metadata(ov_model, info.to_metadata())
    save_ir(ov_model, out, fp16=spec.precision == "fp16")
    if spec.precision != "int8":
        run = compile_ir(read_ir(out)[0], info.precision, spec.threads)
        parity = compare_with_model(
            model,
            info,
            run,
            str(out),
            num_images=ctx.get("num_images", 8),
            images_dir=ctx.get("images_dir"),
            engine="OpenVINO",
        )
    return out, parity, info


def _accuracy_control(ctx: dict[str, Any], info: OnnxModelInfo) -> tuple[Sequence[int], Any]:
    """nncf's validation items (query indices) and function (metric of a compiled model)."""
    data: RetrievalSet = ctx["data"]
    arrays = ([data.read(r.path) for r in data.query], [data.read(r.path) for r in data.gallery])

    def make_embedder(compiled: Any) -> Embedder:
        def run(batch: np.ndarray) -> np.ndarray:
            return np.asarray(compiled(batch)[0], dtype=np.float32)

        return Embedder.from_runner(run, info, 32, "nncf candidate", "openvino")

    return list(range(len(data.query))), per_query_metric(data, arrays, make_embedder)


def _move_into_place(src: Path, out: Path) -> None:
    if src.suffix == ".xml":
        move_ir(src, out)
    else:
        os.replace(src, out)


def export_artefact(
    model: nn.Module,
    out: Union[str, Path],
    img_h: int,
    img_w: int,
    spec: ExportSpec = ExportSpec(),
    *,
    data: RetrievalSet | None = None,
    calib_images: Sequence[np.ndarray] | None = None,
    pairs: PairSet | None = None,
    fallback_calibration: ThresholdTable | None = None,
    distance: str = "euclidean",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    pixel_range: float = 1.0,
    config: dict[str, Any] | None = None,
    backbone: str = "",
    images_dir: Union[str, Path, None] = None,
    num_images: int = 8,
    verbose: bool = True,
) -> ArtefactReport:
    """Export ``model`` (eval mode, normalised float NCHW -> (B, D)) to ``out``, checked.

    ``data``: the run's query / gallery for the accuracy check (required for INT8; without it
    only the parity check runs); ``calib_images``: HWC uint8 training images for INT8;
    ``pairs``: measure the thresholds on a pairs file instead of ``data``;
    ``fallback_calibration``: the table to store when neither is available. ``mean`` /
    ``std`` / ``pixel_range``: the model's own normalisation (the PyTorch reference of every
    check uses it; the artefact too unless ``spec`` overrides it). The accuracy
    table is printed when ``verbose``. ``ExportError`` (nothing written) when a check fails.
    """
    start = time.perf_counter()
    spec.check(data is not None, bool(calib_images))
    out = Path(out)
    if out.suffix.lower() != (".onnx" if spec.format == "onnx" else ".xml"):
        want = ".onnx" if spec.format == "onnx" else ".xml"
        raise ExportError(f"{out}: an {spec.format} export must be written to a {want} file")
    model = copy.deepcopy(model).float().eval()
    info = _base_info(
        model,
        img_h,
        img_w,
        spec,
        (mean, std, pixel_range),
        distance=distance,
        backbone=backbone,
        config_sha256=config_hash(config),
    )
    ctx = {
        "config": config,
        "images_dir": images_dir,
        "num_images": num_images,
        "calib": list(calib_images or []),
        "data": data,
    }
    with undo_new_folders(out.parent):
        tmp = temp_folder(out)  # DiskError when out's folder is read-only, full ...
        remove_stale_temp_files(out.parent)  # work folders of killed exports
        try:
            build = _onnx_artefact if spec.format == "onnx" else _openvino_artefact
            with write_guard(out, tmp):  # torch / onnx / OpenVINO write failures: one line
                path, parity, info = build(model, tmp, info, spec, ctx)
            exported = Embedder.load(path, threads=spec.threads)
            reference = Embedder.from_model(
                model,
                img_h,
                img_w,
                distance=distance,
                l2norm=spec.l2norm,
                mean=mean,
                std=std,
                pixel_range=pixel_range,
            )
            accuracy, table = _check_and_calibrate(reference, exported, spec, data, pairs, verbose)
            table = table or fallback_calibration
            with write_guard(out, tmp):
                if table is not None:
                    store_in_file(path, table)
                    info = replace(info, calibration=table)
                _move_into_place(path, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return ArtefactReport(out, info, parity, accuracy, table, time.perf_counter() - start)


def _check_and_calibrate(
    reference: Embedder,
    exported: Embedder,
    spec: ExportSpec,
    data: RetrievalSet | None,
    pairs: PairSet | None,
    verbose: bool,
) -> tuple[AccuracyReport | None, ThresholdTable | None]:
    """The accuracy check (``ExportError`` when the drop is too large) and the artefact's own
    same-person thresholds (``reference``: the PyTorch model in its own pipeline)."""
    accuracy, table = None, None
    if data is not None:
        accuracy, qf, gf = accuracy_check(
            reference, exported, data, spec.drop_limit, ("PyTorch fp32", spec.label)
        )
        if verbose:
            print(accuracy.table(), flush=True)
        if not accuracy.passed:
            raise ExportError(
                f"export rejected: {accuracy.metric} dropped {accuracy.drop:.2f} points through "
                f"the {spec.label} export (allowed {spec.drop_limit:g}); nothing was written"
            )
        if pairs is None:
            table = data.thresholds(qf, gf, spec.label)
    if pairs is not None:
        table = pair_thresholds(exported, pairs)
    if table is None:
        get_logger().info("no query/gallery or pairs: the export carries no thresholds")
    return accuracy, table
