"""onnxruntime sessions: execution providers and thread settings in one place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from reidkit.deploy.onnx_external import open_onnx_proto
from reidkit.utils.errors import ExportError, first_line

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def resolve_providers(providers: Union[str, Sequence[str], None]) -> list[str]:
    """``None``/``"cpu"`` -> CPU; ``"cuda"`` -> CUDA then CPU; names are checked.

    Unknown or unavailable providers raise ``ExportError`` listing what this onnxruntime has.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if providers is None:
        return ["CPUExecutionProvider"]
    names = [providers] if isinstance(providers, str) else list(providers)
    resolved = [PROVIDER_ALIASES.get(n.lower(), n) for n in names]
    missing = [n for n in resolved if n not in available]
    if missing:
        raise ExportError(
            f"onnxruntime provider {missing[0]!r} is not available here "
            f"(available: {', '.join(available)})"
        )
    if "CPUExecutionProvider" not in resolved:
        resolved.append("CPUExecutionProvider")
    return resolved


def create_session(
    path: Union[str, Path],
    providers: Union[str, Sequence[str], None] = None,
    threads: int | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path``; ``ExportError`` if it cannot load.

    ``threads`` sets ``intra_op_num_threads`` (``None`` = onnxruntime's default, all cores).
    """
    import onnxruntime as ort

    path = Path(path)
    open_onnx_proto(path, load_data=False)  # refuses external data outside its folder
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        if threads < 1:
            raise ExportError(f"threads = {threads} is not valid: expected >= 1")
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), options, providers=resolve_providers(providers))
    except ExportError:
        raise
    except Exception as e:  # onnxruntime raises its own exception types
        first = first_line(e, 300)
        raise ExportError(f"{path}: onnxruntime cannot load it ({first})") from None
