"""OpenVINO IR files (``model.xml`` + ``model.bin``): convert, describe, save, load, run.

The IR is converted from the same ``ExportWrapper`` module the ONNX export traces (OpenVINO's
PyTorch front end keeps the antialiased resize of the in-graph pre-processing, which its ONNX
front end drops), so both formats take the same inputs and give the same embeddings. reidkit's
metadata (the keys of ``onnx_meta``) is stored in the IR's ``rt_info`` under ``reidkit`` and
checked against the graph when read.

CPU inference precision: OpenVINO computes float layers in bf16 by default on CPUs that support
it (AVX-512 BF16 / AMX), which moves embeddings by ~1e-2. ``compile_ir`` asks for f32 for every
file, so an fp32 IR matches PyTorch to 1e-4, an fp16 IR is fp16 *weights* (half the file,
decompressed at load) computed in f32, and an INT8 IR keeps its non-quantized layers in f32.

openvino and nncf are optional (``pip install 'reidkit[openvino]'``) and imported here only.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from reidkit.deploy.onnx_meta import OnnxModelInfo, check_io_dims
from reidkit.deploy.preprocess import ExportWrapper
from reidkit.utils.errors import ExportError, first_line
from reidkit.utils.files import temp_folder
from reidkit.utils.write_errors import write_guard

RT_NAMESPACE = "reidkit"
INSTALL_HINT = "pip install 'reidkit[openvino]'"


def require_openvino() -> Any:
    """The ``openvino`` module, or a one-line ``ExportError`` naming the extra to install."""
    try:
        import openvino
    except ImportError:
        raise ExportError(f"OpenVINO support needs the openvino package: {INSTALL_HINT}") from None
    return openvino


@lru_cache(maxsize=1)
def openvino_core() -> Any:
    """The process's one ``openvino.Core``: each Core owns its plugins and thread pools, and
    OpenVINO's guidance is one per application (a new Core per model piles up thread pools)."""
    return require_openvino().Core()


def require_nncf() -> Any:
    """The ``nncf`` module (OpenVINO INT8), or a one-line ``ExportError`` naming the extra."""
    # nncf imports torch's C++ extension helper, which warns about CUDA on CPU-only machines
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        import nncf
    except ImportError:
        raise ExportError(f"OpenVINO INT8 needs the nncf package: {INSTALL_HINT}") from None
    return nncf


def _input_shape(info: OnnxModelInfo, dynamic_batch: bool) -> list[int]:
    batch = -1 if dynamic_batch else 1
    if info.input_format == "uint8-nhwc":
        return [batch, -1, -1, 3]
    if info.input_format == "uint8-nchw":
        return [batch, 3, -1, -1]
    return [batch, 3, info.img_h, info.img_w]


def convert_wrapper(
    wrapper: ExportWrapper, example: torch.Tensor, info: OnnxModelInfo, dynamic_batch: bool = True
) -> Any:
    """An ``openvino.Model`` of ``wrapper`` (inputs named ``images``, output ``embeddings``)."""
    ov = require_openvino()
    shape = ov.PartialShape(_input_shape(info, dynamic_batch))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's deprecation notices
            model = ov.convert_model(wrapper, example_input=example, input=[shape])
    except Exception as e:  # the converter raises many types
        first = first_line(e, 300)
        raise ExportError(f"OpenVINO conversion failed: {type(e).__name__}: {first}") from None
    model.inputs[0].get_tensor().set_names({"images"})
    model.outputs[0].get_tensor().set_names({"embeddings"})
    return model


def set_rt_metadata(model: Any, meta: dict[str, str]) -> None:
    """Store reidkit's metadata strings in ``model``'s ``rt_info`` (namespace ``reidkit``)."""
    for key, value in meta.items():
        model.set_rt_info(str(value), [RT_NAMESPACE, key])


def rt_metadata(model: Any) -> dict[str, str]:
    """reidkit's metadata strings of an ``openvino.Model`` (empty when it has none)."""
    if not model.has_rt_info([RT_NAMESPACE]):
        return {}
    section = model.get_rt_info()[RT_NAMESPACE]
    keys = section.keys() if hasattr(section, "keys") else section.astype(dict).keys()
    return {str(k): model.get_rt_info([RT_NAMESPACE, str(k)]).astype(str) for k in keys}


