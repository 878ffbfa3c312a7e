"""Composition root of the results service."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.clock import utc_now
from services.common.participants import participants_router
from services.common.settings import Settings
from services.results.api import router
from services.results.models import ResultsAudit, ResultsDepartment, ResultsOutbox, ResultsParticipant

__all__ = ["app_from_env", "create_app"]


def create_app(settings: Settings) -> FastAPI:
    app = create_service_app(
        service="results",
        settings=settings,
        description=(
            "Stage 5 of the cycle: bonus pools allocated exactly to the cent, promotion nominations, "
            "development plans, collaboration awards and the cross-department collaboration report, "
            "and ResultsPublished for payroll through a transactional outbox."
        ),
        routers=[participants_router(ResultsParticipant, ResultsDepartment), router],
        outbox_model=ResultsOutbox,
        audit_model=ResultsAudit,
    )
    app.state.clock = utc_now
    return app


def app_from_env() -> FastAPI:
    return create_app(Settings())
