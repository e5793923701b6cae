"""A compiled training step (network + loss in one torch.compile graph) compiles once.

The backend is ``aot_eager``: dynamo captures the same graph and AOTAutograd derives the same
backward graph as with inductor, but no kernels are generated (inductor's C++ code generation
takes minutes on a 2-core CPU). Recompilations are decided by dynamo's guards, which do not
depend on the backend.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from reidkit.engine.optim import with_fast_kernels
from reidkit.engine.step import ForwardLoss, graph_compilations
from reidkit.engine.trainer import Trainer, TrainSettings
from reidkit.losses import ReidLoss
from reidkit.models import ReidModel


def _batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 16, generator=g), torch.arange(n // 4).repeat_interleave(4)


def test_compiled_step_matches_eager_and_never_recompiles(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ReidModel("resnet18", 4, last_stride=2)
    loss = ReidLoss(4, triplet_margin=0.3)
    opt = with_fast_kernels(lambda **impl: torch.optim.Adam(model.parameters(), 1e-3, **impl))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0)
    settings = TrainSettings(
        run_dir=tmp_path,
        epochs=1,
        compile_mode="default",
        compile_backend="aot_eager",
        progress=False,
    )
    trainer = Trainer(model, None, loss, opt, sched, settings, device=torch.device("cpu"))
    eager = ForwardLoss(model, loss, device=torch.device("cpu"))
    before = graph_compilations()
    expected = float(eager(*_batch(0))[1]["total"])
    terms = trainer.train_step(*_batch(0), check=False)  # warm-up: compiles
    assert graph_compilations() > before and trainer.forward_loss.compiles_at_warmup is not None
    assert abs(float(terms["total"]) - expected) < 1e-4 * max(1.0, abs(expected))
    for seed in (1, 2):
        trainer.train_step(*_batch(seed), check=False)
    model.eval()  # an evaluation between epochs uses the model itself, not the compiled step
    with torch.inference_mode():
        model(_batch(3)[0])
    model.train()
    trainer.train_step(*_batch(4), check=False)
    assert trainer.forward_loss.recompilations() == 0


class _Tiny(nn.Module):
    """A two-layer network with the ReidModel output contract (quick to compile)."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(3 * 32 * 16, 8), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        f = self.body(x.flatten(1))
        return {"feature": f, "embedding": f, "logits": self.head(f)}


def test_a_shape_change_is_counted_as_a_recompilation() -> None:
    step = ForwardLoss(
        _Tiny(),
        ReidLoss(4, triplet_margin=0.3),
        device=torch.device("cpu"),
        compile_mode="default",
        backend="aot_eager",
    )
    step(*_batch(0))
    step(*_batch(1))
    assert step.recompilations() == 0 and step.new_recompilations() == 0
    step(*_batch(2, n=12))  # another batch size: static shapes compile again
    assert step.recompilations() == 1 and step.new_recompilations() == 1
    assert step.new_recompilations() == 0
