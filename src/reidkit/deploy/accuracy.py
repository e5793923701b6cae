"""The retrieval accuracy check of an export: the run's own evaluation through the artefact.

Query and gallery images are embedded by a reference embedder (the PyTorch model, with the
pre-processing the run was trained with) and by the exported artefact (onnxruntime or
OpenVINO, with the pre-processing its metadata states), each image decoded once and fed to
both; both feature sets go through the metrics code of ``reidkit eval``
(``evaluation.builtins.evaluate_features``). The drop of the run's metric, in points (metric x
100), must stay within ``max_drop``. Images/s count embedding time only (decoding excluded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from reidkit.deploy.embedder import Embedder
from reidkit.evaluation.builtins import evaluate_features
from reidkit.evaluation.thresholds import ThresholdTable, thresholds_from_features
from reidkit.utils.errors import DataError

CHUNK = 256  # images decoded and embedded together


@dataclass
class RetrievalSet:
    """Query and gallery records ``(path, pid, camid)``, how to read one image as HWC uint8 RGB,
    and the evaluation settings of the run (``flip``: average with the mirrored image)."""

    name: str
    query: Sequence[Any]
    gallery: Sequence[Any]
    read: Callable[[str], np.ndarray]
    metric: str = "mAP"
    ranks: tuple[int, ...] = (1, 5, 10)
    distance: str = "euclidean"
    rerank: bool = False
    query_expansion: int = 0
    flip: bool = False

    def ids(self) -> dict[str, torch.Tensor]:
        """pids and camids of both splits, keyed as ``evaluate_features`` names them."""
        return {
            "q_pids": torch.tensor([r.pid for r in self.query]),
            "g_pids": torch.tensor([r.pid for r in self.gallery]),
            "q_camids": torch.tensor([r.camid for r in self.query]),
            "g_camids": torch.tensor([r.camid for r in self.gallery]),
        }

    def metrics(self, qf: Any, gf: Any) -> dict[str, float]:
        """The run's metrics of query / gallery features (the code of ``reidkit eval``)."""
        return evaluate_features(
            qf,
            gf,
            **self.ids(),
            ranks=self.ranks,
            distance=self.distance,
            rerank=self.rerank,
            query_expansion=self.query_expansion,
        )

    def thresholds(self, qf: Any, gf: Any, measured_on: str) -> ThresholdTable:
        """Same-person thresholds from every cross-camera query-gallery pair."""
        ids = self.ids()
        return thresholds_from_features(
            qf,
            gf,
            ids["q_pids"],
            ids["g_pids"],
            ids["q_camids"],
            ids["g_camids"],
            source=f"{self.name} query/gallery (cross-camera pairs)",
            measured_on=measured_on,
        )


@dataclass
class EmbedTiming:
    """Features of one embedder and the seconds it spent embedding them."""

    feats: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0

    def add(self, embedder: Embedder, arrays: list[np.ndarray], flip: bool) -> None:
        start = time.perf_counter()
        f = embedder.embed_arrays(arrays)
        if flip:
            mirrored = [np.ascontiguousarray(a[:, ::-1]) for a in arrays]
            f = (f + embedder.embed_arrays(mirrored)) / 2
        self.seconds += time.perf_counter() - start
        self.images += len(arrays) * (2 if flip else 1)
        self.feats.append(f)

    def matrix(self, dim: int) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(self.feats) if self.feats else np.zeros((0, dim)))

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def embed_splits(
    embedders: Sequence[Embedder], data: RetrievalSet
) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """``(qf, gf, images/s)`` of each embedder; every image is decoded once for all of them."""
    if not data.query or not data.gallery:
        raise DataError(
            f"{data.name}: the accuracy check needs query and gallery images (has "
            f"{len(data.query)} and {len(data.gallery)})"
        )
    results = []
    timings = [(EmbedTiming(), EmbedTiming()) for _ in embedders]
    warm = [data.read(data.query[0].path)]
    for emb in embedders:  # first calls allocate and tune; keep them out of the timing
        emb.embed_arrays(warm)
    for split_index, records in enumerate((data.query, data.gallery)):
        for s in range(0, len(records), CHUNK):
            arrays = [data.read(r.path) for r in records[s : s + CHUNK]]
            for emb, pair in zip(embedders, timings, strict=True):
                pair[split_index].add(emb, arrays, data.flip)
    for emb, (q, g) in zip(embedders, timings, strict=True):
        total = q.seconds + g.seconds
        ips = (q.images + g.images) / total if total > 0 else 0.0
        results.append((q.matrix(emb.embedding_dim), g.matrix(emb.embedding_dim), ips))
    return results


