"""Composition root of the evaluation service."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.participants import participants_router
from services.common.settings import Settings
from services.evaluation.api import router
from services.evaluation.models import EvaluationAudit, EvaluationDepartment, EvaluationOutbox, EvaluationParticipant

__all__ = ["app_from_env", "create_app"]


def create_app(settings: Settings) -> FastAPI:
    return create_service_app(
        service="evaluation",
        settings=settings,
        description=(
            "Stage 3 of a review cycle: KPI attainment and goal scores, self/manager/peer/cross-department "
            "reviews with anonymity, department-to-department collaboration ratings, the final score from a "
            "safe configurable formula, calibration with an audit trail, what-if re-scoring and final results."
        ),
        routers=[participants_router(EvaluationParticipant, EvaluationDepartment), router],
        outbox_model=EvaluationOutbox,
        audit_model=EvaluationAudit,
    )


def app_from_env() -> FastAPI:
    return create_app(Settings())
