"""Turning a torchreid / fast-reid checkpoint into a reidkit run folder (``reidkit import``).

``parse_source`` reads the SOURCE argument, ``build_import`` makes the reidkit model with the
checkpoint's weights (nothing written), ``import_checkpoint`` writes the run folder:
``config.json``, ``best.pth`` (reidkit's checkpoint format, so ``reidkit eval / export``, the
Embedder and ``pretrain_snapshot`` take it) and ``import.json`` (the key mapping report).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reidkit.config import Config, apply_overrides, save_config, validate_config
from reidkit.models.build import build_model
from reidkit.models.checkpoint import save_checkpoint
from reidkit.models.importers.fastreid import PRESETS, fastreid_plan, load_fastreid_config
from reidkit.models.importers.mapping import ImportReport, map_state
from reidkit.models.importers.plan import ImportPlan, UnsupportedSourceError
from reidkit.models.importers.reading import SourceCheckpoint, read_source_checkpoint
from reidkit.models.importers.torchreid import ARCHS, torchreid_plan
from reidkit.models.reid_model import ReidModel
from reidkit.utils.errors import CheckpointError, ConfigError
from reidkit.utils.files import atomic_write_text

YAML_SUFFIXES = (".yml", ".yaml")
DEFAULT_BATCHES_DIR = "data/market1501"


def supported_sources() -> list[str]:
    """Every named SOURCE (fast-reid config files come on top)."""
    return [f"torchreid:{a}" for a in ARCHS] + [f"fastreid:{p}" for p in PRESETS]


def _source_error(source: str) -> UnsupportedSourceError:
    return UnsupportedSourceError(
        f"SOURCE {source!r} is not valid: expected torchreid:<arch> ({', '.join(ARCHS)}), "
        f"fastreid:<preset> ({', '.join(PRESETS)}), fastreid:<config.yaml>, or fastreid "
        "(config.yaml beside the checkpoint)"
    )


def parse_source(source: str, checkpoint: str | Path) -> tuple[str, Any]:
    """``(framework, what)``: ``("torchreid", arch)``, ``("fastreid", preset name)`` or
    ``("fastreid", Path of a yaml config)``."""
    framework, _, rest = source.partition(":")
    if source.lower().endswith(YAML_SUFFIXES) and framework != "fastreid":
        framework, rest = "fastreid", source
    if framework == "torchreid" and rest:
        return "torchreid", rest
    if framework == "fastreid" and not rest:
        beside = Path(checkpoint).parent / "config.yaml"
        if not beside.is_file():
            raise ConfigError(
                f"SOURCE fastreid: no config.yaml beside {checkpoint}; pass fastreid:<config.yaml> "
                f"or a preset ({', '.join(PRESETS)})"
            )
        return "fastreid", beside
    if framework == "fastreid":
        return (
            ("fastreid", Path(rest))
            if rest.lower().endswith(YAML_SUFFIXES)
            else (
                "fastreid",
                rest,
            )
        )
    raise _source_error(source)


def make_plan(source: str, ckpt: SourceCheckpoint) -> ImportPlan:
    """The ``ImportPlan`` of ``source`` for the checkpoint's tensors."""
    framework, what = parse_source(source, ckpt.path)
    if framework == "torchreid":
        return torchreid_plan(what, ckpt.state)
    if isinstance(what, Path):
        return fastreid_plan(load_fastreid_config(what), f"fastreid:{what}", ckpt.state)
    if what not in PRESETS:
        raise _source_error(source)
    return fastreid_plan(PRESETS[what], f"fastreid:{what}", ckpt.state)


def _config(plan: ImportPlan, overrides: Sequence[str], out: Path | None) -> Config:
    """The run's Config: the plan's keys, reidkit's evaluation defaults, then ``overrides``."""
    bad = [o for o in overrides if o.split("=", 1)[0].strip().startswith("model_params")]
    if bad:
        raise ConfigError(
            f"override {bad[0]!r}: model_params come from the checkpoint and cannot be changed "
            "on import (edit config.json afterwards to fine-tune another head)"
        )
    ev = {"type": "market_evaluate", "metric": "mAP", **plan.config.get("evaluation_params", {})}
    data: dict[str, Any] = {
        "batches_dir": DEFAULT_BATCHES_DIR,
        **plan.config,
        "evaluation_params": ev,
        "model_params": plan.model_params,
        "imagenet_pretrain": False,
    }
    if out is not None:
        data.update(working_dir=str(out.parent), sub_working_dir=out.name)
    return validate_config(apply_overrides(data, list(overrides)), source=f"import {plan.source}")


