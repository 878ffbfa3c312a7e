"""Helpers for API tests: a service app over httpx against a real database, and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from temporalio import activity

from contracts.handoffs import HANDOFF_RESULTS, CycleRef, Handoff
from services.common.auth import mint_token
from services.common.settings import Settings

__all__ = ["api_client", "auth", "handoff_fakes"]


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
    token = mint_token(settings, sub=sub, roles=list(roles), employee_id=employee_id, department_id=department_id)
    return {"Authorization": f"Bearer {token}"}


def handoff_fakes(
    record: Callable[[str, CycleRef], None], answer: Callable[[str, CycleRef], Handoff | None] | None = None
) -> list[Any]:
    """Test doubles for every typed handoff activity: each records its call and answers ``answer(name,
    ref)`` (or a plain "done" of the handoff's own result type)."""

    def fake(name: str, result_type: type[Handoff]) -> Any:
        @activity.defn(name=name)
        async def run(ref: CycleRef) -> Handoff:
            record(name, ref)
            given = answer(name, ref) if answer is not None else None
            return given if given is not None else result_type()

        return run

    return [fake(name, result_type) for name, result_type in HANDOFF_RESULTS.items()]
