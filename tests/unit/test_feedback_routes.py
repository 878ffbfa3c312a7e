"""Every feedback endpoint declares its roles and has an OpenAPI summary; the schema renders."""

from __future__ import annotations

from fastapi.routing import APIRoute

from services.common.settings import DEV_JWT_SECRET, Settings
from services.feedback.api import router
from services.feedback.app import create_app


def _allowed_roles(route: APIRoute) -> set[str]:
    roles: set[str] = set()
    for dependant in route.dependant.dependencies:
        roles |= set(getattr(dependant.call, "allowed_roles", ()))
    return roles


def test_every_route_declares_roles_and_a_summary() -> None:
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 10
    undeclared = [r.path for r in routes if not _allowed_roles(r)]
    assert undeclared == []
    assert [r.path for r in routes if not r.summary] == []


def test_openapi_lists_every_operation_with_a_summary() -> None:
    app = create_app(Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-unit"))
    operations = [op for item in app.openapi()["paths"].values() for op in item.values()]
    assert len(operations) > len(router.routes)  # plus participants and health
    assert all(op.get("summary") for op in operations)
