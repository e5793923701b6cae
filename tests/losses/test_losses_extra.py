"""AGW weighted triplet, pair-wise circle loss and center loss against loop references;
ReidLoss with every term; the centres' own optimiser."""

from __future__ import annotations

import math

import pytest
import torch

from reidkit.config import validate_config
from reidkit.losses import (
    ReidLoss,
    build_loss,
    center_loss,
    pairwise_circle_loss,
    weighted_regularization_triplet,
)
from reidkit.models import build_model


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pids = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 4, 4])  # pid 3: no positive
    return torch.randn(len(pids), 6, generator=g, dtype=torch.float64), pids


def _dist(x: torch.Tensor, i: int, j: int) -> float:
    return float(torch.sqrt(((x[i] - x[j]) ** 2).sum()))


def _cos(x: torch.Tensor, i: int, j: int) -> float:
    return float(x[i] @ x[j] / (x[i].norm() * x[j].norm()))


def _anchors(pids: list[int]):
    n = len(pids)
    for a in range(n):
        pos = [p for p in range(n) if p != a and pids[p] == pids[a]]
        neg = [q for q in range(n) if pids[q] != pids[a]]
        if pos and neg:
            yield a, pos, neg


@pytest.mark.parametrize("margin", ["soft_margin", 0.2])
@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_triplet_matches_reference(margin, seed: int) -> None:
    x, pids = _batch(seed)
    losses = []
    for a, pos, neg in _anchors(pids.tolist()):
        dp = [_dist(x, a, p) for p in pos]
        dn = [_dist(x, a, q) for q in neg]
        wp = [math.exp(d) for d in dp]
        wn = [math.exp(-d) for d in dn]
        fp = sum(w * d for w, d in zip(wp, dp, strict=True)) / sum(wp)
        cn = sum(w * d for w, d in zip(wn, dn, strict=True)) / sum(wn)
        v = fp - cn
        losses.append(math.log1p(math.exp(v)) if margin == "soft_margin" else max(0.0, v + margin))
    got = weighted_regularization_triplet(x, pids, margin)
    assert got.item() == pytest.approx(sum(losses) / len(losses), rel=1e-5)


@pytest.mark.parametrize(("scale", "margin"), [(64.0, 0.25), (8.0, 0.4)])
def test_pairwise_circle_matches_reference(scale: float, margin: float) -> None:
    x, pids = _batch(2)
    losses = []
    for a, pos, neg in _anchors(pids.tolist()):
        lp = [
            -scale * max(0.0, 1 + margin - _cos(x, a, p)) * (_cos(x, a, p) - 1 + margin)
            for p in pos
        ]
        ln = [scale * max(0.0, _cos(x, a, q) + margin) * (_cos(x, a, q) - margin) for q in neg]
        z = math.log(sum(math.exp(v) for v in lp)) + math.log(sum(math.exp(v) for v in ln))
        losses.append(math.log1p(math.exp(z)) if z < 30 else z)
    got = pairwise_circle_loss(x, pids, scale, margin)
    assert got.item() == pytest.approx(sum(losses) / len(losses), rel=1e-4)


def test_center_loss_matches_reference_and_moves_centres() -> None:
    x, pids = _batch(3)
    centers = torch.randn(5, 6, dtype=torch.float64)
    want = sum(float(((x[i] - centers[p]) ** 2).sum()) for i, p in enumerate(pids.tolist())) / len(
        pids
    )
    assert center_loss(x, pids, centers).item() == pytest.approx(want, rel=1e-5)

    loss = ReidLoss(5, ce_weight=0.0, triplet_margin=0.3, center_weight=0.0005, feat_dim=6)
    opt = loss.make_extra_optimizer()
    assert opt is not None and opt.param_groups[0]["lr"] == 0.5
    feats = x.float()
    means = torch.stack([feats[pids == c].mean(0) for c in range(5)])
    optimum = center_loss(feats, pids, means).item()
    before = center_loss(feats, pids, loss.centers.detach()).item()
    for _ in range(60):
        opt.zero_grad()
        total, terms = loss({"feature": feats, "logits": None}, pids)
        total.backward()
        opt.step()
    assert set(terms) == {"triplet", "center"}
    after = center_loss(feats, pids, loss.centers.detach()).item()
    assert after - optimum < 0.01 * (before - optimum)


def test_centre_gradient_does_not_depend_on_weight() -> None:
    x, pids = _batch(4)
    grads = []
    for w in (0.0005, 0.5):
        torch.manual_seed(0)
        loss = ReidLoss(5, ce_weight=0.0, triplet_margin=0.3, center_weight=w, feat_dim=6)
        total, terms = loss({"feature": x.float()}, pids)
        terms["center"].backward()
        grads.append(loss.centers.grad.clone())
    assert torch.allclose(grads[0], grads[1], rtol=1e-4)


def test_reid_loss_every_term_and_build_from_config() -> None:
    cfg = validate_config(
        {
            "batches_dir": "unused",
            "model_params": {"backbone": "osnet_x0_25", "neck": "bnneck"},
            "tri_loss_margin": "soft_margin",
            "tri_loss_type": "weighted",
            "tri_loss_distance": "cosine",
            "center_loss_weight": 0.0005,
            "circle_loss_weight": 0.5,
        }
    )
    feat_dim = build_model(cfg, 5).feature_dim
    loss = build_loss(cfg, num_classes=5, feat_dim=feat_dim)
    assert loss.centers.shape == (5, 128)  # osnet_x0_25's pre-neck feature size
    x, pids = _batch(5)
    feats = torch.randn(len(pids), 128)
    total, terms = loss({"feature": feats, "logits": torch.randn(len(pids), 5)}, pids)
    assert set(terms) == {"ce", "triplet", "center", "circle"}
    assert total.item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)
    want_tri = weighted_regularization_triplet(feats, pids, "soft_margin", "cosine")
    assert terms["triplet"].item() == pytest.approx(want_tri.item(), rel=1e-6)
    assert loss.extra_parameters() == [loss.centers]
    assert build_loss(validate_config({"batches_dir": "x"}), 5).make_extra_optimizer() is None


def test_circle_only_is_a_valid_config() -> None:
    cfg = validate_config({"batches_dir": "x", "tri_loss_lambda_cls": 0, "circle_loss_weight": 1})
    x, pids = _batch()
    _, terms = build_loss(cfg, 5, feat_dim=4)({"feature": x}, pids)
    assert set(terms) == {"circle"}
