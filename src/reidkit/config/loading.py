"""Reading params files: JSON or YAML, ``key.sub=value`` overrides, one-line errors.

``load_config`` reads a file, applies overrides, validates it into a frozen ``Config`` and
checks the files it names. Mistakes are reported as ``ConfigError`` with one line naming the
file, the key, the bad value and what would be valid (the closest key for typos).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from reidkit.config.schema import Config
from reidkit.utils.errors import ConfigError
from reidkit.utils.files import atomic_write_text


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML file into a dict, with a one-line error on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _parse_value(text: str) -> Any:
    """Interpret an override's value as JSON/YAML scalar or list when possible."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a nested dict (returns a new dict)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.sub=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p, {}), dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
            node = node.setdefault(p, {})
        node[parts[-1]] = _parse_value(value)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (for typo suggestions)."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _format_error(err: dict[str, Any], source: str) -> str:
    """One line for one pydantic error: file, key, value and what is valid."""
    loc = tuple(p for p in err["loc"] if not isinstance(p, int) or True)
    key = ".".join(str(p) for p in loc) or "(top level)"
    etype = err["type"]
    if etype == "extra_forbidden":
        model = _model_at(loc)
        valid = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{source}: unknown key '{key}'{hint} (valid keys: {', '.join(valid)})"
    if etype == "missing":
        return f"{source}: missing required key '{key}'"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if etype in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        close = difflib.get_close_matches(str(value), [e.strip("' ") for e in expected.split(",")])
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{source}: {key} = {value!r} is not valid: expected {expected}{hint}"
    if not loc:
        return f"{source}: {msg}"
    return f"{source}: {key} = {value!r}: {msg}"


def _dedupe_union_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Collapse pydantic's per-union-member errors to the first per key."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for e in errors:
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        loc = tuple(p for p in loc if p not in ("int", "float", "str", "bool", "list[int]"))
        if loc in seen:
            continue
        seen.add(loc)
        out.append({**e, "loc": loc})
    return out


def validate_config(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a dict into a ``Config``; raise ``ConfigError`` with one clear line."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        errors = _dedupe_union_errors(e.errors())
        raise ConfigError(_format_error(errors[0], source)) from None
    return cfg


def check_paths(cfg: Config, source: str = "config") -> None:
    """Fail early when files named by the config do not exist."""
    if not Path(cfg.batches_dir).exists():
        raise ConfigError(
            f"{source}: batches_dir = {cfg.batches_dir!r}: no such dataset folder or .lmdb file "
            "(create one with `reidkit synth DIR` or point it at Market-1501)"
        )
    for key in ("pretrain_snapshot",):
        value = getattr(cfg, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"{source}: {key} = {value!r}: file not found")
    if isinstance(cfg.imagenet_pretrain, str) and not Path(cfg.imagenet_pretrain).is_file():
        raise ConfigError(
            f"{source}: imagenet_pretrain = {cfg.imagenet_pretrain!r}: file not found "
            "(use true for torchvision's weights, false for none, or a path to a .pth file)"
        )


def load_config(
    path: str | Path,
    overrides: list[str] | None = None,
    sub_working_dir: str | None = None,
    check_files: bool = True,
) -> Config:
    """Read, override, validate and (optionally) check the files of a params file."""
    data = apply_overrides(read_config_file(path), overrides or [])
    if sub_working_dir:
        data["sub_working_dir"] = sub_working_dir
    cfg = validate_config(data, source=str(path))
    if check_files:
        check_paths(cfg, source=str(path))
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as JSON (the exact settings a run used)."""
    atomic_write_text(path, json.dumps(cfg.to_dict(), indent=2) + "\n")
