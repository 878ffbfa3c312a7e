"""Helpers for API tests: a service app over httpx against a real database, and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.common.auth import mint_token
from services.common.settings import Settings

__all__ = ["api_client", "auth"]


@asynccontextmanager
async def api_client(
    create_app: Callable[[Settings], FastAPI], settings: Settings, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``create_app`` with its lifespan (migrations included) and yield an httpx client."""
    app = create_app(settings.model_copy(update={"database_url": database_url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def auth(
    settings: Settings,
    *roles: str,
    sub: str = "tester",
    employee_id: str | None = None,
    department_id: str | None = None,
) -> dict[str, str]:
    """Bearer headers for a token with ``roles`` and optional scoping claims."""
    token = mint_token(
        settings, sub=sub, roles=list(roles), employee_id=employee_id, department_id=department_id
    )
    return {"Authorization": f"Bearer {token}"}
