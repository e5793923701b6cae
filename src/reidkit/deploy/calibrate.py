"""Same-person thresholds of an embedder (any backend), from a query / gallery split or a pairs
file; and writing them into exported files. The numbers are ``evaluation.thresholds``'."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from reidkit.deploy.accuracy import RetrievalSet, embed_splits
from reidkit.deploy.embedder import Embedder
from reidkit.deploy.onnx_meta import update_onnx_metadata
from reidkit.deploy.openvino_ir import update_openvino_metadata
from reidkit.deploy.preprocess import load_image
from reidkit.evaluation.thresholds import ThresholdTable, cosine_similarity, thresholds_from_scores
from reidkit.evaluation.verification import read_pairs
from reidkit.utils.errors import DataError

PAIRS_KEY = "pairs_file"  # ThresholdTable.extra key naming the pairs file a table came from


@dataclass
class PairSet:
    """Labelled image pairs ``(a, b, 1 same / 0 different)`` and how to read an image."""

    pairs: list[tuple[str, str, int]]
    read: Callable[[str], np.ndarray]
    name: str


def load_pairs(path: Union[str, Path]) -> PairSet:
    """A pairs file (LFW ``pairs.txt`` or ``a,b,label`` CSV, see ``evaluation.verification``);
    relative image paths are relative to the pairs file's folder."""
    path = Path(path)
    pairs, _ = read_pairs(path)
    root = path.parent

    def read(name: str) -> np.ndarray:
        file = Path(name) if Path(name).is_absolute() else root / name
        return load_image(file)

    return PairSet(pairs, read, str(path))


def measured_on(embedder: Embedder) -> str:
    """``"<backend> <precision>"``: which model a table was measured with."""
    return f"{embedder.backend} {embedder.precision}"


def pair_thresholds(embedder: Embedder, data: PairSet) -> ThresholdTable:
    """The table of a pairs file: each distinct image embedded once."""
    names = sorted({p for a, b, _ in data.pairs for p in (a, b)})
    where = {n: i for i, n in enumerate(names)}
    feats = np.concatenate(
        [
            embedder.embed_arrays([data.read(n) for n in names[s : s + embedder.batch_size]])
            for s in range(0, len(names), embedder.batch_size)
        ]
    )
    a = feats[[where[p[0]] for p in data.pairs]]
    b = feats[[where[p[1]] for p in data.pairs]]
    return thresholds_from_scores(
        cosine_similarity(a, b),
        [p[2] for p in data.pairs],
        source=f"pairs file {data.name}",
        measured_on=measured_on(embedder),
        extra={PAIRS_KEY: str(Path(data.name).resolve())},
    )


def retrieval_thresholds(embedder: Embedder, data: RetrievalSet) -> ThresholdTable:
    """The table of every cross-camera query-gallery pair of ``data``."""
    ((qf, gf, _),) = embed_splits([embedder], data)
    return data.thresholds(qf, gf, measured_on(embedder))


def store_in_file(path: Union[str, Path], table: ThresholdTable) -> None:
    """Write ``table`` into an exported file's metadata (``.onnx`` or OpenVINO ``.xml``)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        update_onnx_metadata(path, {"calibration": table.to_json()})
    elif path.suffix.lower() == ".xml":
        update_openvino_metadata(path, {"calibration": table.to_json()})
    else:
        raise DataError(f"{path}: not an exported model (.onnx or OpenVINO .xml)")
