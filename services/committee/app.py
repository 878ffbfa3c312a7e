"""Composition root of the committee service."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.committee.api import calibration, committees, decisions, growth, suggestions
from services.committee.models import CommitteeAudit, CommitteeDepartment, CommitteeOutbox, CommitteeParticipant
from services.committee.temporal import CommitteeWorkflows
from services.common.app import create_service_app
from services.common.auth import Role
from services.common.client import ServiceClient, ServiceTokens
from services.common.participants import participants_router
from services.common.settings import Settings

__all__ = ["app_from_env", "create_app"]


def create_app(
    settings: Settings,
    *,
    http_client: httpx.AsyncClient | None = None,
    workflows: CommitteeWorkflows | None = None,
) -> FastAPI:
    """Build the app. ``http_client`` (to reach the other services) is created in the lifespan unless
    given; a given client is used as is and not closed (tests mount in-process services on it).
    ``workflows`` (the door to Temporal) defaults to one on ``TANDEM_TEMPORAL_ADDRESS`` when
    ``TANDEM_CYCLE_WORKFLOWS`` is on, else none (API-only)."""
    owned: list[httpx.AsyncClient] = []

    async def open_clients(app: FastAPI) -> None:
        if http_client is None:
            owned.append(httpx.AsyncClient(timeout=15.0))
        app.state.http = http_client or owned[0]
        # Reads the calibration reports and the SLA views, which need hr_admin or ops; each call
        # carries the person it is made for (the secretary, or the caller).
        tokens = ServiceTokens(settings, sub="system:committee", roles=(Role.HR_ADMIN.value, Role.OPS.value))
        app.state.services = ServiceClient.from_settings(settings, http=app.state.http, tokens=tokens)
        if workflows is not None or not settings.cycle_workflows:
            app.state.workflows = workflows
        else:
            app.state.workflows = CommitteeWorkflows(
                address=settings.temporal_address, namespace=settings.temporal_namespace
            )

    async def close_clients(_app: FastAPI) -> None:
        while owned:
            await owned.pop().aclose()

    return create_service_app(
        service="committee",
        settings=settings,
        description=(
            "The cross-department performance committee: members by function (HR, business, finance, IT), a "
            "meeting cadence on a Temporal Schedule, agendas generated from the cycle's data, minutes, decisions "
            "tracked to done, calibration sessions, improvement suggestions that cite their data, and growth paths "
            "(career frameworks, readiness, potential and the 9-box) across cycles."
        ),
        routers=[
            participants_router(CommitteeParticipant, CommitteeDepartment),
            committees,
            decisions,
            calibration,
            suggestions,
            growth,
        ],
        outbox_model=CommitteeOutbox,
        audit_model=CommitteeAudit,
        on_startup=[open_clients],
        on_shutdown=[close_clients],
    )


def app_from_env() -> FastAPI:
    return create_app(Settings())
