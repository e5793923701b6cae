"""The training step reads nothing back from the device; the loop reads the loss once per
logging interval. Counted with ``reidkit.utils.hostsync`` (a TorchFunctionMode that sees every
``.item()`` / ``bool(tensor)`` / ``.tolist()`` / mask index ... made from Python)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidkit.data.loaders import Batch
from reidkit.engine.optim import with_fast_kernels
from reidkit.engine.trainer import Trainer, TrainSettings
from reidkit.losses import ReidLoss
from reidkit.models import ReidModel
from reidkit.utils.hostsync import HostSyncCounter, count_host_syncs

LOSSES = {
    "bot": dict(triplet_margin=0.3, center_weight=5e-4),  # CE+LS, batch-hard triplet, center
    "agw_circle": dict(triplet_margin="soft_margin", triplet_type="weighted", circle_weight=1.0),
}


def _trainer(tmp_path: Path, loss_kw: dict, grad_clip: float = 0.0, loader=None) -> Trainer:
    torch.manual_seed(0)
    model = ReidModel("resnet18", 4, last_stride=2)
    loss = ReidLoss(4, feat_dim=model.feature_dim, **loss_kw)
    opt = with_fast_kernels(lambda **impl: torch.optim.Adam(model.parameters(), 1e-3, **impl))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0 / (1 + it))
    settings = TrainSettings(
        run_dir=tmp_path, epochs=1, grad_clip=grad_clip, log_every=3, progress=False
    )
    return Trainer(
        model,
        loader,
        loss,
        opt,
        sched,
        settings,
        device=torch.device("cpu"),
        loss_optimizer=loss.make_extra_optimizer(),
    )


def _batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 16, generator=g), torch.arange(n // 4).repeat_interleave(4)


@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_training_step_makes_no_host_sync(tmp_path: Path, loss_name: str) -> None:
    trainer = _trainer(tmp_path, LOSSES[loss_name], grad_clip=5.0)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with count_host_syncs() as syncs:
        for seed in range(3):
            terms = trainer.train_step(*_batch(seed), check=False)
    assert syncs.count == 0, syncs.report()
    assert trainer.state.iteration == 3 and torch.isfinite(terms["total"])
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_the_guard_sees_reads_and_a_batch_without_pairs_is_still_finite(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, LOSSES["bot"])
    with count_host_syncs() as syncs:
        trainer.train_step(*_batch(0), check=True)  # the NaN check reads the loss
    assert syncs.calls["__bool__"] == 1, syncs.report()
    images, _ = _batch(1, n=4)
    with count_host_syncs() as syncs:  # all ids distinct: no valid triplet anchor, loss 0
        terms = trainer.train_step(images, torch.arange(4), check=False)
    assert syncs.count == 0 and float(terms["triplet"]) == 0.0
    p = torch.nn.Parameter(torch.ones(3))
    plain = torch.optim.Adam([p], lr=0.1, foreach=True)  # the default kernels read the step
    p.grad = torch.ones(3)
    with count_host_syncs() as syncs:
        plain.step()
    assert syncs.calls["item"] >= 1


class _Batches:
    """A loader over ready-made batches that notes the host-sync count before each batch."""

    def __init__(self, batches: list, counter: HostSyncCounter) -> None:
        self.batches, self.counter, self.marks = batches, counter, []

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for b in self.batches:
            self.marks.append(self.counter.count)
            yield b
        self.marks.append(self.counter.count)


def test_epoch_loop_reads_the_loss_only_on_logging_steps(tmp_path: Path) -> None:
    batches = [Batch(*_batch(s), torch.zeros(8, dtype=torch.int64)) for s in range(7)]
    syncs = HostSyncCounter()
    loader = _Batches(batches, syncs)
    trainer = _trainer(tmp_path, LOSSES["bot"], loader=loader)
    with syncs:
        stats = trainer.train_epoch()
    per_step = [b - a for a, b in zip(loader.marks, loader.marks[1:], strict=False)]
    logging = [s % 3 == 0 or s == 6 for s in range(7)]  # log_every=3 and the last step
    assert [n > 0 for n in per_step] == logging, (per_step, syncs.report())
    assert all("engine/trainer.py" in w for w in syncs.where), syncs.report()
    assert stats["total"] > 0 and trainer.state.iteration == 7
