"""Every operation of every service states who may call it (``x-roles`` in its OpenAPI document)."""

from __future__ import annotations

import importlib

import pytest

from services.common.auth import Role
from services.common.settings import Settings

SERVICES = ["cycles", "goals", "tracking", "evaluation", "feedback", "results", "committee"]
KNOWN = {r.value for r in Role} | {"public"}


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_declares_its_roles(service: str, settings: Settings) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app(settings)
    spec = app.openapi()
    undeclared = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if not operation.get("x-roles")
    ]
    assert not undeclared, f"{service}: operations without x-roles: {undeclared}"
    unknown = {
        role
        for operations in spec["paths"].values()
        for operation in operations.values()
        for role in operation["x-roles"]
    } - KNOWN
    assert not unknown, f"{service}: unknown roles {unknown}"
    assert spec["components"]["schemas"]["HTTPValidationError"]["title"] == "Problem"
