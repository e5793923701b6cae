"""Margin classifiers against per-sample reference computations."""

from __future__ import annotations

import math

import pytest
import torch

from reidkit.models.classifiers import AMSoftmax, ArcFace, CircleSoftmax, build_classifier


def _setup(cls, scale: float = 16.0, margin: float = 0.3, seed: int = 0):
    torch.manual_seed(seed)
    head = cls(6, 4, scale, margin).train()
    x = torch.randn(5, 6, dtype=torch.float64)
    labels = torch.tensor([0, 3, 1, 1, 2])
    return head, x, labels


def _cos(x: torch.Tensor, w: torch.Tensor, i: int, j: int) -> float:
    a, b = x[i].double(), w[j].double()
    return float(a @ b / (a.norm() * b.norm()))


def test_am_softmax_matches_reference() -> None:
    head, x, labels = _setup(AMSoftmax)
    got = head(x, labels)
    for i in range(5):
        for j in range(4):
            c = _cos(x, head.weight.detach(), i, j)
            want = 16.0 * (c - 0.3) if j == labels[i] else 16.0 * c
            assert got[i, j].item() == pytest.approx(want, abs=1e-4)


def test_arcface_matches_reference_angles() -> None:
    head, x, labels = _setup(ArcFace, margin=0.5)
    got = head(x, labels)
    for i in range(5):
        for j in range(4):
            c = _cos(x, head.weight.detach(), i, j)
            if j == labels[i]:
                theta = math.acos(c)
                want = math.cos(theta + 0.5) if theta + 0.5 < math.pi else c - 0.5 * math.sin(0.5)
            else:
                want = c
            assert got[i, j].item() == pytest.approx(16.0 * want, abs=1e-4)


def test_arcface_past_pi_uses_the_linear_fallback() -> None:
    head = ArcFace(2, 2, scale=1.0, margin=0.5).train()
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[-1.0, 0.05]])  # angle to class 0 is ~ pi, theta + m > pi
    c = _cos(x, head.weight.detach(), 0, 0)
    got = head(x, torch.tensor([0]))[0, 0].item()
    assert got == pytest.approx(c - 0.5 * math.sin(0.5), abs=1e-5)


def test_circle_softmax_matches_reference() -> None:
    head, x, labels = _setup(CircleSoftmax, scale=8.0, margin=0.25)
    got = head(x, labels)
    for i in range(5):
        for j in range(4):
            c = _cos(x, head.weight.detach(), i, j)
            if j == labels[i]:
                want = 8.0 * max(0.0, 1.25 - c) * (c - 0.75)
            else:
                want = 8.0 * max(0.0, c + 0.25) * (c - 0.25)
            assert got[i, j].item() == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("kind", ["am_softmax", "cosface", "arcface", "circle"])
def test_eval_mode_gives_scaled_cosine(kind: str) -> None:
    head = build_classifier(kind, 6, 4, scale=10.0, margin=0.4).eval()
    x = torch.randn(3, 6)
    want = 10.0 * torch.nn.functional.normalize(x) @ torch.nn.functional.normalize(head.weight).t()
    assert torch.allclose(head(x, torch.tensor([0, 1, 2])), want, atol=1e-5)
