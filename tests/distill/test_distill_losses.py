"""Each distillation term on tiny tensors against a value worked out by hand, the projection,
the teacher wrapper (frozen, renormalising) and the student's margin-free logits."""

from __future__ import annotations

import math

import pytest
import torch

from reidkit.data.augment import normalize_uint8
from reidkit.losses import ReidLoss
from reidkit.losses.distill import (
    DistillLoss,
    feature_loss,
    kd_loss,
    make_projection,
    relation_loss,
)
from reidkit.models import ReidModel
from reidkit.models.distill import FrozenTeacher, margin_free_logits, renormalisation
from reidkit.utils.errors import ConfigError

SQRT3 = math.sqrt(3.0)


def test_kd_loss_by_hand() -> None:
    # T = 1: teacher [ln 3, 0] -> p_t = (3/4, 1/4); student [0, 0] -> (1/2, 1/2)
    # KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    s, t = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]])
    assert kd_loss(s, t, 1.0).item() == pytest.approx(
        0.75 * math.log(1.5) + 0.25 * math.log(0.5), abs=1e-6
    )
    # T = 2: t / T = [ln sqrt(3), 0] -> p_t = (sqrt3, 1) / (sqrt3 + 1); times T^2 = 4
    a, b = SQRT3 / (SQRT3 + 1), 1 / (SQRT3 + 1)
    want = 4 * (a * math.log(a / 0.5) + b * math.log(b / 0.5))
    assert kd_loss(s, t, 2.0).item() == pytest.approx(want, abs=1e-6)  # 0.14534
    # the batch mean, and zero when the distributions agree
    two = kd_loss(torch.cat([s, t]), torch.cat([t, t]), 1.0).item()
    assert two == pytest.approx((0.75 * math.log(1.5) + 0.25 * math.log(0.5)) / 2, abs=1e-6)
    assert kd_loss(t + 5.0, t, 3.0).item() == pytest.approx(0.0, abs=1e-6)  # shift-invariant


def test_feature_loss_by_hand() -> None:
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    t = torch.tensor([[0.0, 1.0], [2.0, 2.0]])  # cos 0 and 1 -> (1 + 0) / 2
    assert feature_loss(s, t, "cosine").item() == pytest.approx(0.5, abs=1e-6)
    # l2: (1-3)^2 and (2-2)^2 over 2 elements -> 2
    l2 = feature_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 2.0]]), "l2")
    assert l2.item() == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="feature_loss"):
        feature_loss(s, t, "l1")


def test_relation_loss_by_hand() -> None:
    # student rows e1, e2, (1,1)/sqrt2: similarities s12 = 0, s13 = s23 = 1/sqrt2
    # teacher rows e1, e1, e2:          t12 = 1,    t13 = t23 = 0
    # squared differences 1, 1/2, 1/2 (each pair twice) over 3 x 2 ordered pairs -> 2/3
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    t = torch.tensor([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # other width
    assert relation_loss(s, t).item() == pytest.approx(2.0 / 3.0, abs=1e-6)
    assert relation_loss(s, s * 7.0).item() == pytest.approx(0.0, abs=1e-6)  # scale-free


def test_projection_only_when_widths_differ_and_it_learns() -> None:
    assert make_projection(8, 8) is None
    assert isinstance(make_projection(8, 8, "always"), torch.nn.Linear)
    proj = make_projection(4, 6)
    assert isinstance(proj, torch.nn.Linear) and (proj.in_features, proj.out_features) == (4, 6)
    loss = DistillLoss(None, kd_weight=0, feature_weight=2.0, relation_weight=0, projection=proj)
    student = torch.randn(5, 4, requires_grad=True)
    teacher = torch.randn(5, 6)
    total, terms = loss({"embedding": student, "teacher_embedding": teacher}, torch.zeros(5))
    want = 2.0 * feature_loss(proj(student), teacher)
    assert set(terms) == {"feature"} and torch.allclose(total, want)
    total.backward()
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    assert "projection.weight" in loss.state_dict()  # saved with the loss, not the model
    with pytest.raises(ConfigError, match="projection"):
        make_projection(4, 6, "never")


def test_distill_loss_weights_each_term_and_sums_them() -> None:
    # ReID loss: plain cross-entropy (no smoothing) on logits [ln 3, 0] for class 0 -> ln(4/3)
    reid = ReidLoss(2, ce_weight=1.0, label_smoothing=0.0)
    loss = DistillLoss(
        reid, reid_weight=0.5, kd_weight=3.0, temperature=1.0, feature_weight=2.0,
        relation_weight=4.0,
    )  # fmt: skip
    logits = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    student = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    outputs = {
        "feature": student,
        "embedding": student,
        "logits": logits,
        "kd_logits": torch.zeros(2, 2),
        "teacher_logits": logits,
        "teacher_embedding": torch.tensor([[0.0, 1.0], [2.0, 2.0]]),
    }
    pids = torch.tensor([0, 0])
    total, terms = loss(outputs, (pids, {}))  # targets as the loader gives them
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    # relation: student cos(e1, (1,1)) = 1/sqrt2, teacher cos(e2, (1,1)) = 1/sqrt2 -> 0
    want = {"ce": 0.5 * math.log(4 / 3), "kd": 3.0 * kl, "feature": 2.0 * 0.5, "relation": 0.0}
    assert set(terms) == set(want)
    for k, v in want.items():
        assert terms[k].item() == pytest.approx(v, abs=1e-6), k
    assert total.item() == pytest.approx(sum(want.values()), abs=1e-6)
    with pytest.raises(ConfigError, match="every loss weight is 0"):
        DistillLoss(None, kd_weight=0, feature_weight=0, relation_weight=0)


def test_renormalisation_maps_one_normalisation_onto_another() -> None:
    u = torch.randint(0, 256, (2, 3, 4, 3), dtype=torch.uint8)
    src = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3), 1)
    dst = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), 255)  # fast-reid's
    scale, shift = renormalisation(*src, *dst)
    x_src = normalize_uint8(u, src[0], src[1], src[2])
    x_dst = normalize_uint8(u, dst[0], dst[1], dst[2])
    assert torch.allclose(x_src * scale + shift, x_dst, atol=1e-5)
    assert renormalisation(*src, *src) is None


def test_frozen_teacher_stays_frozen_and_resizes() -> None:
    torch.manual_seed(0)
    model = ReidModel("resnet18", 3)
    teacher = FrozenTeacher(model, size=(32, 16), logits=True, channels_last=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    teacher.train()
    assert not teacher.training and not model.training
    out = teacher(torch.randn(4, 3, 64, 32))
    assert out["embedding"].shape == (4, 512) and out["logits"].shape == (4, 3)
    assert not out["embedding"].requires_grad
    assert all(not p.requires_grad for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics too
    # a 64x32 input resized to 32x16 gives what the model gives on the resized batch
    x = torch.randn(2, 3, 64, 32)
    small = torch.nn.functional.interpolate(x, size=(32, 16), mode="bilinear", antialias=True)
    with torch.no_grad():
        assert torch.allclose(teacher(x)["embedding"], model(small), atol=1e-5)


def test_margin_free_logits_match_eval_classify() -> None:
    torch.manual_seed(0)
    for classifier in ("softmax", "arcface"):
        model = ReidModel("resnet18", 5, classifier=classifier)
        emb = torch.randn(3, model.embedding_dim)
        model.train()
        got = margin_free_logits(model, emb)  # in training mode, no labels
        model.eval()
        assert torch.allclose(got, model.classify(emb), atol=1e-5), classifier
