"""The ``adapt`` section: adaptation to unlabeled target crops (``reidkit adapt``).

Each epoch the target crops are embedded, clustered (DBSCAN over a k-reciprocal Jaccard
distance) into pseudo-identities, and the model trains against a memory of cluster centroids
(ClusterNCE); docs/adaptation.md explains every key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from reidkit.config.section import Section


class AdaptParams(Section):
    """Adaptation without labels (new key ``adapt``; used by ``reidkit adapt`` only)."""

    unlabeled: str | None = Field(
        None,
        description="Folder of unlabeled target crops (searched recursively; `reidkit crops` "
        "writes one); `reidkit adapt --unlabeled DIR` sets it.",
    )
    eval_data: str | None = Field(
        None,
        description="Labelled test folder (query + gallery is enough) evaluated after each "
        "epoch to keep the best model; none = no evaluation (best = last). --eval-data DIR.",
    )
    target_bn: bool | Literal["auto"] = Field(
        "auto",
        description="Before the first clustering, re-estimate the BatchNorm statistics on "
        "the target crops (AdaBN): a camera the model never saw shifts them most. auto = on "
        "when crops are clustered one by one, off when whole tracklets are (what measured "
        "best for each under benchmarks/real_crops.py's protocol).",
    )
    eps: float | Literal["auto"] | None = Field(
        None,
        description="DBSCAN radius on the Jaccard distance (0 < eps < 1): larger merges more "
        'crops into fewer, bigger clusters. null or "auto" = chosen from the data at every '
        "clustering (the eps_quantile of the crops' core distances; with tracklets, from the "
        "distances of tracklets seen together) and logged.",
    )
    eps_quantile: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="Automatic eps: the quantile of the crops' core distances (the distance "
        "of each crop's min_samples-1-th nearest neighbour) taken as eps, so that about this "
        "share of the crops are DBSCAN cores.",
    )
    tracklets: bool | Literal["auto"] = Field(
        "auto",
        description="Use the tracklets in the crop names `reidkit crops` writes "
        "(f<frame>_t<track>, camera from c<N>): a tracklet's crops share one label, two "
        "tracklets seen at the same time in one camera never do, whole tracklets are "
        "clustered. auto = when the names carry them; true = require them; false = ignore.",
    )
    min_samples: int = Field(
        4, ge=1, description="DBSCAN: crops within eps (itself included) that make a core crop."
    )

    @field_validator("eps")
    @classmethod
    def _eps_range(cls, v: float | str | None) -> float | None:
        """``auto`` is None; a number must lie in (0, 1)."""
        if v is None or v == "auto":
            return None
        if not 0 < float(v) < 1:
            raise ValueError('eps must lie in (0, 1), or be null / "auto"')
        return float(v)

    k1: int = Field(
        30,
        ge=1,
        description="k-reciprocal neighbours of the Jaccard distance: about the crops one "
        "person has in the folder, or half of it.",
    )
    k2: int = Field(6, ge=1, description="Neighbours averaged by local query expansion.")
    momentum: float = Field(
        0.2, ge=0, lt=1, description="Cluster memory: weight of the old centroid in each update."
    )
    memory_update: Literal["mean", "hard"] = Field(
        "hard",
        description="Which batch feature updates a centroid: the mean of the cluster's images "
        "in the batch, or the hardest one (least similar to it), as cluster-contrast.",
    )
    temperature: float = Field(
        0.05, gt=0, description="Softmax temperature of the ClusterNCE loss over centroids."
    )
    iters: int = Field(
        0, ge=0, description="Iterations per epoch; 0 = target crops / target images per batch."
    )
    source_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the supervised loss on source batches (batches_dir's train "
        "split, the configured ReID loss); 0 = target batches only.",
    )
    source_share: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="With source_weight > 0: fraction of each batch taken from the source "
        "(rounded to whole identities of K images).",
    )
