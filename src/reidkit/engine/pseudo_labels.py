"""``Recluster``: the callback that turns the Trainer into an adaptation loop.

At the start of every epoch it embeds the unlabeled crops with the current model (eval mode,
un-augmented, the evaluation's feature code), clusters them (``evaluation.clustering``: DBSCAN
over the sparse k-reciprocal Jaccard distance), hands the pseudo-identities to the loader
(``data.pseudo.PseudoLabelLoader``) and refills the cluster memory (``losses.adapt``) with
the clusters' mean features. Outliers are left out of the epoch. When the crops carry
tracklets (``data.pseudo.CropTracklets``) whole tracklets are clustered instead
(``evaluation.tracklet_clustering``): one tracklet, one label; two co-occurring ones, two.
``eps`` None chooses DBSCAN's radius from the data at every clustering; it is logged with
the clusters.

Resuming: the epoch's labels and the memory (which moves with every step) are the
callback's state, saved in every checkpoint. A run resumed mid-epoch takes them back as they
were; a run resumed at an epoch boundary re-clusters from the restored weights, which is
what the uninterrupted run did at that point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from reidkit.data.pseudo import CropTracklets, PseudoLabelLoader
from reidkit.engine.callbacks import Callback, Trainer
from reidkit.evaluation.clustering import Clusters, cluster_centroids, cluster_features
from reidkit.evaluation.features import extract_features
from reidkit.evaluation.tracklet_clustering import cluster_tracklets
from reidkit.losses.adapt import ClusterMemory
from reidkit.utils.errors import DataError
from reidkit.utils.logging import get_logger


def reestimate_batchnorm(model: torch.nn.Module, batches: Iterable[Any]) -> int:
    """Recompute every BatchNorm's running mean / variance over ``batches`` (AdaBN).

    The statistics become the plain average over the batches (the layers' momentum is
    restored afterwards); nothing else changes. A batch of one image is left out (a
    BatchNorm over one sample has no variance: a folder of 385 crops in batches of 128 ends
    with one). Returns the number of layers updated.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    try:
        with torch.no_grad():
            for batch in batches:
                if batch.images.shape[0] > 1:
                    model(batch.images)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return len(norms)


