"""ONNX external data that stays inside its model's folder, checked before anything reads it.

A tensor of an ONNX file may keep its bytes in another file (``external_data`` with a
``location``; large models need it). A downloaded model could point that location at
``../../etc/passwd`` or ``/home/user/.ssh/id_rsa`` and have onnx / onnxruntime read it as
weights. ``open_onnx_proto`` parses the .onnx file alone (``load_external_data=False``),
refuses in one line any location that is absolute, climbs out with ``..``, or resolves
(through symbolic links) outside the folder of the .onnx file, and only then lets onnx read
the external files. ``onnx_meta.load_onnx`` and ``runtime.create_session`` (before
onnxruntime opens the file) both go through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from reidkit.utils.errors import ExportError


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of ``graph``: initializers, sparse ones, node attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for sub in attr.graphs:
                yield from _graph_tensors(sub)


def model_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of a model, its functions' node attributes included."""
    yield from _graph_tensors(proto.graph)
    for function in proto.functions:
        for node in function.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors


def check_external_data(proto: onnx.ModelProto, path: Path) -> int:
    """Refuse (``ExportError``) external data outside ``path``'s folder or missing; returns how
    many tensors keep their data in external files."""
    base = path.resolve().parent
    count = 0
    for tensor in model_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        count += 1
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        rel = Path(location)
        where = f"{path}: tensor {tensor.name!r} keeps its data in {location!r}"
        if not location or "\x00" in location or rel.is_absolute() or ".." in rel.parts:
            raise ExportError(
                f"{where}, outside the model's folder; refused (external data must be a file "
                "beside the .onnx file)"
            )
        full = (base / rel).resolve()
        if not full.is_relative_to(base):
            raise ExportError(
                f"{where}, a link to {full} outside the model's folder; refused (external "
                "data must be a file beside the .onnx file)"
            )
        if not full.is_file():
            raise ExportError(f"{where}, which does not exist beside the .onnx file")
    return count


def open_onnx_proto(path: str | Path, load_data: bool = True) -> onnx.ModelProto:
    """Parse ``path`` (external data checked first, read only when ``load_data``);
    ``ExportError`` for a missing, empty or corrupt file or unsafe external data."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: ONNX file not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as e:
        raise ExportError(f"{path}: not a valid ONNX file ({type(e).__name__})") from None
    if check_external_data(proto, path) and load_data:
        try:
            onnx.load_external_data_for_model(proto, str(path.resolve().parent))
        except (OSError, ValueError, RuntimeError) as e:
            raise ExportError(f"{path}: cannot read its external data ({e})") from None
    return proto
