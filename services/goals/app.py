"""Composition root of the goals service."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.auth import Role
from services.common.client import ServiceClient, ServiceTokens
from services.common.participants import participants_router
from services.common.settings import Settings
from services.goals.api import router
from services.goals.cycle_period import CyclesPeriodSource
from services.goals.models import GoalsAudit, GoalsDepartment, GoalsOutbox, GoalsParticipant

__all__ = ["app_from_env", "create_app"]


def create_app(settings: Settings) -> FastAPI:
    async def open_clients(app: FastAPI) -> None:
        app.state.http = httpx.AsyncClient(timeout=10.0)
        tokens = ServiceTokens(settings, sub="system:goals", roles=(Role.HR_ADMIN.value,))
        app.state.services = ServiceClient.from_settings(settings, http=app.state.http, tokens=tokens)
        app.state.period_source = CyclesPeriodSource(client=app.state.services)

    async def close_clients(app: FastAPI) -> None:
        await app.state.http.aclose()

    return create_service_app(
        service="goals",
        settings=settings,
        description=(
            "Goal setting: strategy objectives, company KPIs, department KPIs and individual goals, "
            "with weights, alignment, bulk assignment, the approval chain, the goal tree and exports."
        ),
        routers=[participants_router(GoalsParticipant, GoalsDepartment), router],
        outbox_model=GoalsOutbox,
        audit_model=GoalsAudit,
        on_startup=[open_clients],
        on_shutdown=[close_clients],
    )


def app_from_env() -> FastAPI:
    return create_app(Settings())
