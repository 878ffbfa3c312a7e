"""Generate the checked-in JSON Schemas in ``contracts/schemas/``.

Run ``python -m contracts.schema_export`` after changing a contract; a test
fails while the checked-in files are stale.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

from pydantic import BaseModel

from contracts.events import DeadLetter, DomainEvent, MetricEvent

__all__ = ["SCHEMA_DIR", "SCHEMA_MODELS", "render_schemas", "write_schemas"]

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


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, deterministic (sorted keys, trailing newline)."""
    return {
        f"{stem}.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for stem, model in SCHEMA_MODELS.items()
    }


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
