"""Composition root of the feedback service."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.auth import Role
from services.common.client import ServiceClient, ServiceTokens
from services.common.clock import utc_now
from services.common.participants import participants_router
from services.common.settings import Settings
from services.feedback.api import router
from services.feedback.models import FeedbackAudit, FeedbackDepartment, FeedbackOutbox, FeedbackParticipant

__all__ = ["app_from_env", "create_app"]


async def _open_clients(app: FastAPI) -> None:
    # Outbound calls to evaluation and results (adjusted appeals); tests swap app.state.http for in-process apps.
    settings: Settings = app.state.settings
    app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    tokens = ServiceTokens(settings, sub="system:feedback", roles=(Role.HR_ADMIN.value,))
    app.state.services = ServiceClient.from_settings(settings, http=app.state.http, tokens=tokens)


async def _close_clients(app: FastAPI) -> None:
    await app.state.http.aclose()


def create_app(settings: Settings) -> FastAPI:
    app = create_service_app(
        service="feedback",
        settings=settings,
        description=(
            "Stage 4 of the cycle: release of calibrated results, acknowledgement, appeals routed to HR "
            "with deadlines, 1:1 records, and continuous feedback and kudos across departments."
        ),
        routers=[participants_router(FeedbackParticipant, FeedbackDepartment), router],
        on_startup=[_open_clients],
        on_shutdown=[_close_clients],
        outbox_model=FeedbackOutbox,
        audit_model=FeedbackAudit,
    )
    app.state.clock = utc_now
    return app


def app_from_env() -> FastAPI:
    return create_app(Settings())
