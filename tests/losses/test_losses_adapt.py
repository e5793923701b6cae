"""ClusterNCE and the cluster memory: values against a direct computation, momentum updates,
gradients, and the mixed source / target loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidkit.data.pseudo import SOURCE_OFFSET
from reidkit.losses import ReidLoss
from reidkit.losses.adapt import AdaptLoss, ClusterMemory, SourceLabels, cluster_nce
from reidkit.models import ReidModel
from reidkit.utils.errors import ConfigError


def test_cluster_nce_is_softmax_cross_entropy_over_centroids() -> None:
    f = F.normalize(torch.randn(6, 8), dim=1)
    c = F.normalize(torch.randn(3, 8), dim=1)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    sims = torch.stack([torch.stack([(f[i] * c[k]).sum() for k in range(3)]) for i in range(6)])
    expected = -torch.log_softmax(sims / 0.05, dim=1)[torch.arange(6), y].mean()
    assert torch.allclose(cluster_nce(f, c, y, 0.05), expected, atol=1e-5)


def test_memory_mean_update_moves_each_present_cluster() -> None:
    mem = ClusterMemory(2, momentum=0.5, update="mean")
    mem.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    old = mem.centroids.clone()
    feats = torch.tensor([[0.0, 2.0], [0.0, 3.0], [1.0, 0.0]])  # cluster 0 twice, cluster 1
    mem.update(feats, torch.tensor([0, 0, 1]))
    want0 = F.normalize(0.5 * old[0] + 0.5 * torch.tensor([0.0, 1.0]), dim=0)
    want1 = F.normalize(0.5 * old[1] + 0.5 * torch.tensor([1.0, 0.0]), dim=0)
    assert torch.allclose(mem.centroids[0], want0) and torch.allclose(mem.centroids[1], want1)
    assert torch.equal(mem.centroids[2], old[2])  # absent from the batch: unchanged


def test_memory_hard_update_takes_the_least_similar_image() -> None:
    mem = ClusterMemory(2, momentum=0.0, update="hard")
    mem.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    feats = torch.tensor([[1.0, 0.1], [0.2, 1.0], [0.0, 1.0], [1.0, 0.9]])
    mem.update(feats, torch.tensor([0, 0, 1, 1]))
    assert torch.allclose(mem.centroids[0], F.normalize(torch.tensor([0.2, 1.0]), dim=0))
    assert torch.allclose(mem.centroids[1], F.normalize(torch.tensor([1.0, 0.9]), dim=0))


def test_adapt_loss_trains_the_features_and_updates_the_memory() -> None:
    mem = ClusterMemory(4, momentum=0.2)
    mem.reset(torch.eye(4)[:3])
    loss = AdaptLoss(mem, temperature=0.1)
    emb = torch.randn(6, 4, requires_grad=True)
    total, terms = loss({"embedding": emb, "feature": emb}, torch.tensor([0, 0, 1, 1, 2, 2]))
    total.backward()  # the memory was replaced, not written in place: backward still works
    assert set(terms) == {"cluster_nce"} and emb.grad is not None and emb.grad.abs().sum() > 0
    assert not torch.equal(mem.centroids, torch.eye(4)[:3])
    assert mem.centroids.requires_grad is False


def test_mixed_batches_add_the_weighted_source_loss() -> None:
    torch.manual_seed(0)
    model = ReidModel("resnet18", num_classes=5, classifier="arcface").train()
    mem = ClusterMemory(model.embedding_dim)
    mem.reset(torch.randn(2, model.embedding_dim))
    source = ReidLoss(5, triplet_margin=0.3)
    loss = AdaptLoss(mem, 0.05, source, source_weight=0.5)
    pids = torch.tensor(
        [0, 0, 1, 1, 3 + SOURCE_OFFSET, 3 + SOURCE_OFFSET, 4 + SOURCE_OFFSET, 4 + SOURCE_OFFSET]
    )
    out = SourceLabels(model)(torch.randn(8, 3, 64, 32), pids)  # arcface needs the labels
    total, terms = loss(out, pids)
    assert set(terms) == {"source_ce", "source_triplet", "cluster_nce"}
    sub = {k: v[4:] for k, v in out.items()}
    _, plain = source(sub, torch.tensor([3, 3, 4, 4]))
    assert torch.allclose(terms["source_ce"], 0.5 * plain["ce"])
    assert torch.allclose(total, sum(terms.values()))


def test_bad_memory_settings_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="adapt.momentum"):
        ClusterMemory(4, momentum=1.0)
    with pytest.raises(ConfigError, match="adapt.memory_update"):
        ClusterMemory(4, update="soft")
    with pytest.raises(ConfigError, match="adapt.temperature"):
        AdaptLoss(ClusterMemory(4), temperature=0.0)
