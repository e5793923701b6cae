"""The self-description stored in every exported model (ONNX ``metadata_props``).

A deployer (or ``Embedder.from_onnx``) reads these keys to know how to feed the graph and how to
compare its outputs; they are what makes a file "ours". All values are strings; lists are JSON.

| key | meaning |
| --- | --- |
| ``reidkit_format`` | version of this metadata scheme (``"1"``) |
| ``reidkit_version`` | reidkit version that exported the model |
| ``input_name`` / ``output_name`` | graph input / output names |
| ``input_format`` | ``float-nchw`` (normalised) or ``uint8-nhwc`` / ``uint8-nchw`` (raw crops) |
| ``input_height`` / ``input_width`` | the size the network sees |
| ``resize`` | ``bilinear-antialias`` or ``bilinear``: how crops are resized to the input size |
| ``mean`` / ``std`` | per-channel normalisation of RGB in 0..pixel_range (JSON lists) |
| ``pixel_range`` | ``1.0`` (pixels / 255, then mean / std) or ``255.0`` (raw pixels); absent = 1 |
| ``embedding_dim`` | D of the (B, D) output |
| ``distance`` | ``euclidean`` or ``cosine``: how embeddings are compared |
| ``l2_normalized`` | ``true`` when the output rows have unit norm |
| ``precision`` | ``fp32``, ``fp16`` or ``int8`` (compute inside the graph; I/O unchanged) |
| ``config_sha256`` | hash of the training config (empty when exported from a bare module) |
| ``backbone`` | backbone name from the config (empty when unknown) |
| ``exporter`` | ``torchscript``, ``dynamo`` or ``openvino`` (which converter produced it) |
| ``calibration`` | same-person thresholds (JSON of ``ThresholdTable``; absent when none) |

OpenVINO IR files carry the same keys in their ``rt_info`` under ``reidkit``. Whatever a file
says is checked against its graph before use (``check_against_graph``) and only ever selects
among the values listed here: metadata never names code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from reidkit import __version__
from reidkit.deploy.onnx_external import open_onnx_proto
from reidkit.deploy.preprocess import IMAGENET_MEAN, IMAGENET_STD
from reidkit.evaluation.thresholds import ThresholdTable
from reidkit.utils.choices import DISTANCES, INPUT_FORMATS, PRECISIONS
from reidkit.utils.errors import DataError, ExportError
from reidkit.utils.files import atomic_path

METADATA_FORMAT = "1"


@dataclass(frozen=True)
class OnnxModelInfo:
    """What an exported model says about itself (see the module docstring)."""

    input_format: str
    img_h: int
    img_w: int
    embedding_dim: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    pixel_range: float = 1.0
    distance: str = "euclidean"
    l2_normalized: bool = False
    antialias: bool = True
    precision: str = "fp32"
    input_name: str = "images"
    output_name: str = "embeddings"
    config_sha256: str = ""
    backbone: str = ""
    exporter: str = ""
    calibration: ThresholdTable | None = None
    reidkit_version: str = field(default_factory=lambda: _version())

    def to_metadata(self) -> dict[str, str]:
        """The string key/value pairs written into ``metadata_props``."""
        return {
            "reidkit_format": METADATA_FORMAT,
            "reidkit_version": self.reidkit_version,
            "input_name": self.input_name,
            "output_name": self.output_name,
            "input_format": self.input_format,
            "input_height": str(self.img_h),
            "input_width": str(self.img_w),
            "resize": "bilinear-antialias" if self.antialias else "bilinear",
            "mean": json.dumps(list(self.mean)),
            "std": json.dumps(list(self.std)),
            "pixel_range": repr(float(self.pixel_range)),
            "embedding_dim": str(self.embedding_dim),
            "distance": self.distance,
            "l2_normalized": "true" if self.l2_normalized else "false",
            "precision": self.precision,
            "config_sha256": self.config_sha256,
            "backbone": self.backbone,
            "exporter": self.exporter,
        } | ({"calibration": self.calibration.to_json()} if self.calibration else {})

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> OnnxModelInfo:
        """Parse ``metadata_props``; ``ExportError`` naming the key when a value is wrong."""
        if meta.get("reidkit_format") != METADATA_FORMAT:
            raise ExportError(
                f"{source}: not an ONNX model exported by reidkit (no reidkit metadata); "
                "export one with `reidkit export RUN_DIR`"
            )
        try:
            info = cls(
                input_format=meta["input_format"],
                img_h=int(meta["input_height"]),
                img_w=int(meta["input_width"]),
                embedding_dim=int(meta["embedding_dim"]),
                mean=tuple(float(v) for v in json.loads(meta["mean"])),
                std=tuple(float(v) for v in json.loads(meta["std"])),
                pixel_range=float(meta.get("pixel_range", "1.0")),
                distance=meta["distance"],
                l2_normalized=meta["l2_normalized"] == "true",
                antialias=meta.get("resize", "bilinear-antialias") == "bilinear-antialias",
                precision=meta["precision"],
                input_name=meta["input_name"],
                output_name=meta["output_name"],
                config_sha256=meta.get("config_sha256", ""),
                backbone=meta.get("backbone", ""),
                exporter=meta.get("exporter", ""),
                calibration=_calibration(meta.get("calibration"), source),
                reidkit_version=meta.get("reidkit_version", ""),
            )
        except (KeyError, ValueError, TypeError) as e:
            msg = f"{source}: reidkit metadata is damaged ({type(e).__name__}: {e})"
            raise ExportError(msg) from None
        _check_values(info, source)
        return info


def _calibration(text: str | None, source: str) -> ThresholdTable | None:
    if not text:
        return None
    try:
        return ThresholdTable.from_json(text, f"{source}[calibration]")
    except DataError as e:
        raise ExportError(str(e)) from None


def _check_values(info: OnnxModelInfo, source: str) -> None:
    """Every field that selects behaviour holds one of its known values (sizes are checked
    against the graph by ``check_io_dims``)."""
    for key, value, valid in (
        ("input_format", info.input_format, INPUT_FORMATS),
        ("distance", info.distance, DISTANCES),
        ("precision", info.precision, PRECISIONS),
    ):
        if value not in valid:
            raise ExportError(
                f"{source}: reidkit metadata has {key}={value!r}; expected one of {valid}"
            )


def _version() -> str:
    return __version__


def config_hash(config: dict[str, Any] | None) -> str:
    """A stable sha256 of a config dict (keys sorted), or ``""`` when there is none."""
    if not config:
        return ""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX file; ``ExportError`` for a missing, empty or corrupt file, or one whose
    external data lies outside its folder (``onnx_external``)."""
    path = Path(path)
    model = open_onnx_proto(path)  # external data outside the model's folder is refused
    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise ExportError(f"{path}: not a valid ONNX file (empty graph)")
    return model


