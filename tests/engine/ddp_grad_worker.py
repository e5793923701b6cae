"""Run under torchrun (2 CPU processes, gloo): one DDP step's gradient on half a batch each
must equal a single process's gradient on the whole batch. Rank 0 writes the verdict to argv[1].
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from reidkit.config import validate_config
from reidkit.engine.distributed import wrap_ddp
from reidkit.losses import build_loss
from reidkit.models import ReidModel


def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = validate_config({"batches_dir": ".", "tri_loss_margin": 0, "label_smoothing": 0.1})
    torch.manual_seed(0)
    model = ReidModel("resnet18", num_classes=5)
    model.train()
    for m in model.modules():  # batch statistics differ per half: compare with frozen BN
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    loss_fn = build_loss(cfg, 5)
    g = torch.Generator().manual_seed(1)
    images = torch.randn(8, 3, 64, 32, generator=g)
    pids = torch.randint(0, 5, (8,), generator=g)

    single = {n: p.detach().clone() for n, p in model.named_parameters()}
    ref_model = ReidModel("resnet18", num_classes=5)
    ref_model.load_state_dict(model.state_dict())
    ref_model.train()
    for m in ref_model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    total, _ = loss_fn(ref_model(images, pids), pids)
    total.backward()
    ref_grads = {n: p.grad for n, p in ref_model.named_parameters() if p.grad is not None}

    ddp = wrap_ddp(model, torch.device("cpu"), sync_bn=False)
    half = images.shape[0] // world
    sl = slice(rank * half, (rank + 1) * half)
    total, _ = loss_fn(ddp(images[sl], pids[sl]), pids[sl])
    total.backward()
    worst = 0.0
    for n, p in model.named_parameters():
        if n in ref_grads:
            worst = max(worst, (p.grad - ref_grads[n]).abs().max().item())
    if rank == 0:
        with open(sys.argv[1], "w") as f:
            json.dump({"max_abs_diff": worst, "params": len(single)}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
