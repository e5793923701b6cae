"""Head parts: poolings (feature map -> vectors), necks (vector -> embedding), the PCB part head."""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import nn

from reidkit.models.classifiers import CLASSIFIERS
from reidkit.utils.errors import ConfigError

POOLINGS = ("avg", "max", "gem", "gem_avg", "avg_max")
NECKS = ("none", "bnneck", "embedding")

__all__ = ["CLASSIFIERS", "NECKS", "POOLINGS", "GeM", "Neck", "PartHead", "Pool", "check_choice"]


def check_choice(key: str, value: str, valid: tuple[str, ...]) -> str:
    """Return ``value`` if valid, else raise a one-line ``ConfigError`` with the closest name."""
    if value in valid:
        return value
    close = difflib.get_close_matches(str(value), valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"model_params.{key} = {value!r} is not valid{hint} (valid: {', '.join(valid)})"
    )


def init_kaiming(m: nn.Module) -> None:
    """BoT's initialisation of head layers: Kaiming (fan_out) linear, unit-weight BatchNorm."""
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_out")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm1d) and m.affine:
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class GeM(nn.Module):
    """Generalised-mean pooling over regions with a learnable exponent ``p`` (p=1 is average,
    large p approaches max)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor, regions: tuple[int, int] = (1, 1)) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, *regions)``."""
        p = self.p.clamp(min=1.0)
        pooled = F.adaptive_avg_pool2d(x.float().clamp(min=self.eps).pow(p), regions)
        return pooled.pow(1.0 / p).to(x.dtype)


class Pool(nn.Module):
    """avg / max / gem / gem_avg (GeM plus average) / avg_max (average plus max) pooling of
    ``parts`` horizontal stripes.

    ``(B, C, H, W) -> (B, C)`` for one part (global pooling), ``(B, C, parts)`` otherwise.
    """

    def __init__(self, kind: str = "avg", parts: int = 1) -> None:
        super().__init__()
        self.kind = check_choice("pooling", kind, POOLINGS)
        self.parts = parts
        self.gem = GeM() if kind in ("gem", "gem_avg") else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool, then drop the trailing unit dimensions."""
        regions = (self.parts, 1)
        if self.kind == "avg":
            y = F.adaptive_avg_pool2d(x, regions)
        elif self.kind == "max":
            y = F.adaptive_max_pool2d(x, regions)
        elif self.kind == "avg_max":
            y = F.adaptive_avg_pool2d(x, regions) + F.adaptive_max_pool2d(x, regions)
        else:
            assert self.gem is not None
            y = self.gem(x, regions)
            if self.kind == "gem_avg":
                y = y + F.adaptive_avg_pool2d(x, regions)
        y = y.flatten(2)
        return y.squeeze(2) if self.parts == 1 else y


class Neck(nn.Module):
    """none (identity), bnneck (BatchNorm1d, bias frozen at 0) or embedding (Linear + BN).

    ``out_dim`` is the size of the post-neck feature. ``bias`` gives the embedding's Linear a
    bias and ``relu`` ends the neck with a ReLU (torchreid's ``fc`` layers: Linear with bias,
    BN, ReLU; their BN shift is trained, so ``bias`` leaves it trainable too).
    """

    def __init__(
        self,
        kind: str,
        in_dim: int,
        embedding_dim: int = 0,
        *,
        bias: bool = False,
        relu: bool = False,
    ) -> None:
        super().__init__()
        self.kind = check_choice("neck", kind, NECKS)
        if bias and kind != "embedding":
            raise ConfigError(
                f"model_params.neck_bias = true needs neck 'embedding' (it is {kind!r})"
            )
        self.fc: nn.Linear | None = None
        self.bn: nn.BatchNorm1d | None = None
        self.relu = nn.ReLU() if relu else None
        self.out_dim = in_dim
        if kind == "embedding":
            self.out_dim = embedding_dim or in_dim
            self.fc = nn.Linear(in_dim, self.out_dim, bias=bias)
        if kind in ("bnneck", "embedding"):
            self.bn = nn.BatchNorm1d(self.out_dim)
            self.apply(init_kaiming)
            # BoT: no shift, keeps features centred
            self.bn.bias.requires_grad_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_dim) -> (B, out_dim)``."""
        if self.fc is not None:
            x = self.fc(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.relu(x) if self.relu is not None else x


class PartHead(nn.Module):
    """PCB (Sun et al. 2018): ``num_parts`` horizontal stripes, each pooled, reduced by a
    Linear+BN+ReLU (the paper's 1x1 convolution) to ``part_dim``, then given a neck.

    ``forward(fmap) -> (pre-neck (B, P, part_dim), post-neck (B, P, part_dim))``.
    """

    def __init__(
        self,
        in_dim: int,
        num_parts: int,
        part_dim: int = 256,
        pooling: str = "avg",
        neck: str = "none",
    ) -> None:
        super().__init__()
        if neck == "embedding":
            raise ConfigError(
                "model_params.neck = 'embedding' with num_parts > 0: PCB already reduces each part "
                "to embedding_dim; use neck 'none' (the PCB paper) or 'bnneck'"
            )
        self.num_parts, self.part_dim = num_parts, part_dim
        self.pool = Pool(pooling, num_parts)
        self.reduce = nn.ModuleList(
            nn.Sequential(
                nn.Linear(in_dim, part_dim, bias=False), nn.BatchNorm1d(part_dim), nn.ReLU()
            )
            for _ in range(num_parts)
        )
        self.necks = nn.ModuleList(Neck(neck, part_dim) for _ in range(num_parts))
        self.reduce.apply(init_kaiming)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stripe features before and after the per-part necks."""
        stripes = self.pool(fmap)
        if stripes.dim() == 2:  # a single part
            stripes = stripes.unsqueeze(2)
        reduced = [r(stripes[:, :, i]) for i, r in enumerate(self.reduce)]
        necked = [n(f) for n, f in zip(self.necks, reduced, strict=True)]
        return torch.stack(reduced, 1), torch.stack(necked, 1)