def read_onnx_info(path: str | Path) -> OnnxModelInfo:
    """The reidkit metadata of an exported model, checked against its graph; ``ExportError``
    if the file is not ours or its metadata does not fit the graph."""
    proto = load_onnx(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    info = OnnxModelInfo.from_metadata(meta, str(path))
    check_against_graph(info, proto, str(path))
    return info


_ELEM = {"float-nchw": (1, 10), "uint8-nhwc": (2,), "uint8-nchw": (2,)}  # FLOAT, FLOAT16 / UINT8


def _dims(value_info: Any) -> list[int | None]:
    """Static dims of a graph input / output (None where symbolic)."""
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]


def _disagrees(source: str, what: str) -> ExportError:
    return ExportError(f"{source}: reidkit metadata disagrees with the graph ({what})")


def check_against_graph(info: OnnxModelInfo, proto: onnx.ModelProto, source: str) -> None:
    """The metadata must describe the graph it ships with: input / output names, element
    type, rank, the channel, height and width dims and the embedding size (where static)."""
    inputs = {i.name: i for i in proto.graph.input}
    outputs = {o.name: o for o in proto.graph.output}
    if info.input_name not in inputs or info.output_name not in outputs:
        raise _disagrees(source, f"no input {info.input_name!r} / output {info.output_name!r}")
    x, y = inputs[info.input_name], outputs[info.output_name]
    if x.type.tensor_type.elem_type not in _ELEM[info.input_format]:
        what = f"input_format {info.input_format} but input type {x.type.tensor_type.elem_type}"
        raise _disagrees(source, what)
    check_io_dims(info, _dims(x), _dims(y), source)


def check_io_dims(
    info: OnnxModelInfo, xd: Sequence[int | None], yd: Sequence[int | None], source: str
) -> None:
    """Input / output dims (``None`` = dynamic) against the metadata: rank 4 and 2, the
    channel, height and width where the input format fixes them, and the embedding size.
    Shared by ONNX files and OpenVINO IRs."""
    if info.img_h < 1 or info.img_w < 1 or info.embedding_dim < 1:
        raise _disagrees(
            source, f"input {info.img_h}x{info.img_w}, embedding_dim {info.embedding_dim}"
        )
    if len(info.mean) != 3 or len(info.std) != 3 or min(info.std) <= 0:
        raise _disagrees(
            source, f"mean {info.mean}, std {info.std}: expected 3 values each, std > 0"
        )
    if len(xd) != 4 or len(yd) != 2:
        raise _disagrees(source, f"input rank {len(xd)}, output rank {len(yd)}; expected 4 and 2")
    want = {"float-nchw": (3, info.img_h, info.img_w), "uint8-nchw": (3, None, None)}.get(
        info.input_format, (None, None, 3)
    )
    for got, exp in zip(xd[1:], want, strict=True):
        if got is not None and exp is not None and got != exp:
            raise _disagrees(
                source, f"input dims {list(xd[1:])} but the metadata says {list(want)}"
            )
    if yd[1] is not None and yd[1] != info.embedding_dim:
        raise _disagrees(source, f"output width {yd[1]} but embedding_dim {info.embedding_dim}")


def update_onnx_metadata(path: str | Path, updates: dict[str, str]) -> None:
    """Rewrite ``path`` with ``updates`` merged into its metadata (atomically)."""
    proto = load_onnx(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    set_metadata(proto, meta | updates)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def set_metadata(proto: onnx.ModelProto, meta: dict[str, str]) -> None:
    """Replace ``proto``'s metadata_props with ``meta`` (keys sorted for stable files)."""
    del proto.metadata_props[:]
    for key in sorted(meta):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, meta[key]
