"""``Section``: the base of every params.json section (frozen, unknown keys refused)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

FROZEN = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field's type admits true / false (``bool``, ``Any``, or a union with bool)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_accepts_bool(a) for a in typing.get_args(annotation))


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable, and a
    number key given true / false is an error (JSON's true would otherwise count as 1)."""

    model_config = FROZEN

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and not _accepts_bool(field.annotation):
                raise ValueError(f"expected a number, not {str(v).lower()}")
        return v