@dataclass
class AccuracyReport:
    """Reference vs exported metrics and speed; ``passed`` when the drop is within bounds."""

    dataset: str
    metric: str
    reference_label: str
    exported_label: str
    reference: dict[str, float]
    exported: dict[str, float]
    reference_ips: float
    exported_ips: float
    max_drop: float
    num_query: int
    num_gallery: int

    @property
    def drop(self) -> float:
        """Points lost (metric x 100); negative when the export scores higher."""
        return 100.0 * (self.reference[self.metric] - self.exported[self.metric])

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop + 1e-9

    def table(self) -> str:
        """The one table ``reidkit export`` prints."""
        m = self.metric
        second = "rank1" if m != "rank1" and "rank1" in self.reference else None
        head = f"| model | {m} |" + (f" {second} |" if second else "")
        lines = [
            f"accuracy check on {self.dataset} ({self.num_query} query, {self.num_gallery} "
            f"gallery images), metric {m}, max drop {self.max_drop:g} points",
            head + " drop (points) | images/s |",
            "| --- | ---: |" + (" ---: |" if second else "") + " ---: | ---: |",
        ]
        for label, values, ips, drop in (
            (self.reference_label, self.reference, self.reference_ips, ""),
            (self.exported_label, self.exported, self.exported_ips, f"{self.drop:.2f}"),
        ):
            cells = f"| {label} | {100 * values[m]:.2f} |"
            cells += f" {100 * values[second]:.2f} |" if second else ""
            lines.append(cells + f" {drop} | {ips:.1f} |")
        verdict, sign = ("passed", "<=") if self.passed else ("FAILED", ">")
        lines.append(f"result: {verdict} (drop {self.drop:.2f} {sign} {self.max_drop:g} points)")
        return "\n".join(lines)


def accuracy_check(
    reference: Embedder,
    exported: Embedder,
    data: RetrievalSet,
    max_drop: float,
    labels: tuple[str, str] = ("PyTorch fp32", "export"),
) -> tuple[AccuracyReport, torch.Tensor, torch.Tensor]:
    """Compare the two embedders on ``data``; returns the report and the export's features."""
    (rq, rg, r_ips), (eq, eg, e_ips) = embed_splits([reference, exported], data)
    ref_metrics, exp_metrics = data.metrics(rq, rg), data.metrics(eq, eg)
    if data.metric not in ref_metrics:
        raise DataError(
            f"metric {data.metric!r} is not computed by the retrieval evaluation; valid: "
            f"{', '.join(k for k in ref_metrics if not k.startswith('num_'))}"
        )
    report = AccuracyReport(
        dataset=data.name,
        metric=data.metric,
        reference_label=labels[0],
        exported_label=labels[1],
        reference=ref_metrics,
        exported=exp_metrics,
        reference_ips=r_ips,
        exported_ips=e_ips,
        max_drop=float(max_drop),
        num_query=len(data.query),
        num_gallery=len(data.gallery),
    )
    return report, eq, eg


def per_query_metric(
    data: RetrievalSet,
    arrays: tuple[list[np.ndarray], list[np.ndarray]],
    make_embedder: Callable[[Any], Embedder],
) -> Callable[[Any, Sequence[int]], float]:
    """``fn(model, query_indices) -> metric`` over decoded ``(query, gallery)`` arrays, where
    ``make_embedder(model)`` wraps the model nncf hands over. The gallery features of the last
    model are cached: nncf's accuracy control calls ``fn`` once per query with one model."""
    cache: dict[str, Any] = {}
    ids = data.ids()

    def fn(model: Any, indices: Sequence[int]) -> float:
        indices = [int(i) for i in indices]
        if cache.get("model") is not model:
            embedder = make_embedder(model)
            gal = EmbedTiming()
            for s in range(0, len(arrays[1]), CHUNK):
                gal.add(embedder, arrays[1][s : s + CHUNK], data.flip)
            cache.update(model=model, embedder=embedder, gf=gal.matrix(embedder.embedding_dim))
        embedder = cache["embedder"]
        q = EmbedTiming()
        q.add(embedder, [arrays[0][i] for i in indices], data.flip)
        idx = torch.as_tensor(indices, dtype=torch.long)
        metrics = evaluate_features(
            q.matrix(embedder.embedding_dim),
            cache["gf"],
            ids["q_pids"][idx],
            ids["g_pids"],
            ids["q_camids"][idx],
            ids["g_camids"],
            ranks=data.ranks,
            distance=data.distance,
        )
        return float(metrics[data.metric])

    return fn
