"""Composition root of the cycles service."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.common.app import create_service_app
from services.common.settings import Settings
from services.cycles.api import router
from services.cycles.control import TemporalGateway
from services.cycles.models import CyclesAudit, CyclesOutbox
from services.cycles.notifications import build_senders
from services.cycles.notifications import router as notifications_router
from services.cycles.ops import router as ops_router
from services.cycles.org_import import OrgImportRejected

__all__ = ["DISTRIBUTION_TIMEOUT", "app_from_env", "create_app"]

DISTRIBUTION_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""Timeouts of the client that sends snapshots to the stage services."""


def create_app(settings: Settings, *, http_client: httpx.AsyncClient | None = None) -> FastAPI:
    """Build the app. ``http_client`` (to reach the stage services) is created in the lifespan unless
    given; a given client is used as is and not closed (tests mount in-process services on it)."""
    owned: list[httpx.AsyncClient] = []

    async def open_http(app: FastAPI) -> None:
        if http_client is not None:
            app.state.http = http_client
            return
        client = httpx.AsyncClient(timeout=DISTRIBUTION_TIMEOUT)
        owned.append(client)
        app.state.http = client

    async def open_notifications(app: FastAPI) -> None:
        app.state.temporal = TemporalGateway(settings)
        app.state.notification_senders = build_senders(settings, app.state.http)

    async def close_http(_app: FastAPI) -> None:
        while owned:
            await owned.pop().aclose()

    app = create_service_app(
        service="cycles",
        settings=settings,
        description=(
            "The front door of Tandem: the org directory and its import, cycle templates, and cycles "
            "(create in draft, start: freeze the org snapshot and distribute it to the stage services)."
        ),
        routers=[router, notifications_router, ops_router],
        on_startup=[open_http, open_notifications],
        on_shutdown=[close_http],
        outbox_model=CyclesOutbox,
        audit_model=CyclesAudit,
    )

    @app.exception_handler(OrgImportRejected)
    async def _import_rejected(_request: Request, exc: OrgImportRejected) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": str(exc),
                "errors": [
                    {
                        "file": issue.file,
                        "row": issue.row,
                        "column": issue.column,
                        "value": issue.value,
                        "message": issue.message,
                    }
                    for issue in exc.issues
                ],
            },
        )

    return app


def app_from_env() -> FastAPI:
    return create_app(Settings())
