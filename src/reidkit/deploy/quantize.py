"""Post-training INT8 quantization of an exported model, calibrated on real training images.

* ONNX: onnxruntime's static quantization in QDQ form (``quantize_static``): int8 weights per
  output channel, uint8 activations (the u8s8 pair that x86 VNNI instructions run), MinMax
  ranges collected by a ``CalibrationDataReader`` over the calibration images. The in-graph
  pre-processing (resize / normalise before the first convolution) and the L2 normalisation
  after the last weighted layer stay in float.
* OpenVINO: ``nncf.quantize`` on the IR (symmetric ``performance`` preset; the same ops stay
  float as for ONNX, see ``ir_float_ops``), or
  ``nncf.quantize_with_accuracy_control``, which reverts the layers that cost the most
  accuracy to float until the metric is within ``max_drop`` of the float model.

The calibration images go through exactly the pre-processing the deployed model sees: the
embedder's resize / normalise for ``float-nchw`` graphs, raw crops for ``uint8-*`` graphs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from reidkit.deploy.onnx_meta import OnnxModelInfo
from reidkit.deploy.openvino_ir import require_nncf
from reidkit.deploy.preprocess import preprocess_images
from reidkit.utils.errors import ExportError, first_line
from reidkit.utils.write_errors import disk_error

WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


def calibration_batches(
    images: Sequence[np.ndarray], info: OnnxModelInfo, batch_size: int = 8
) -> list[np.ndarray]:
    """HWC uint8 RGB images -> input batches in the graph's own input format."""
    if not images:
        raise ExportError("INT8 calibration needs at least one image (--calib-images >= 1)")
    if info.input_format == "float-nchw":
        return [
            preprocess_images(
                images[s : s + batch_size],
                info.img_h,
                info.img_w,
                info.mean,
                info.std,
                antialias=info.antialias,
                pixel_range=info.pixel_range,
            ).numpy()
            for s in range(0, len(images), batch_size)
        ]
    out = []
    for img in images:  # raw crops of any size: one per batch
        x = np.ascontiguousarray(img)[None]
        out.append(
            np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            if info.input_format == "uint8-nchw"
            else x
        )
    return out


def _float_nodes(graph: onnx.GraphProto) -> list[str]:
    """Nodes kept in float: everything before the first and after the last weighted op."""
    kinds = [n.op_type for n in graph.node]
    weighted = [i for i, k in enumerate(kinds) if k in WEIGHT_OPS]
    if not weighted:
        raise ExportError("INT8: the graph has no Conv / Gemm / MatMul to quantize")
    first, last = weighted[0], weighted[-1]
    keep = [n for i, n in enumerate(graph.node) if i < first or i > last]
    return [n.name for n in keep if n.name]


def ir_float_ops(model: Any) -> list[str]:
    """Ops of an ``openvino.Model`` kept in float: everything before the first and after the
    last convolution / matmul (the same policy as ``_float_nodes``). Without it nncf quantizes
    the pooled feature itself, the embedding, which cost 2 mAP points on a ResNet-50 run."""
    ops = [o for o in model.get_ordered_ops() if o.get_type_name() not in ("Constant", "Result")]
    weighted = [
        i
        for i, o in enumerate(ops)
        if o.get_type_name() in ("Convolution", "MatMul", "GroupConvolution")
    ]
    if not weighted:
        raise ExportError("INT8: the model has no Convolution / MatMul to quantize")
    first, last = weighted[0], weighted[-1]
    return [o.get_friendly_name() for i, o in enumerate(ops) if i < first or i > last]


class _Reader:
    """onnxruntime's ``CalibrationDataReader`` protocol over a list of input batches."""

    def __init__(self, name: str, batches: Sequence[np.ndarray]) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = iter([{name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the quantizers' own logging and warnings (their results are checked anyway)."""
    loggers = [logging.getLogger(), logging.getLogger("nncf")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def quantize_onnx(src: Path, dst: Path, batches: Sequence[np.ndarray], input_name: str) -> None:
    """Write the QDQ INT8 version of the fp32 ONNX file ``src`` to ``dst``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = dst.with_name(dst.stem + ".pre.onnx")
    reader = type("CalibrationReader", (_Reader, CalibrationDataReader), {})(input_name, batches)
    try:
        with _quiet():
            try:
                quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
            except Exception:  # optimisation is optional; quantize the exported graph instead
                prepared = src
            exclude = _float_nodes(onnx.load(str(prepared)).graph)
            quantize_static(
                str(prepared),
                str(dst),
                reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=exclude,
            )
    except ExportError:
        raise
    except Exception as e:  # onnxruntime raises many types
        mapped = disk_error(dst, e)  # it writes files: a full disk is not a quantizer bug
        if mapped is not None:
            raise mapped from e
        first = first_line(e, 300)
        msg = f"onnxruntime INT8 quantization failed: {type(e).__name__}: {first}"
        raise ExportError(msg) from None
    finally:
        if prepared != src:
            prepared.unlink(missing_ok=True)


def quantize_ir(
    model: Any,
    batches: Sequence[np.ndarray],
    *,
    validation: tuple[Sequence[Any], Callable[[Any, Any], float]] | None = None,
    max_drop: float = 0.01,
) -> Any:
    """The INT8 ``openvino.Model`` of ``model`` (nncf); with ``validation = (items, fn)`` the
    accuracy-controlled variant: ``fn(compiled_model, items) -> metric`` in [0, 1]."""
    nncf = require_nncf()
    calib = nncf.Dataset(list(batches))
    kwargs = {
        "preset": nncf.QuantizationPreset.PERFORMANCE,
        "subset_size": len(batches),
        "ignored_scope": nncf.IgnoredScope(names=ir_float_ops(model), validate=False),
    }
    try:
        with _quiet():
            if validation is None:
                return nncf.quantize(model, calib, **kwargs)
            items, fn = validation
            return nncf.quantize_with_accuracy_control(
                model,
                calib,
                nncf.Dataset(list(items)),
                lambda compiled, data: (fn(compiled, list(data)), None),
                max_drop=max_drop,
                drop_type=nncf.DropType.ABSOLUTE,
                **kwargs,
            )
    except Exception as e:  # nncf raises many types
        first = first_line(e, 300)
        raise ExportError(f"nncf INT8 quantization failed: {type(e).__name__}: {first}") from None