def build_import(
    source: str,
    checkpoint: str | Path,
    *,
    drop_classifier: bool = False,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
) -> tuple[ReidModel, Config, ImportReport]:
    """Read ``checkpoint``, map it onto reidkit's model for ``source``; nothing is written.

    Returns the eval-mode model, its Config and the report. Raises ``ConfigError`` /
    ``UnsupportedSourceError`` for a SOURCE reidkit cannot reproduce and
    ``SourceMismatchError`` (a ``CheckpointError``) when the keys do not fit it.
    """
    ckpt = read_source_checkpoint(checkpoint)
    plan = make_plan(source, ckpt)
    cfg = _config(plan, overrides, Path(out) if out is not None else None)
    keep_classifier = plan.num_classes > 0 and not drop_classifier
    model = build_model(cfg, plan.num_classes if keep_classifier else 1)
    own = model.state_dict()
    report = ImportReport(source=plan.source, checkpoint=str(ckpt.path), notes=list(plan.notes))
    if plan.size_note and not any(o.startswith(("img_h=", "img_w=")) for o in overrides):
        report.notes.append(plan.size_note)
    drop, targets = _targets(plan, own, keep_classifier, drop_classifier)
    state = map_state(ckpt.state, plan.rules, targets, report, drop)
    for key, value in own.items():
        if key.startswith("classifier.") and key not in state:
            state[key] = torch.zeros_like(value)  # a placeholder, never used for retrieval
    state.update(plan.fixed)
    report.filled += sorted(plan.fixed)
    if ckpt.stripped_prefix:
        report.notes.append(f"removed the {ckpt.stripped_prefix!r} prefix of every key")
    if ckpt.other_entries:
        report.notes.append(
            f"ignored the checkpoint's other entries: {', '.join(ckpt.other_entries)}"
        )
    model.load_state_dict(state)
    return model.eval(), cfg, report


def _targets(
    plan: ImportPlan, own: dict[str, torch.Tensor], keep_classifier: bool, asked: bool
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Source prefixes to leave out (with why) and the reidkit tensors the mapping must fill
    (all but the plan's fixed ones and, when it is left out, the classifier)."""
    drop = dict(plan.ignore)
    targets = {k: v for k, v in own.items() if k not in plan.fixed}
    if not keep_classifier:
        why = "--drop-classifier" if asked else "no identities in the checkpoint"
        reason = f"identity classifier ({why}); retrieval does not use it"
        drop.update({p: reason for p in plan.classifier_prefixes})
        targets = {k: v for k, v in targets.items() if not k.startswith("classifier.")}
    return drop, targets


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_file():
        raise ConfigError(f"--out {out}: is a file; expected a run folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out {out}: folder exists and is not empty; pass --overwrite")


def import_checkpoint(
    source: str,
    checkpoint: str | Path,
    out: str | Path,
    *,
    drop_classifier: bool = False,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
) -> ImportReport:
    """Write the reidkit run folder ``out`` for a torchreid / fast-reid ``checkpoint``.

    Everything is checked before ``out`` is touched; an existing non-empty ``out`` needs
    ``overwrite`` (which replaces the run's files and deletes its old ``*.onnx`` and
    ``eval.json``). Returns the report (also written as ``out/import.json``).
    """
    out = Path(out)
    _check_out(out, overwrite)
    model, cfg, report = build_import(
        source, checkpoint, drop_classifier=drop_classifier, overrides=overrides, out=out
    )
    stale = [p for p in out.glob("*") if p.suffix == ".onnx" or p.name == "eval.json"]
    for path in stale if out.is_dir() else []:  # results of the model being replaced
        path.unlink()
        report.notes.append(f"removed {path.name}, made from the replaced model")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"--out {out}: cannot create the run folder ({e.strerror})") from None
    save_config(cfg, out / "config.json")
    save_checkpoint(
        {
            "model": model.state_dict(),
            "epoch": 0,
            "iteration": 0,
            "best_metric": None,
            "metrics": {},
            "config": cfg.to_dict(),
            "num_classes": model.num_classes,
            "imported_from": {"source": report.source, "checkpoint": report.checkpoint},
        },
        out / "best.pth",
    )
    atomic_write_text(out / "import.json", json.dumps(report.to_dict(), indent=2) + "\n")
    return report
