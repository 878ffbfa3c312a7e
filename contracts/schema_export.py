"""Generate the checked-in JSON Schemas and the AsyncAPI document in ``contracts/schemas/``.

Run ``python -m contracts.schema_export`` after changing a contract; a test
fails while the checked-in files are stale. ``schemas/released/`` holds the schemas of the last
release, which ``contracts.compat`` compares these against (``python -m contracts.compat``).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from contracts.domain_events import TypedDomainEvent
from contracts.events import DeadLetter, DomainEvent, MetricEvent

__all__ = ["SCHEMA_DIR", "SCHEMA_MODELS", "render_model_schemas", "render_schemas", "schema_mode", "write_schemas"]

SCHEMA_DIR = Path(__file__).parent / "schemas"


def _discover() -> dict[str, type[BaseModel]]:
    """File stem -> model: the events here, plus each contracts module's ``SCHEMA_EXPORTS``."""
    import contracts

    models: dict[str, type[BaseModel]] = {
        "metric_event.v1": MetricEvent,
        "dead_letter.v1": DeadLetter,
        "domain_event.v1": DomainEvent,
    }
    for info in pkgutil.iter_modules(contracts.__path__):
        module = importlib.import_module(f"contracts.{info.name}")
        exports: dict[str, type[BaseModel]] = getattr(module, "SCHEMA_EXPORTS", {})
        models.update(exports)
    return models


SCHEMA_MODELS: dict[str, type[BaseModel]] = _discover()
"""Every contract that crosses a process boundary. A module adds its own with ``SCHEMA_EXPORTS``."""


def schema_mode(model: type[BaseModel]) -> JsonSchemaMode:
    """Domain events are described as written (serialization: defaults are on the wire, so required);
    everything else as accepted (validation)."""
    return "serialization" if issubclass(model, TypedDomainEvent) else "validation"


def render_model_schemas() -> dict[str, str]:
    """File name -> JSON Schema text of every model, deterministic (sorted keys, trailing newline)."""
    return {
        f"{stem}.json": json.dumps(model.model_json_schema(mode=schema_mode(model)), indent=2, sort_keys=True) + "\n"
        for stem, model in SCHEMA_MODELS.items()
    }


def render_schemas() -> dict[str, str]:
    """Every checked-in file: the models' JSON Schemas and the AsyncAPI document built from them."""
    from contracts.asyncapi import ASYNCAPI_FILE, render_asyncapi  # it imports the models this module finds

    return {**render_model_schemas(), ASYNCAPI_FILE: render_asyncapi()}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        sys.stdout.write(f"wrote {path}\n")
