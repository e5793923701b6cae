"""Deployment: checked ONNX / OpenVINO export (fp32, fp16, INT8), an embedder on three backends,
same-person thresholds, feature extraction, search.

Names are imported lazily so ``import reidkit.deploy`` does not load torch or onnx.
"""

from __future__ import annotations

from reidkit.utils.lazy import lazy_exports

_EXPORTS = {
    "ExportReport": "reidkit.deploy.export",
    "export_onnx": "reidkit.deploy.export",
    "check_parity": "reidkit.deploy.parity",
    "resolve_checkpoint": "reidkit.models.checkpoint",
    "ExportSpec": "reidkit.deploy.artefact",
    "export_artefact": "reidkit.deploy.artefact",
    "RetrievalSet": "reidkit.deploy.accuracy",
    "read_openvino_info": "reidkit.deploy.openvino_ir",
    "FrameEmbeddings": "reidkit.deploy.frames",
    "OnnxModelInfo": "reidkit.deploy.onnx_meta",
    "read_onnx_info": "reidkit.deploy.onnx_meta",
    "Embedder": "reidkit.deploy.embedder",
    "Features": "reidkit.deploy.features_io",
    "load_features": "reidkit.deploy.features_io",
    "save_features": "reidkit.deploy.features_io",
    "extract": "reidkit.deploy.extract",
    "GalleryIndex": "reidkit.deploy.index",
    "build_index": "reidkit.deploy.search",
    "add_to_index": "reidkit.deploy.search",
    "search_gallery": "reidkit.deploy.search",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
