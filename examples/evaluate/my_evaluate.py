"""A worked example of a user evaluator (the seed's extension rule).

Put a file ``evaluate/<name>.py`` in the folder you train from (or in a folder listed in
``evaluation_params.search_dirs``), expose ``run_eval`` and set
``"evaluation_params": {"type": "<name>"}`` in params.json. After every epoch reidkit calls
``run_eval`` with the keyword arguments it declares among ``dataset``, ``device``, ``writer``
and ``epoch`` (the first two positional parameters receive the config and the model) and
keeps the checkpoint whose ``evaluation_params.metric`` (default: ``DEFAULT_METRIC`` below)
is best. Anything it raises is reported in one line naming this file.

This one scores retrieval with cosine distance on the query / gallery split, and also
reports how spread the embeddings are (their mean norm), logging a histogram to TensorBoard.

    "evaluation_params": {"type": "my_evaluate", "search_dirs": ["examples"]}
"""

from __future__ import annotations

from typing import Any

import torch

from reidkit.data import build_test_loader
from reidkit.evaluation import evaluate_reid, extract_features

DEFAULT_METRIC = "cos_mAP"


def run_eval(
    config: Any,
    model: torch.nn.Module,
    *,
    dataset: Any,
    device: torch.device,
    writer: Any = None,
    epoch: int | None = None,
) -> dict[str, float]:
    """Cosine-distance rank-1 / mAP of the query set plus the mean embedding norm."""
    feats = {}
    for split in ("query", "gallery"):
        loader = build_test_loader(config, getattr(dataset, split), dataset.source, device)
        feats[split] = extract_features(model, loader, device, flip=config.data.flip_test)
    (qf, q_pids, q_cams), (gf, g_pids, g_cams) = feats["query"], feats["gallery"]
    m = evaluate_reid(qf, gf, q_pids, g_pids, q_cams, g_cams, ranks=(1,), distance="cosine")
    norms = torch.cat([qf, gf]).norm(dim=1)
    if writer is not None:
        writer.add_histogram("my_evaluate/embedding_norm", norms, epoch or 0)
    return {"cos_rank1": m["rank1"], "cos_mAP": m["mAP"], "mean_norm": float(norms.mean())}
