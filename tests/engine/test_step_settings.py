"""What the config's step keys become: fused optimisers, amp / channels_last "auto", compile."""

from __future__ import annotations

import pytest
import torch

from reidkit.app.build import settings_of
from reidkit.config import validate_config
from reidkit.engine.optim import build_optimizer
from reidkit.models import ReidModel
from reidkit.utils.devices import resolve_amp, resolve_channels_last
from reidkit.utils.errors import ConfigError

CPU = torch.device("cpu")


def cfg(**kw):
    return validate_config({"batches_dir": ".", **kw})


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimisers_use_the_fused_kernels_on_the_cpu(name: str) -> None:
    model = ReidModel("resnet18", 3)
    opt = build_optimizer(cfg(optimizer=name), model)
    assert opt.defaults["fused"] is True
    assert [g["name"] for g in opt.param_groups][:2] == ["backbone", "backbone.bias"]


def test_auto_precision_and_layout_keep_cpu_defaults_and_explicit_values() -> None:
    assert cfg().amp == "auto" and cfg().channels_last == "auto"
    assert resolve_amp("auto", CPU) == "off" and resolve_channels_last("auto", CPU) is False
    assert resolve_amp("bf16", CPU) == "bf16" and resolve_channels_last(True, CPU) is True
    eager = settings_of(cfg(), None, CPU)
    assert (eager.amp, eager.channels_last, eager.compile_mode) == ("off", False, None)
    compiled = settings_of(cfg(compile=True, compile_mode="reduce-overhead"), None, CPU)
    assert compiled.compile_mode == "reduce-overhead"
    assert settings_of(cfg(compile=True), None, CPU).compile_mode == "default"


def test_a_wrong_compile_mode_names_the_key() -> None:
    with pytest.raises(ConfigError, match="compile_mode"):
        cfg(compile=True, compile_mode="fast")