class Recluster(Callback):
    """Re-cluster the target crops before every epoch (see the module docstring)."""

    name = "pseudo_labels"

    def __init__(
        self,
        loader: PseudoLabelLoader,
        memory: ClusterMemory,
        *,
        eps: float | None = 0.6,
        min_samples: int = 4,
        k1: int = 30,
        k2: int = 6,
        flip: bool = False,
        batch_size: int = 128,
        target_bn: bool = True,
        eps_quantile: float = 0.9,
        tracklets: CropTracklets | None = None,
    ) -> None:
        self.loader, self.memory, self.target_bn = loader, memory, target_bn
        self.eps, self.min_samples, self.k1, self.k2 = eps, min_samples, k1, k2
        self.eps_quantile, self.tracklets = eps_quantile, tracklets
        self.note = ""
        self.flip, self.batch_size = flip, batch_size
        self.epoch = -1  # the epoch the current labels belong to
        self.num_clusters = 0
        self._saved: dict[str, Any] | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before any adaptation: log what the starting model scores on the test folder, then
        (``target_bn``) re-estimate its BatchNorm statistics on the target crops and log the
        score again."""
        if trainer.state.epoch or trainer.state.step_in_epoch:
            return  # resumed: the checkpoint holds the statistics
        self._log_eval(trainer, "before adapting")
        if self.target_bn:
            n = reestimate_batchnorm(trainer.model, self.loader.plain_batches(self.batch_size))
            get_logger().info(f"BatchNorm statistics of {n} layers re-estimated on the target")
            self._log_eval(trainer, "with target BatchNorm statistics")

    @staticmethod
    def _log_eval(trainer: Trainer, what: str) -> None:
        metrics = trainer.evaluate() if trainer.main else {}
        if metrics:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "num_" not in k)
            get_logger().info(f"{what}: {shown}")

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Cluster (or, mid-epoch after a resume, take back) this epoch's pseudo-labels."""
        saved, self._saved = self._saved, None
        resumed = saved is not None and int(saved["epoch"]) == epoch
        resumed = resumed and trainer.state.step_in_epoch > 0
        if resumed:
            labels, centroids = saved["labels"].cpu().numpy(), saved["centroids"]
        else:
            labels, centroids = self.cluster(trainer.model, trainer.device)
        self.loader.set_labels(labels)
        self.memory.reset(centroids, normalize=not resumed)
        self.epoch, self.num_clusters = epoch, int(centroids.shape[0])
        sizes = np.bincount(labels[labels >= 0])
        log = get_logger()
        log.info(
            f"epoch {epoch + 1}: {self.num_clusters} clusters of {sizes.min()}-{sizes.max()} "
            f"crops (median {int(np.median(sizes))}), {self.num_outliers} outliers of "
            f"{len(labels)} crops{self.note if not resumed else ' (resumed)'}"
        )
        log.info(f"epoch {epoch + 1}: {self.loader.describe_layout()}")

    @property
    def num_outliers(self) -> int:
        """Crops of the current epoch in no cluster."""
        return int((self.loader.labels < 0).sum())

    def cluster(self, model: torch.nn.Module, device: torch.device) -> tuple[np.ndarray, Any]:
        """Embed every crop with ``model`` and cluster: (label per record, centroids (C, D))."""
        feats, rows, _ = extract_features(
            model, self.loader.plain_batches(self.batch_size), device, flip=self.flip
        )
        feats = feats.clone()  # out of inference mode: the memory takes part in training
        clusters = self._clusters(feats, rows.cpu().numpy())
        if clusters.num_clusters == 0:
            eps = f"{clusters.eps:.3f}" + (" (chosen from the data)" if self.eps is None else "")
            raise DataError(
                f"adapt: DBSCAN found no clusters among {len(feats)} crops (adapt.eps = "
                f"{eps}, adapt.min_samples = {self.min_samples}); raise adapt.eps "
                "(e.g. 0.7) or lower adapt.min_samples"
            )
        auto = " chosen from the data" if self.eps is None else ""
        self.note = f"; eps {clusters.eps:.3f}{auto}" + (
            f"; {clusters.note}" if clusters.note else ""
        )
        labels = np.full(len(self.loader.records), -1, dtype=np.int64)
        labels[rows.cpu().numpy()] = clusters.labels
        tensor_labels = torch.as_tensor(clusters.labels, device=feats.device)
        return labels, cluster_centroids(feats, tensor_labels, clusters.num_clusters)

    def _clusters(self, feats: torch.Tensor, rows: np.ndarray) -> Clusters:
        """Crop-level clustering, or tracklet-level when the crops carry tracklets."""
        if self.tracklets is None:
            return cluster_features(
                feats, self.eps, self.min_samples, self.k1, self.k2, self.eps_quantile
            )
        t = self.tracklets
        unit = t.unit[rows]  # the embedded crops (all of them, unless some failed to decode)
        return cluster_tracklets(
            feats, unit, t.num_units, t.cannot_link, eps=self.eps,
            min_samples=self.min_samples, eps_quantile=self.eps_quantile,
            num_tracklets=t.num_tracklets,
        )  # fmt: skip

    def on_epoch_end(
        self, trainer: Trainer, epoch: int, stats: dict[str, float], metrics: dict[str, float]
    ) -> None:
        """Add the epoch's cluster counts to its record (train.log, metrics.jsonl, TensorBoard)."""
        stats["clusters"] = float(self.num_clusters)
        stats["outliers"] = float(self.num_outliers)

    def state_dict(self) -> dict[str, Any]:
        """The epoch's labels and the memory as it stands (it moves with every step)."""
        if self.epoch < 0:
            return {}
        return {
            "epoch": self.epoch,
            "labels": torch.as_tensor(self.loader.labels),
            "centroids": self.memory.centroids.detach().cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keep the saved labels and memory for ``on_epoch_start`` of a mid-epoch resume."""
        self._saved = dict(state) if state else None
