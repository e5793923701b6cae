"""Built-in evaluators: ``market_evaluate`` (ReID retrieval), ``video_evaluate`` (tracklets,
``evaluation/video.py``) and ``classification_evaluate``.

Both follow the evaluator contract ``run_eval(config, model, *, dataset, device, writer=None,
epoch=None) -> dict[str, float]``. The data package is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from reidkit.data import build_test_loader
from reidkit.data.video_records import is_video, tracklets_from_images
from reidkit.evaluation.features import embed_batch, extract_features, map_loader
from reidkit.evaluation.metrics import evaluate_reid
from reidkit.evaluation.report import (
    image_to_tensor,
    pick_queries,
    rank_queries,
    record_reader,
    render_ranked_lists,
)
from reidkit.evaluation.rerank import KReciprocalDistance
from reidkit.evaluation.rerank import query_expansion as query_expansion_fn
from reidkit.evaluation.video import tracklet_features
from reidkit.utils.errors import DataError


def _test_loader(config: Any, records: Any, dataset: Any, device: torch.device) -> Any:
    return build_test_loader(config, records, dataset.source, device)


def market_evaluate(
    config: Any,
    model: nn.Module,
    *,
    dataset: Any,
    device: torch.device | str,
    writer: Any = None,
    epoch: int | None = None,
) -> dict[str, float]:
    """Rank-k, mAP and mINP of ``dataset.query`` against ``dataset.gallery`` (Market protocol).

    Uses ``config.evaluation_params`` (ranks, distance) and ``config.data.flip_test``. A
    video dataset is scored tracklet by tracklet (``video_evaluate``).
    """
    if is_video(dataset):
        return video_evaluate(config, model, dataset=dataset, device=device)
    if not dataset.query or not dataset.gallery:
        raise DataError(
            f"market_evaluate: dataset {dataset.name!r} has {len(dataset.query)} query and "
            f"{len(dataset.gallery)} gallery images; both must be non-empty"
        )
    device = torch.device(device)
    ev = config.evaluation_params
    flip = config.data.flip_test
    q_loader = _test_loader(config, dataset.query, dataset, device)
    g_loader = _test_loader(config, dataset.gallery, dataset, device)
    qf, q_pids, q_camids = extract_features(model, q_loader, device, flip=flip)
    gf, g_pids, g_camids = extract_features(model, g_loader, device, flip=flip)
    metrics = evaluate_features(
        qf,
        gf,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        ranks=ev.ranks,
        distance=ev.distance,
        rerank=ev.rerank,
        query_expansion=ev.query_expansion,
    )
    if writer is not None:
        records = (
            [dataset.query[i] for i in q_loader.delivered],  # feature row -> its image
            [dataset.gallery[i] for i in g_loader.delivered],
        )
        ids = (q_pids, g_pids, q_camids, g_camids)
        log_ranked_lists(writer, dataset.source, records, qf, gf, ids, ev, epoch)
    return metrics


def video_evaluate(
    config: Any,
    model: nn.Module,
    *,
    dataset: Any,
    device: torch.device | str,
    writer: Any = None,
    epoch: int | None = None,
) -> dict[str, float]:
    """Rank-k, mAP and mINP of query tracklets against gallery tracklets (Market protocol).

    Uses ``config.video`` (seq_len, test_sampling, pool), ``config.evaluation_params`` and
    ``config.data.flip_test``. An image dataset is grouped into tracklets first.
    """
    ds = dataset if is_video(dataset) else tracklets_from_images(dataset)
    if not ds.query or not ds.gallery:
        raise DataError(
            f"video_evaluate: dataset {ds.name!r} has {len(ds.query)} query and "
            f"{len(ds.gallery)} gallery tracklets; both must be non-empty"
        )
    device = torch.device(device)
    v, ev = config.video, config.evaluation_params
    make = lambda recs: build_test_loader(config, recs, ds.source, device)  # noqa: E731
    options = dict(
        seq_len=v.seq_len, sampling=v.test_sampling, pool=v.pool, flip=config.data.flip_test
    )
    q = tracklet_features(model, ds.query, make, device, **options)
    g = tracklet_features(model, ds.gallery, make, device, **options)
    return evaluate_features(
        q.feats,
        g.feats,
        q.pids,
        g.pids,
        q.camids,
        g.camids,
        ranks=ev.ranks,
        distance=ev.distance,
        rerank=ev.rerank,
        query_expansion=ev.query_expansion,
    )


def log_ranked_lists(
    writer: Any,
    source: Any,
    records: tuple[Sequence[Any], Sequence[Any]],
    qf: torch.Tensor,
    gf: torch.Tensor,
    ids: tuple[torch.Tensor, ...],
    ev: Any,
    epoch: int | None,
    num_queries: int = 4,
    topk: int = 8,
) -> None:
    """Add the ranked lists of a few queries to TensorBoard as ``eval/ranked_lists``.

    ``records`` are the query and gallery records in the row order of ``qf`` / ``gf``."""
    rows = rank_queries(
        qf, gf, *ids, pick_queries(len(qf), num_queries), topk=topk, distance=ev.distance
    )
    image = render_ranked_lists(
        rows, record_reader(records[0], source), record_reader(records[1], source)
    )
    writer.add_image("eval/ranked_lists", image_to_tensor(image), epoch or 0)


def evaluate_features(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    ranks: Sequence[int] = (1, 5, 10),
    distance: str = "euclidean",
    rerank: bool = False,
    query_expansion: int = 0,
    protocol: str = "market",
) -> dict[str, float]:
    """``evaluate_reid`` after optional average query expansion and k-reciprocal re-ranking."""
    qf, gf = torch.as_tensor(qf).float(), torch.as_tensor(gf).float()
    gf = gf.to(qf.device)
    if query_expansion:
        qf = query_expansion_fn(qf, gf, query_expansion, distance)
    dist_fn = KReciprocalDistance(qf, gf, distance=distance) if rerank else None
    return evaluate_reid(
        qf,
        gf,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        ranks=ranks,
        distance=distance,
        protocol=protocol,
        dist_fn=dist_fn,
    )


def classifier_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class scores of a ReidModel in eval mode from its retrieval embedding.

    Uses ``model.classify`` (each branch / part through its own classifier, averaged) when
    the model has it, else ``model.classifier`` applied to the embedding.
    """
    embedding = embed_batch(model, images)
    if callable(getattr(model, "classify", None)):
        return model.classify(embedding).float()
    classifier = getattr(model, "classifier", None)
    if not callable(classifier) or isinstance(classifier, nn.ModuleList):
        raise DataError(
            f"classification_evaluate: model {type(model).__name__} has no classify() or single "
            ".classifier; use a ReidModel trained with a classification loss"
        )
    return classifier(embedding).float()


