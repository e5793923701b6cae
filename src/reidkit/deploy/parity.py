"""Parity checks: an exported graph (onnxruntime or OpenVINO) against the PyTorch model.

The same inputs (random images, plus real ones when a folder is given) go through
``ExportWrapper(model)`` in PyTorch and through the exported file; the outputs must agree to
``TOLERANCES`` of the file's precision. Used by every fp32 / fp16 export before the file is
moved into place (INT8 files are judged by the retrieval accuracy check instead).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from reidkit.deploy.onnx_meta import OnnxModelInfo, load_onnx
from reidkit.deploy.preprocess import ExportWrapper, list_images, load_image
from reidkit.deploy.runtime import create_session
from reidkit.utils.errors import ExportError, first_line

# Parity tolerances: max abs is relative to the reference's largest magnitude when above 1.
TOLERANCES = {"fp32": (1e-4, 0.9999), "fp16": (1e-2, 0.999)}

Runner = Callable[[np.ndarray], np.ndarray]


def wrapper_for(model: nn.Module, info: OnnxModelInfo, fp16: bool = False) -> ExportWrapper:
    """The traced / reference module for the input format and options ``info`` describes."""
    return ExportWrapper(
        model,
        info.img_h,
        info.img_w,
        input_format=info.input_format,
        l2norm=info.l2_normalized,
        fp16=fp16,
        mean=info.mean,
        std=info.std,
        antialias=info.antialias,
        pixel_range=info.pixel_range,
    ).eval()


def model_info_or_default(path: Union[str, Path], img_h: int, img_w: int) -> OnnxModelInfo:
    """The reidkit metadata of ``path``, or plain float-NCHW defaults for a foreign model."""
    proto = load_onnx(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    if "reidkit_format" in meta:
        return OnnxModelInfo.from_metadata(meta, str(path))
    out_shape = proto.graph.output[0].type.tensor_type.shape.dim
    dim = out_shape[-1].dim_value if out_shape else 0
    return OnnxModelInfo(
        input_format="float-nchw",
        img_h=img_h,
        img_w=img_w,
        embedding_dim=dim,
        input_name=proto.graph.input[0].name,
        output_name=proto.graph.output[0].name,
    )


def check_parity(
    model: nn.Module,
    onnx_path: Union[str, Path],
    img_h: int,
    img_w: int,
    num_images: int = 8,
    *,
    images_dir: Union[str, Path, None] = None,
    seed: int = 0,
) -> dict[str, float]:
    """Compare an ONNX file run by onnxruntime with ``model`` run by PyTorch.

    ``num_images`` random images (one batch when the batch axis is dynamic) plus up to
    ``num_images`` real images from ``images_dir``, each fed in the input format the ONNX
    metadata declares (PyTorch sees the same pixels through the same pre-processing).
    Returns ``max_abs``, ``min_cosine`` and ``num_images``; ``ExportError`` when above
    tolerance (max abs 1e-4 x max(1, largest reference magnitude) and cosine >= 0.9999 for
    fp32; 1e-2 and 0.999 for fp16).
    """
    info = model_info_or_default(onnx_path, img_h, img_w)
    session = create_session(onnx_path)
    dynamic = not isinstance(session.get_inputs()[0].shape[0], int)
    return compare_with_model(
        model,
        info,
        lambda x: _run(session, x, onnx_path),
        str(onnx_path),
        num_images=num_images,
        images_dir=images_dir,
        dynamic_batch=dynamic,
        seed=seed,
        engine="onnxruntime",
    )


def compare_with_model(
    model: nn.Module,
    info: OnnxModelInfo,
    run: Runner,
    source: str,
    *,
    num_images: int = 8,
    images_dir: Union[str, Path, None] = None,
    dynamic_batch: bool = True,
    seed: int = 0,
    engine: str = "the export",
) -> dict[str, float]:
    """The parity check of any runner of an exported graph (``run``: input batch -> (B, D)).

    See ``check_parity``; ``engine`` names the runtime in the error message.
    """
    model.eval()
    ref_module = wrapper_for(model, info, fp16=False)
    batches = _parity_inputs(ref_module, dynamic_batch, num_images, images_dir, seed)
    refs, outs = [], []
    for x in batches:
        with torch.no_grad():
            refs.append(ref_module(x).numpy())
        outs.append(run(x.numpy()))
    ref, got = np.concatenate(refs), np.concatenate(outs)
    if got.shape != ref.shape:
        raise ExportError(
            f"{source}: outputs have shape {got.shape} but PyTorch gives {ref.shape}; "
            "is this file exported from this model?"
        )
    max_abs = float(np.abs(got.astype(np.float64) - ref).max())
    atol, cos_tol = TOLERANCES.get(info.precision, TOLERANCES["fp32"])
    allowed = atol * max(1.0, float(np.abs(ref).max()))
    min_cos = _min_cosine(got, ref, allowed)
    if not max_abs <= allowed or not min_cos >= cos_tol:
        raise ExportError(
            f"{source}: {engine} differs from PyTorch (max abs {max_abs:.3g}, allowed "
            f"{allowed:.3g}; min cosine {min_cos:.6f}, required {cos_tol})"
        )
    return {"max_abs": max_abs, "min_cosine": min_cos, "num_images": float(len(ref))}


def _min_cosine(got: np.ndarray, ref: np.ndarray, allowed: float) -> float:
    """Smallest row cosine; rows whose reference is ~0 (norm below the abs tolerance) have no
    direction to compare and count as 1 (their max abs difference is still checked)."""
    g, r = np.linalg.norm(got, axis=1), np.linalg.norm(ref, axis=1)
    cos = np.sum(got * ref, 1) / np.maximum(g * r, 1e-30)
    cos[r <= allowed] = 1.0
    return float(cos.min()) if cos.size else 1.0


def _parity_inputs(
    ref_module: ExportWrapper,
    dynamic: bool,
    num_images: int,
    images_dir: Union[str, Path, None],
    seed: int,
) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    if dynamic:
        batches = [ref_module.example_input(num_images, gen)] if num_images > 0 else []
    else:
        batches = [ref_module.example_input(1, gen) for _ in range(num_images)]
    if images_dir is not None:
        for file in list_images(images_dir)[: max(num_images, 1)]:
            batches.append(ref_module.from_hwc(load_image(file)))
    if not batches:
        raise ExportError("parity check needs at least one image (num_images >= 1)")
    return batches


def _run(session: Any, x: np.ndarray, path: Union[str, Path]) -> np.ndarray:
    name = session.get_inputs()[0].name
    try:
        return np.asarray(session.run(None, {name: x})[0], dtype=np.float32)
    except Exception as e:  # onnxruntime raises its own exception types
        first = first_line(e, 300)
        msg = f"{path}: onnxruntime cannot run it on {x.dtype} {x.shape}: {first}"
        raise ExportError(msg) from None