def _dims(partial_shape: Any) -> list[int | None]:
    if partial_shape.rank.is_dynamic:
        return []
    return [d.get_length() if d.is_static else None for d in partial_shape]


def read_ir(path: Union[str, Path]) -> tuple[Any, OnnxModelInfo]:
    """``(openvino.Model, metadata)`` of an IR written by reidkit, checked against the graph."""
    require_openvino()  # the missing-extra error first
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: OpenVINO model file not found")
    if not path.with_suffix(".bin").is_file():
        raise ExportError(f"{path}: its weights file {path.with_suffix('.bin').name} is missing")
    try:
        model = openvino_core().read_model(str(path))
    except Exception as e:  # openvino raises RuntimeError subclasses with long messages
        first = first_line(e, 200)
        raise ExportError(f"{path}: not a readable OpenVINO model ({first})") from None
    meta = rt_metadata(model)
    if "reidkit_format" not in meta:
        raise ExportError(
            f"{path}: not an OpenVINO model exported by reidkit (no reidkit rt_info); export "
            "one with `reidkit export RUN_DIR --format openvino`"
        )
    info = OnnxModelInfo.from_metadata(meta, str(path))
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"{path}: expected one input and one output, the graph has "
            f"{len(model.inputs)} and {len(model.outputs)}"
        )
    elem = model.inputs[0].get_element_type().get_type_name()
    if elem not in (("u8",) if info.input_format.startswith("uint8") else ("f32", "f16")):
        raise ExportError(
            f"{path}: reidkit metadata disagrees with the graph (input_format "
            f"{info.input_format} but input type {elem})"
        )
    in_dims = _dims(model.inputs[0].get_partial_shape())
    out_dims = _dims(model.outputs[0].get_partial_shape())
    check_io_dims(info, in_dims, out_dims, str(path))
    return model, info


def read_openvino_info(path: Union[str, Path]) -> OnnxModelInfo:
    """The reidkit metadata of an OpenVINO IR (checked against the graph)."""
    return read_ir(path)[1]


def save_ir(model: Any, xml: Path, fp16: bool = False) -> None:
    """Write ``xml`` and its ``.bin`` (weights compressed to fp16 when ``fp16``)."""
    ov = require_openvino()
    ov.save_model(model, str(xml), compress_to_fp16=fp16)


def move_ir(src_xml: Path, dst_xml: Path) -> None:
    """Move an IR pair into place: the weights first, then the ``.xml`` that names them."""
    os.replace(src_xml.with_suffix(".bin"), dst_xml.with_suffix(".bin"))
    os.replace(src_xml, dst_xml)


def update_openvino_metadata(path: Union[str, Path], updates: dict[str, str]) -> None:
    """Rewrite an IR with ``updates`` merged into its reidkit ``rt_info`` (temp + rename)."""
    path = Path(path)
    model, _ = read_ir(path)
    set_rt_metadata(model, updates)
    work = temp_folder(path)  # removed after a kill by remove_stale_temp_files
    try:
        with write_guard(path):  # disk full, read-only ...: one line, the IR unchanged
            save_ir(model, work / path.name, fp16=False)  # weights keep their precision
            move_ir(work / path.name, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compile_ir(
    model: Any, precision: str = "fp32", threads: int | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """A function running one batch through ``model`` on the CPU (see the module docstring)."""
    require_openvino()  # the missing-extra error first
    del precision  # every precision computes its float layers in f32 (module docstring)
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads is not None:
        if threads < 1:
            raise ExportError(f"threads = {threads} is not valid: expected >= 1")
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        compiled = openvino_core().compile_model(model, "CPU", config)
    except Exception as e:
        first = first_line(e, 200)
        raise ExportError(f"OpenVINO cannot compile the model ({first})") from None
    request = compiled.create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        request.infer({0: np.ascontiguousarray(batch)})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    return run
