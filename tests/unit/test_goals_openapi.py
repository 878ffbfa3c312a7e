"""Every goals endpoint has an OpenAPI summary and declares its roles with requires() (= x-roles)."""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.common.audit_api import audit_router
from services.common.participants import participants_router
from services.common.settings import DEV_JWT_SECRET, Settings
from services.goals.api import router
from services.goals.app import create_app
from services.goals.models import GoalsAudit, GoalsDepartment, GoalsParticipant


def _allowed_roles(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for sub in dependant.dependencies:
        roles: Any = getattr(sub.call, "allowed_roles", None)
        if roles:
            found |= set(roles)
        found |= _allowed_roles(sub)
    return found


def test_every_route_has_a_summary_and_declared_roles() -> None:
    mounted = [
        *participants_router(GoalsParticipant, GoalsDepartment).routes,
        *router.routes,
        *audit_router(GoalsAudit).routes,
    ]
    routes = [r for r in mounted if isinstance(r, APIRoute)]
    assert len(routes) >= 20
    for route in routes:
        assert route.summary, f"{route.path} has no summary"
        roles = _allowed_roles(route.dependant)
        assert roles, f"{route.methods} {route.path} declares no roles"
        declared = (route.openapi_extra or {}).get("x-roles")
        if declared is not None:
            assert set(declared) == roles, f"{route.path}: x-roles {declared} != requires {sorted(roles)}"
    assert "department_system" not in set().union(*(_allowed_roles(r.dependant) for r in routes))
    spec = create_app(Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-unit")).openapi()
    operations = [op for path, ops in spec["paths"].items() if path.startswith("/v1/") for op in ops.values()]
    assert len(operations) == len(routes) and all(op.get("summary") for op in operations)