def classification_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, num_classes: int, class_names: Any = None
) -> dict[str, float]:
    """top-1, top-5, mean per-class accuracy and ``acc/<class>`` for each class present."""
    labels = labels.to(logits.device)
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    hit1 = top[:, 0] == labels
    hit5 = (top == labels[:, None]).any(1)
    out = {"top1": float(hit1.double().mean()), "top5": float(hit5.double().mean())}
    per_class = []
    for c in range(num_classes):
        sel = labels == c
        if bool(sel.any()):
            acc = float(hit1[sel].double().mean())
            per_class.append(acc)
            name = class_names[c] if class_names and c < len(class_names) else str(c)
            out[f"acc/{name}"] = acc
    out["mean_class_acc"] = sum(per_class) / len(per_class) if per_class else 0.0
    out["num_images"] = float(labels.numel())
    return out


def classification_evaluate(
    config: Any,
    model: nn.Module,
    *,
    dataset: Any,
    device: torch.device | str,
    writer: Any = None,
    epoch: int | None = None,
) -> dict[str, float]:
    """Top-1 / top-5 / per-class accuracy of the classifier on ``dataset.query`` (the val split).

    The labels are the query records' pids, which must be the class indices used in training
    (``0 .. num_train_ids - 1``).
    """
    if not dataset.query:
        raise DataError(
            f"classification_evaluate: dataset {dataset.name!r} has no validation (query) images"
        )
    device = torch.device(device)
    loader = _test_loader(config, dataset.query, dataset, device)
    all_logits, all_labels, _ = map_loader(model, loader, device, classifier_logits)
    num_classes = all_logits.shape[1]
    bad = (all_labels < 0) | (all_labels >= num_classes)
    if bool(bad.any()):
        raise DataError(
            f"classification_evaluate: validation label {int(all_labels[bad][0])} is outside "
            f"the classifier's 0..{num_classes - 1}; the val split must use the train classes"
        )
    names = getattr(dataset, "class_names", None)
    return classification_accuracy(all_logits, all_labels, num_classes, names)
