"""Generate docs/config.md, the reference of every params.json key, from the schema itself.

``python -m reidkit.config_doc > docs/config.md``; a test checks the file is up to date.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from reidkit.config import Config

SEED_KEYS = {
    "batch_size",
    "batches_dir",
    "data_augmentation",
    "epoch",
    "imagenet_pretrain",
    "img_h",
    "img_w",
    "lr",
    "model_params",
    "optimizer",
    "parallels",
    "pretrain_snapshot",
    "weight_decay",
    "fine_tune",
    "evaluation_params",
    "working_dir",
    "tri_loss_margin",
    "tri_loss_lambda_cls",
    "batch_sampling_params",
}

HEADER = """# Configuration reference

A run is one params file (JSON or YAML). Every key below is optional except `batches_dir`;
unknown keys are errors that name the closest valid key. Keys marked **seed** are the keys of
the original params.json and keep its meaning. Override any key on the command line:
`reidkit train -c params.json lr.base_lr=0.01 model_params.backbone=resnet18`.
The resolved config of each run is saved as `RUN_DIR/config.json`.

This file is generated from `src/reidkit/config/schema.py` by `make docs`; do not edit it by hand.
"""


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "*required*"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{json.dumps(value)}`"


def _type(field: Any) -> str:
    ann = field.annotation
    text = ann.__name__ if isinstance(ann, type) else str(ann)
    text = text.replace("typing.", "").replace("NoneType", "None")
    text = re.sub(r"Literal\[(.*?)\]", r"one of \1", text)
    text = re.sub(r"Union\[(.*)\]", lambda m: m.group(1).replace(", ", " or "), text)
    return text.replace(" | ", " or ")


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows, sections = [], []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sections.append((name, ann, field))
            continue
        seed = " **seed**" if not prefix and name in SEED_KEYS else ""
        desc = (field.description or "").replace("|", "\\|")
        kind = _type(field).replace("|", "or")
        rows.append(f"| `{prefix}{name}`{seed} | {kind} | {_default(field)} | {desc} |")
    out = rows
    for name, sub, field in sections:
        seed = " (seed key)" if not prefix and name in SEED_KEYS else ""
        out.append("")
        out.append(f"### `{prefix}{name}`{seed}")
        out.append("")
        out.append((field.description or sub.__doc__ or "").strip())
        out.append("")
        out.append("| key | type | default | meaning |")
        out.append("| --- | --- | --- | --- |")
        out.extend(_rows(sub, prefix=f"{prefix}{name}."))
    return out


def render() -> str:
    """The whole markdown reference."""
    lines = [HEADER, "## Top-level keys", "", "| key | type | default | meaning |"]
    lines.append("| --- | --- | --- | --- |")
    lines.extend(_rows(Config))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
