"""AdaBN: ``reestimate_batchnorm`` replaces the BatchNorm statistics by the target's."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from reidkit.engine.pseudo_labels import reestimate_batchnorm


def test_statistics_become_the_target_average() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
    model[1].running_mean.fill_(5.0)  # the source's statistics, far from the target's
    model[1].momentum = 0.1
    batches = [torch.randn(8, 3) * 2 + 1 for _ in range(3)]
    n = reestimate_batchnorm(model, [SimpleNamespace(images=b) for b in batches])
    assert n == 1
    with torch.no_grad():
        h = model[0](torch.cat(batches))
    # the cumulative average of the per-batch means equals the mean over all (equal batches)
    assert torch.allclose(model[1].running_mean, h.mean(0), atol=1e-5)
    assert model[1].momentum == 0.1 and not model.training  # restored


def test_a_batch_of_one_image_is_left_out() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
    batches = [torch.randn(8, 3), torch.randn(1, 3)]  # 9 crops in batches of 8: one left
    assert reestimate_batchnorm(model, [SimpleNamespace(images=b) for b in batches]) == 1
    with torch.no_grad():
        h = model[0](batches[0])
    assert torch.allclose(model[1].running_mean, h.mean(0), atol=1e-5)
