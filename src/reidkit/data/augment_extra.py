"""Optional batched augmentations: colour jitter, random patch, AutoAugment / RandAugment.

Each takes a batch and a ``torch.Generator`` and draws independent parameters per image.
Colour jitter works on float pixels in 0..255 before normalisation (brightness 0.15, contrast
0.15, saturation 0.1 as fast-reid; no hue); random patch (fast-reid's RandomPatch, done
within the batch) pastes a box cut from another image of the batch; AutoAugment /
RandAugment are torchvision's, applied per image on uint8 with the global RNG forked and
seeded from the generator so results stay a function of (seed, epoch).
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms import v2

JITTER = (0.15, 0.15, 0.1)  # brightness, contrast, saturation
GRAY = (0.299, 0.587, 0.114)


def _gray(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(GRAY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def color_jitter(x: torch.Tensor, gen: torch.Generator, prob: float) -> torch.Tensor:
    """Per-image brightness / contrast / saturation jitter of float pixels in 0..255."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen, device=gen.device).to(x.device)
    on = (u[:, 3] < prob).to(x.dtype)
    f = [1 + on * (2 * u[:, i] - 1) * JITTER[i] for i in range(3)]
    b, c, s = (t.view(n, 1, 1, 1) for t in f)
    x = x * b
    mean = _gray(x).mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * c + mean
    g = _gray(x)
    x = g + (x - g) * s
    return x.clamp_(0, 255)


def random_patch(
    x: torch.Tensor,
    gen: torch.Generator,
    prob: float,
    area: tuple[float, float] = (0.01, 0.5),
    ratio: float = 0.1,
) -> torch.Tensor:
    """Paste into each image (with ``prob``) a box cut from another image of the batch."""
    n, c, h, w = x.shape
    if n < 2:
        return x
    dev = x.device
    u = torch.rand(n, 8, generator=gen, device=gen.device).to(dev)
    a = (area[0] + (area[1] - area[0]) * u[:, 0]) * h * w
    r = torch.exp(math.log(ratio) + (math.log(1 / ratio) - math.log(ratio)) * u[:, 1])
    ph = torch.sqrt(a * r).round().clamp(1, h).long()
    pw = torch.sqrt(a / r).round().clamp(1, w).long()
    sy, sx = (u[:, 2] * (h - ph + 1)).long(), (u[:, 3] * (w - pw + 1)).long()
    dy, dx = (u[:, 4] * (h - ph + 1)).long(), (u[:, 5] * (w - pw + 1)).long()
    src = (torch.arange(n, device=dev) + 1 + (u[:, 6] * (n - 1)).long().clamp(max=n - 2)) % n
    on = u[:, 7] < prob
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    v = lambda t: t.view(n, 1, 1)  # noqa: E731
    inside = v(on) & (rows >= v(dy)) & (rows < v(dy + ph)) & (cols >= v(dx)) & (cols < v(dx + pw))
    srow = (rows - v(dy) + v(sy)).clamp(0, h - 1)
    scol = (cols - v(dx) + v(sx)).clamp(0, w - 1)
    flat = (v(src) * (h * w) + srow * w + scol).reshape(-1)
    patch = x.transpose(0, 1).reshape(c, -1)[:, flat].reshape(c, n, h, w).transpose(0, 1)
    return torch.where(inside[:, None], patch, x)


def auto_augment(images: torch.Tensor, gen: torch.Generator, policy: str) -> torch.Tensor:
    """torchvision AutoAugment (ImageNet policy) or RandAugment on each uint8 image."""
    op = v2.AutoAugment() if policy == "autoaugment" else v2.RandAugment()
    seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
    out = torch.empty_like(images)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(images.shape[0]):
            out[i] = op(images[i])
    return out
