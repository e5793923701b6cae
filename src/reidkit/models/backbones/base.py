"""The backbone interface, the name registry and ImageNet weight loading.

A backbone turns an image batch into a feature map: ``forward_features(x) -> (B, C, H, W)``
with ``C == out_channels``. ``last_stride=1`` removes the final down-sampling (BoT), doubling the
feature map's height and width. Backbones are built by name through ``build_backbone`` from a
registry filled by ``register_backbone``; ``backbone_names()`` lists what is available.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from reidkit.utils.errors import CheckpointError, ConfigError, first_line
from reidkit.utils.logging import get_logger

Pretrained = Union[bool, str, Path]


class Backbone(nn.Module):
    """Base class: a feature extractor with ``out_channels`` and named ``stages``."""

    out_channels: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map ``(B, out_channels, H, W)`` of an image batch."""
        raise TypeError(f"{type(self).__name__} must implement forward_features")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as ``forward_features``."""
        return self.forward_features(x)

    def stages(self) -> dict[str, nn.Module]:
        """Named parts (stem, layer1, ...) that ``freeze_layers`` can refer to."""
        return dict(self.named_children())


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one registered backbone."""

    name: str
    builder: Callable[[int, Pretrained], Backbone]
    description: str = ""


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(
    name: str, description: str = ""
) -> Callable[[Callable[[int, Pretrained], Backbone]], Callable[[int, Pretrained], Backbone]]:
    """Decorator: register ``builder(last_stride, pretrained) -> Backbone`` under ``name``."""

    def wrap(builder: Callable[[int, Pretrained], Backbone]) -> Callable[..., Backbone]:
        _REGISTRY[name] = BackboneSpec(name, builder, description)
        return builder

    return wrap


def backbone_names() -> list[str]:
    """The registered backbone names, sorted."""
    return sorted(_REGISTRY)


def get_backbone_spec(name: str) -> BackboneSpec:
    """The spec of ``name``; a ``ConfigError`` naming the closest valid names otherwise."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"model_params.backbone = {name!r} is not a known backbone{hint} "
        f"(valid: {', '.join(backbone_names())})"
    )


def unstride(module: nn.Module) -> int:
    """Set every stride-2 convolution inside ``module`` to stride 1; returns how many."""
    changed = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)
            changed += 1
    if not changed:
        raise ValueError(f"{type(module).__name__} has no stride-2 convolution to remove")
    return changed


# --------------------------------------------------------------------------------------------
# ImageNet weights
# --------------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    """What happened when a state dict was loaded into a network."""

    source: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One log line."""

        def short(keys: list[str]) -> str:
            more = f" ... (+{len(keys) - 5})" if len(keys) > 5 else ""
            return ", ".join(keys[:5]) + more

        parts = [f"{self.source}: loaded {self.loaded} tensors"]
        for label, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("skipped", self.skipped),
        ):
            if keys:
                parts.append(f"{label} {len(keys)} [{short(keys)}]")
        return "; ".join(parts)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file (a state dict, or a dict holding one under model/state_dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        first = first_line(e)
        raise CheckpointError(f"{path}: not a readable weights file ({first[:200]})") from None
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_weights_file(
    net: nn.Module, path: str | Path, ignore_prefixes: tuple[str, ...] = ()
) -> LoadReport:
    """Load a local state dict into ``net`` non-strictly, ignoring the classifier's keys.

    Keys under ``ignore_prefixes`` (a network's ImageNet classifier) are skipped in both
    directions; tensors whose shape differs are an error; the rest is reported.
    """
    state = read_state_dict(path)
    own = net.state_dict()
    report = LoadReport(source=f"imagenet_pretrain {path}")
    usable: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(ignore_prefixes):
            report.skipped.append(key)
        elif key not in own:
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            raise CheckpointError(
                f"{path}: tensor {key} has shape {tuple(value.shape)} but the network expects "
                f"{tuple(own[key].shape)}; is the file for another backbone?"
            )
        else:
            usable[key] = value
    if not usable:
        raise CheckpointError(
            f"{path}: no tensor name matches the network (first key {next(iter(state), None)!r}, "
            f"expected e.g. {next(iter(own))!r}); is the file for another backbone?"
        )
    net.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    report.missing = [k for k in own if k not in usable and not k.startswith(ignore_prefixes)]
    get_logger().info(report.summary())
    return report


def imagenet_weights(model_name: str, version: str = "IMAGENET1K_V1") -> Any:
    """torchvision's weights enum member ``version`` for ``model_name`` (V1: the classic
    weights most ReID papers start from)."""
    import torchvision

    return getattr(torchvision.models.get_model_weights(model_name), version)


def no_imagenet_weights(name: str, example: str = "") -> None:
    """Raise the error for ``imagenet_pretrain: true`` on a backbone torchvision has no
    weights for."""
    hint = f" (e.g. {example})" if example else ""
    raise ConfigError(
        f"imagenet_pretrain = true: torchvision publishes no ImageNet weights for backbone "
        f"{name!r}; set imagenet_pretrain to a local .pth file{hint} or to false"
    )


def load_torchvision_weights(net: nn.Module, weights: Any) -> None:
    """Load torchvision ``weights`` (an enum member) from the hub cache or the internet.

    Without the file in ``$TORCH_HOME/hub/checkpoints`` and without internet, raises a
    ``CheckpointError`` naming the file to put there.
    """
    try:
        state = weights.get_state_dict(progress=False, weights_only=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad hash a RuntimeError
        filename = weights.url.rsplit("/", 1)[-1]
        target = Path(torch.hub.get_dir()) / "checkpoints" / filename
        reason = first_line(e, 120)
        raise CheckpointError(
            f"imagenet_pretrain: cannot get {weights} ({reason}); download {weights.url} to "
            f"{target}, or set imagenet_pretrain to false or to a local .pth path"
        ) from None
    net.load_state_dict(state)
    get_logger().info(f"imagenet_pretrain: loaded torchvision {weights}")


def load_pretrained(
    net: nn.Module,
    pretrained: Pretrained,
    weights: Any,
    ignore_prefixes: tuple[str, ...],
    name: str = "",
) -> None:
    """Apply ``imagenet_pretrain`` to a network that still has its classifier.

    ``weights`` is torchvision's enum member, or None when there are none (then ``True`` is an
    error naming backbone ``name``).
    """
    if pretrained is True:
        if weights is None:
            no_imagenet_weights(name or type(net).__name__)
        load_torchvision_weights(net, weights)
    elif isinstance(pretrained, (str, Path)) and str(pretrained):
        load_weights_file(net, pretrained, ignore_prefixes)
