"""Composition root of the cycles service."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.settings import Settings
from services.cycles.api import router

__all__ = ["app_from_env", "create_app"]


def create_app(settings: Settings) -> FastAPI:
    return create_service_app(
        service="cycles",
        settings=settings,
        description="Org directory, cycle templates, cycle start/pause/cancel and ops views.",
        routers=[router],
    )


def app_from_env() -> FastAPI:
    return create_app(Settings())
