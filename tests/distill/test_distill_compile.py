"""The distillation step under ``torch.compile`` (backend ``aot_eager``: the graph dynamo and
AOTAutograd capture, without generating kernels): the same loss as eager with the frozen
teacher inside the graph, and no recompilation after the first step."""

from __future__ import annotations

import torch
from torch import nn

from reidkit.data.targets import BatchTargets
from reidkit.engine.step import ForwardLoss
from reidkit.losses import ReidLoss
from reidkit.losses.distill import DistillLoss, make_projection
from reidkit.models import Backbone, ReidModel
from reidkit.models.distill import DistillNet, FrozenTeacher


class TwoConv(Backbone):
    """A two-convolution backbone: milliseconds per batch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
        )  # fmt: skip

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _step(compiled: bool, cached: bool) -> list[torch.Tensor]:
    torch.manual_seed(0)
    student = ReidModel(TwoConv(16), 4)
    teacher = FrozenTeacher(ReidModel(TwoConv(24), 4).eval(), size=(24, 12), logits=True)
    net = DistillNet(student, teacher, kd=True)
    projection = make_projection(16, 24)
    loss = DistillLoss(ReidLoss(4, triplet_margin=0.3), kd_weight=1.0, projection=projection)
    mode = "default" if compiled else None
    step = ForwardLoss(
        net, loss, device=torch.device("cpu"), compile_mode=mode, backend="aot_eager"
    )
    x, pids = torch.randn(8, 3, 32, 16), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    totals = []
    for _ in range(3):
        targets = BatchTargets(pids, teacher(x) if cached else {})
        total, terms, _ = step(x, targets)
        total.backward()
        totals.append(terms["total"])
    assert set(terms) == {"ce", "triplet", "kd", "feature", "relation", "total"}
    assert step.recompilations() == 0
    return totals


def test_compiled_distill_step_equals_eager() -> None:
    # the teacher runs inside the captured graph (the per-batch case; cached rows are inputs)
    eager, compiled = _step(False, cached=False), _step(True, cached=False)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(eager, compiled, strict=True))
