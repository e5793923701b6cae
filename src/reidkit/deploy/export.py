"""ONNX export of an embedding model, checked against PyTorch with onnxruntime.

``export_onnx`` traces ``ExportWrapper(model)`` with ``torch.onnx.export``, stores reidkit's
metadata in the graph, runs ``onnx.checker`` and shape inference, writes the file to a temporary
name, compares onnxruntime with PyTorch on random (and optionally real) images and renames the
file into place only if the check passes: a failed export leaves nothing behind.

Exporter choice: the legacy TorchScript exporter (``dynamo=False``) first. It exists on every
torch from 2.4 to 2.14, is fast (under a second for ResNet-50), deterministic, and handles
dynamic batch / height / width axes of our models with plain ``dynamic_axes``. The
``torch.export``-based exporter (``dynamo=True``, the default since torch 2.9) is the fallback when
the legacy one raises (it is deprecated and may disappear); it needs onnxscript and emits opset 18
or newer. One exception: an antialiased resize inside the graph (``preprocess`` uint8 formats,
matching the test pipeline) exists only as opset-18 ``Resize(antialias=1)``, which only the dynamo
exporter writes, so those exports try dynamo first.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import io
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import onnx
import torch
from torch import nn

from reidkit.deploy.onnx_meta import OnnxModelInfo, config_hash, set_metadata
from reidkit.deploy.parity import check_parity, wrapper_for
from reidkit.deploy.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ExportWrapper,
    check_input_format,
)
from reidkit.utils.choices import DISTANCES, EXPORTERS
from reidkit.utils.errors import ExportError, ReidkitError, first_line
from reidkit.utils.files import atomic_path


@dataclass(frozen=True)
class ExportReport:
    """What an export produced and how closely onnxruntime matched PyTorch."""

    path: Path
    info: OnnxModelInfo
    opset: int
    max_abs: float
    min_cosine: float
    num_checked: int
    seconds: float

    def summary(self) -> str:
        """One line for the console."""
        return (
            f"wrote {self.path} ({self.info.exporter} exporter, opset {self.opset}, "
            f"{self.info.precision}, input {self.info.input_format}, D={self.info.embedding_dim}); "
            f"onnxruntime vs PyTorch on {self.num_checked} images: max abs diff "
            f"{self.max_abs:.3g}, min cosine {self.min_cosine:.6f}"
        )


def export_onnx(
    model: nn.Module,
    path: Union[str, Path],
    img_h: int,
    img_w: int,
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
    fp16: bool = False,
    preprocess: str = "float-nchw",
    l2norm: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    pixel_range: float = 1.0,
    antialias: bool = True,
    distance: str = "euclidean",
    config: dict[str, Any] | None = None,
    backbone: str = "",
    images_dir: Union[str, Path, None] = None,
    num_images: int = 8,
    exporter: str = "auto",
) -> ExportReport:
    """Export ``model`` (eval mode, float NCHW -> (B, D)) to ``path`` and verify it.

    ``preprocess`` = ``uint8-nhwc`` / ``uint8-nchw`` puts resize + normalisation inside the
    graph (raw crops of any size in; ``antialias`` as in the test pipeline, which needs the
    dynamo exporter and opset >= 18); ``l2norm`` normalises the output rows; ``fp16`` computes
    in half precision. ``images_dir`` adds real images to the parity check. Raises
    ``ExportError`` (and writes nothing) when export, checking or parity fails.
    """
    start = time.perf_counter()
    _check_options(img_h, img_w, opset, preprocess, distance, exporter)
    info = OnnxModelInfo(
        input_format=preprocess,
        img_h=img_h,
        img_w=img_w,
        embedding_dim=0,  # known after the first forward
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        pixel_range=float(pixel_range),
        distance=distance,
        l2_normalized=l2norm,
        antialias=antialias,
        precision="fp16" if fp16 else "fp32",
        config_sha256=config_hash(config),
        backbone=backbone,
    )
    model.eval()
    wrapper = wrapper_for(copy.deepcopy(model).half() if fp16 else model, info, fp16)
    example = wrapper.example_input(2 if dynamic_batch else 1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = wrapper(example)  # ExportError unless the model returns (B, D)
    proto, used = _to_onnx(wrapper, example, opset, dynamic_batch, exporter)
    info = dataclasses.replace(info, embedding_dim=int(out.shape[1]), exporter=used)
    _set_output_shape(proto, info.embedding_dim, dynamic_batch)
    set_metadata(proto, info.to_metadata())
    proto = _check_graph(proto)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
        stats = check_parity(model, tmp, img_h, img_w, num_images, images_dir=images_dir)
    return ExportReport(
        path=path,
        info=info,
        opset=_opset_of(proto),
        max_abs=stats["max_abs"],
        min_cosine=stats["min_cosine"],
        num_checked=int(stats["num_images"]),
        seconds=time.perf_counter() - start,
    )


def _check_options(
    img_h: int, img_w: int, opset: int, preprocess: str, distance: str, exporter: str
) -> None:
    if img_h <= 0 or img_w <= 0:
        raise ExportError(f"image size {img_h}x{img_w} is not valid: both sides must be > 0")
    newest = onnx.defs.onnx_opset_version()
    if not 11 <= opset <= newest:
        raise ExportError(f"opset = {opset} is not valid: expected 11..{newest}")
    check_input_format(preprocess)
    if distance not in DISTANCES:
        raise ExportError(f"distance = {distance!r} is not valid: expected one of {DISTANCES}")
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter = {exporter!r} is not valid: expected one of {EXPORTERS}")


def _dynamic_axes(wrapper: ExportWrapper, dynamic_batch: bool) -> dict[int, str]:
    axes = {0: "batch"} if dynamic_batch else {}
    if wrapper.input_format == "uint8-nhwc":
        axes.update({1: "height", 2: "width"})
    elif wrapper.input_format == "uint8-nchw":
        axes.update({2: "height", 3: "width"})
    return axes


def _to_onnx(
    wrapper: ExportWrapper, example: torch.Tensor, opset: int, dynamic_batch: bool, exporter: str
) -> tuple[onnx.ModelProto, str]:
    """Trace ``wrapper`` with the chosen exporter (see the module docstring)."""
    axes = _dynamic_axes(wrapper, dynamic_batch)
    errors = []
    order = ("dynamo", "torchscript") if wrapper.needs_dynamo else ("torchscript", "dynamo")
    for name in order if exporter == "auto" else (exporter,):
        fn = _export_torchscript if name == "torchscript" else _export_dynamo
        try:
            return fn(wrapper, example, opset, axes), name
        except ReidkitError:
            raise
        except Exception as e:  # exporters raise many unrelated types
            first = first_line(e, 300)
            errors.append(f"{name}: {type(e).__name__}: {first}")
    raise ExportError("torch.onnx.export failed (" + "; ".join(errors) + ")")


def _export_torchscript(
    wrapper: nn.Module, example: torch.Tensor, opset: int, axes: dict[int, str]
) -> onnx.ModelProto:
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            buf,
            input_names=["images"],
            output_names=["embeddings"],
            opset_version=opset,
            dynamic_axes={"images": axes, "embeddings": {0: "batch"} if 0 in axes else {}},
            do_constant_folding=True,
            **kwargs,
        )
    return onnx.load_from_string(buf.getvalue())


def _export_dynamo(
    wrapper: nn.Module, example: torch.Tensor, opset: int, axes: dict[int, str]
) -> onnx.ModelProto:
    from torch.export import Dim

    shapes = ({i: Dim(name, min=2) for i, name in axes.items()},)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper,
            (example,),
            input_names=["images"],
            output_names=["embeddings"],
            opset_version=max(opset, 18),
            dynamic_shapes=shapes,
            dynamo=True,
            verbose=False,
        )
    return program.model_proto


def _set_output_shape(proto: onnx.ModelProto, dim: int, dynamic_batch: bool) -> None:
    """Declare the output as (batch, D): exporters may leave D symbolic after a Cast."""
    shape = proto.graph.output[0].type.tensor_type.shape
    del shape.dim[:]
    batch, width = shape.dim.add(), shape.dim.add()
    if dynamic_batch:
        batch.dim_param = "batch"
    else:
        batch.dim_value = 1
    width.dim_value = dim


def _check_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``onnx.checker`` (full) and strict shape inference; ``ExportError`` on a bad graph."""
    try:
        onnx.checker.check_model(proto, full_check=True)
        return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        first = first_line(e, 300)
        raise ExportError(f"exported graph failed the ONNX checker: {first}") from None


def _opset_of(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
