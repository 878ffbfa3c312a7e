"""Readers of released schema versions: a model as it was, derived from the current one.

When a contract gains a field, the schema evolution rules (``contracts.compat``) want a new version
and the old model kept as the reader of the old one. ``reader`` builds that old model from the
current one without copying it: the same fields, configuration and documentation, minus the fields
added since (``drop``), with nested models swapped for their own readers (``nested``). Readers
describe the old shape (their JSON Schema is the released one); the services accept the current
model, which reads everything the old one did (the new fields have defaults).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

__all__ = ["reader"]


def reader(
    model: type[BaseModel],
    name: str,
    *,
    drop: Iterable[str] = (),
    nested: Mapping[str, type[BaseModel]] | None = None,
) -> type[BaseModel]:
    """``model`` without the fields in ``drop``, its fields in ``nested`` typed as the given readers."""
    dropped = set(drop)
    unknown = dropped - set(model.model_fields)
    assert not unknown, f"{model.__name__} has no field(s) {sorted(unknown)}"
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if field_name in dropped:
            continue
        swapped = (nested or {}).get(field_name)
        if swapped is None:
            fields[field_name] = (info.annotation, info)
            continue
        kept: dict[str, Any] = {
            k: v for k, v in info._attributes_set.items() if k not in ("annotation", "default_factory")
        }
        fields[field_name] = (swapped, FieldInfo(annotation=swapped, default_factory=swapped, **kept))
    return create_model(
        name,
        __config__=ConfigDict(**model.model_config),
        __doc__=model.__doc__,
        __module__=model.__module__,
        **fields,
    )
