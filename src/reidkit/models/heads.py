"""Head parts: poolings (feature map -> vector), necks (vector -> embedding), classifiers."""

from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import nn

from reidkit.utils.errors import ConfigError

POOLINGS = ("avg", "max", "gem", "gem_avg")
NECKS = ("none", "bnneck", "embedding")
CLASSIFIERS = ("softmax",)


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
    """Generalised-mean pooling with a learnable exponent ``p`` (p=1 avg, p->inf max)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C)``."""
        p = self.p.clamp(min=1.0)
        pooled = x.float().clamp(min=self.eps).pow(p).mean(dim=(2, 3))
        return pooled.pow(1.0 / p).to(x.dtype)


class GlobalPool(nn.Module):
    """avg / max / gem / gem_avg (the sum of GeM and average) pooling to ``(B, C)``."""

    def __init__(self, kind: str = "avg") -> None:
        super().__init__()
        self.kind = check_choice("pooling", kind, POOLINGS)
        self.gem = GeM() if kind in ("gem", "gem_avg") else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C)``."""
        if self.kind == "avg":
            return x.mean(dim=(2, 3))
        if self.kind == "max":
            return x.amax(dim=(2, 3))
        assert self.gem is not None
        pooled = self.gem(x)
        return pooled + x.mean(dim=(2, 3)) if self.kind == "gem_avg" else pooled


class Neck(nn.Module):
    """none (identity), bnneck (BatchNorm1d, bias frozen at 0) or embedding (Linear + BN).

    ``out_dim`` is the size of the post-neck feature.
    """

    def __init__(self, kind: str, in_dim: int, embedding_dim: int = 0) -> None:
        super().__init__()
        self.kind = check_choice("neck", kind, NECKS)
        self.fc: nn.Linear | None = None
        self.bn: nn.BatchNorm1d | None = None
        self.out_dim = in_dim
        if kind == "embedding":
            self.out_dim = embedding_dim or in_dim
            self.fc = nn.Linear(in_dim, self.out_dim, bias=False)
        if kind in ("bnneck", "embedding"):
            self.bn = nn.BatchNorm1d(self.out_dim)
            self.apply(init_kaiming)
            self.bn.bias.requires_grad_(False)  # BoT: no shift, keeps features centred

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_dim) -> (B, out_dim)``."""
        if self.fc is not None:
            x = self.fc(x)
        return self.bn(x) if self.bn is not None else x


class LinearClassifier(nn.Module):
    """Softmax classifier: a bias-free linear layer (std 0.001 init, as in BoT)."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        nn.init.normal_(self.weight, std=0.001)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)``; ``labels`` are unused (margin classifiers need them)."""
        return F.linear(x, self.weight)


def build_classifier(
    kind: str, in_dim: int, num_classes: int, scale: float = 30.0, margin: float = 0.35
) -> nn.Module:
    """A classifier by name (see ``CLASSIFIERS``)."""
    check_choice("classifier", kind, CLASSIFIERS)
    return LinearClassifier(in_dim, num_classes)
