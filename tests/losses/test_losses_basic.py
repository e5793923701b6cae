"""Cross-entropy with label smoothing, batch-hard triplet (vs brute force) and ReidLoss."""

from __future__ import annotations

import math

import pytest
import torch

from reidkit.config import validate_config
from reidkit.losses import ReidLoss, batch_hard_triplet, build_loss, cross_entropy_label_smoothing
from reidkit.utils.errors import ConfigError


def _batch(seed: int = 0, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pids = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4])  # pid 3 has no positive
    return torch.randn(len(pids), dim, generator=g, dtype=torch.float64), pids


def _brute_force_triplet(x, pids, margin, distance: str) -> float:
    """Mean over anchors with a positive and a negative of max over (p, n) of the hinge."""

    def d(i: int, j: int) -> float:
        if distance == "cosine":
            return 1.0 - float(torch.nn.functional.cosine_similarity(x[i], x[j], dim=0))
        return float(torch.sqrt(((x[i] - x[j]) ** 2).sum()))

    def hinge(v: float) -> float:
        return math.log1p(math.exp(v)) if margin == "soft_margin" else max(0.0, v + margin)

    n, losses = len(pids), []
    for a in range(n):
        worst = None
        for p in range(n):
            if p == a or pids[p] != pids[a]:
                continue
            for q in range(n):
                if pids[q] == pids[a]:
                    continue
                v = hinge(d(a, p) - d(a, q))
                worst = v if worst is None else max(worst, v)
        if worst is not None:
            losses.append(worst)
    return sum(losses) / len(losses)


@pytest.mark.parametrize("margin", [0.3, 1.5, "soft_margin"])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("seed", [0, 1])
def test_triplet_matches_brute_force(margin, distance: str, seed: int) -> None:
    x, pids = _batch(seed)
    got = batch_hard_triplet(x, pids, margin, distance)
    want = _brute_force_triplet(x.float().double(), pids.tolist(), margin, distance)
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_triplet_gradient_is_finite_and_degenerate_batch_is_zero() -> None:
    x, pids = _batch(2)
    x = x.float().requires_grad_(True)
    batch_hard_triplet(x, pids, 0.3).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    same = torch.zeros(4, dtype=torch.long)
    y = torch.randn(4, 8, requires_grad=True)
    loss = batch_hard_triplet(y, same, 0.3)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(y.grad, torch.zeros_like(y))


def test_triplet_duplicate_embeddings_have_finite_gradient() -> None:
    x = torch.ones(4, 6, requires_grad=True)
    batch_hard_triplet(x, torch.tensor([0, 0, 1, 1]), 0.3).backward()
    assert torch.isfinite(x.grad).all()


def test_cross_entropy_label_smoothing_matches_formula() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=g)
    targets = torch.tensor([0, 4, 2, 2, 1, 3])
    for eps in (0.0, 0.1, 0.4):
        q = torch.full((6, 5), eps / 5)
        q[torch.arange(6), targets] += 1 - eps
        want = -(q * torch.log_softmax(logits, 1)).sum(1).mean()
        got = cross_entropy_label_smoothing(logits, targets, eps)
        assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert cross_entropy_label_smoothing(logits.half(), targets, 0.1).dtype == torch.float32


def test_bad_loss_arguments() -> None:
    x, pids = _batch()
    with pytest.raises(ConfigError, match="tri_loss_margin = -0.1"):
        batch_hard_triplet(x, pids, -0.1)
    with pytest.raises(ConfigError, match="distance = 'manhattan'"):
        batch_hard_triplet(x, pids, 0.3, "manhattan")
    with pytest.raises(ConfigError, match="label_smoothing = 1.0"):
        cross_entropy_label_smoothing(torch.zeros(2, 3), torch.tensor([0, 1]), 1.0)
    with pytest.raises(ConfigError, match="leaves no loss"):
        ReidLoss(3, ce_weight=0.0, triplet_margin=0)


def test_reid_loss_weighted_terms_sum_to_total() -> None:
    x, pids = _batch(3)
    logits = torch.randn(len(pids), 5)
    outputs = {"feature": x.float(), "logits": logits, "embedding": x.float()}
    loss = ReidLoss(5, ce_weight=0.5, label_smoothing=0.1, triplet_margin=0.3)
    total, terms = loss(outputs, pids)
    assert set(terms) == {"ce", "triplet"}
    assert terms["ce"].item() == pytest.approx(
        0.5 * cross_entropy_label_smoothing(logits, pids, 0.1).item(), rel=1e-6
    )
    tri = batch_hard_triplet(x, pids, 0.3).item()
    assert terms["triplet"].item() == pytest.approx(tri, rel=1e-5)
    assert total.item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)

    parts = ReidLoss(5, triplet_margin=None)
    total_p, terms_p = parts({"feature": x, "logits": [logits, logits * 2]}, pids)
    mean_ce = (
        cross_entropy_label_smoothing(logits, pids, 0.1)
        + cross_entropy_label_smoothing(logits * 2, pids, 0.1)
    ) / 2
    assert set(terms_p) == {"ce"} and total_p.item() == pytest.approx(mean_ce.item(), rel=1e-6)


def test_build_loss_from_config() -> None:
    base = {"batches_dir": "unused"}
    ce_only = build_loss(validate_config(base), num_classes=4)
    assert not ce_only.use_triplet and ce_only.ce_weight == 1.0
    bot = build_loss(
        validate_config({**base, "tri_loss_margin": 0.3, "label_smoothing": 0.2}), num_classes=4
    )
    assert bot.use_triplet and bot.triplet_margin == 0.3 and bot.label_smoothing == 0.2
    tri_only = build_loss(
        validate_config({**base, "tri_loss_margin": "soft_margin", "tri_loss_lambda_cls": 0}), 4
    )
    x, pids = _batch()
    _, terms = tri_only({"feature": x, "logits": torch.zeros(len(pids), 5)}, pids)
    assert set(terms) == {"triplet"}
