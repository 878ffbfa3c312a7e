"""Reminders and escalations are recorded once per idempotency key, evented, and sent by the
configured sender (here a webhook receiver running in-process over real HTTP plumbing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select

from services.common.settings import Settings
from services.cycles.app import create_app
from services.cycles.models import CyclesOutbox
from tests.support import auth


@pytest.fixture
async def cycles(settings: Settings, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[dict]]]:
    received: list[dict] = []
    hooks = FastAPI()

    @hooks.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        received.append(await request.json())
        return {"ok": "yes"}

    outbound = httpx.AsyncClient(mounts={"http://hooks.test": httpx.ASGITransport(app=hooks)})
    app = create_app(
        settings.model_copy(update={"database_url": database_url, "notify_webhook_url": "http://hooks.test/hook"}),
        http_client=outbound,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://cycles") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client, received
    await outbound.aclose()


def request_body(key: str) -> dict:
    return {
        "idempotency_key": key,
        "cycle_id": "c1",
        "department_id": "sales",
        "stage": "goal_setting",
        "kind": "reminder",
        "recipients": ["E0001", "E0002"],
        "pending": 2,
        "deadline": datetime(2026, 3, 1, tzinfo=UTC).isoformat(),
        "message": "2 goal(s) due",
    }


async def test_same_key_records_and_sends_once(
    cycles: tuple[httpx.AsyncClient, list[dict]], settings: Settings
) -> None:
    client, received = cycles
    headers = {**auth(settings, "hr_admin", sub="system:worker"), "Idempotency-Key": "c1/sales/goal_setting/r-7d"}
    first = await client.post("/v1/notifications", json=request_body("c1/sales/goal_setting/r-7d"), headers=headers)
    again = await client.post("/v1/notifications", json=request_body("c1/sales/goal_setting/r-7d"), headers=headers)
    assert first.status_code == 200 and again.status_code == 200
    assert first.json()["created"] is True and again.json()["created"] is False
    assert first.json()["notification_id"] == again.json()["notification_id"]
    assert [r["idempotency_key"] for r in received] == ["c1/sales/goal_setting/r-7d"]

    ops = auth(settings, "ops")
    listed = (await client.get("/v1/notifications", params={"cycle_id": "c1"}, headers=ops)).json()
    assert len(listed) == 1 and listed[0]["delivery"] == {"record": "stored", "webhook": "sent"}
    counts = (await client.get("/v1/notifications/counts", params={"cycle_id": "c1"}, headers=ops)).json()
    assert counts == {"reminder": 1}

    async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        events = await session.scalar(
            select(func.count()).select_from(CyclesOutbox).where(CyclesOutbox.event_type == "NotificationRecorded")
        )
    assert events == 1


async def test_only_hr_admin_records_and_mismatched_key_is_rejected(
    cycles: tuple[httpx.AsyncClient, list[dict]], settings: Settings
) -> None:
    client, _ = cycles
    body = request_body("k-1")
    manager = await client.post("/v1/notifications", json=body, headers=auth(settings, "manager"))
    assert manager.status_code == 403
    mismatch = await client.post(
        "/v1/notifications", json=body, headers={**auth(settings, "hr_admin"), "Idempotency-Key": "other"}
    )
    assert mismatch.status_code == 422 and "differ" in mismatch.json()["detail"]
    employee_list = await client.get("/v1/notifications", params={"cycle_id": "c1"}, headers=auth(settings, "employee"))
    assert employee_list.status_code == 403


async def test_a_failed_delivery_is_kept_and_sent_by_the_retry_with_the_same_key(
    settings: Settings, database_url: str
) -> None:
    """At least once: the record survives a failing sender; the worker's retry delivers it, once."""
    received: list[tuple[str, dict]] = []
    hooks = FastAPI()
    failures = {"left": 1}

    @hooks.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("receiver down")
        received.append((request.headers["Idempotency-Key"], await request.json()))
        return {"ok": "yes"}

    outbound = httpx.AsyncClient(
        mounts={"http://hooks.test": httpx.ASGITransport(app=hooks, raise_app_exceptions=False)}
    )
    app = create_app(
        settings.model_copy(update={"database_url": database_url, "notify_webhook_url": "http://hooks.test/hook"}),
        http_client=outbound,
    )
    key = "c1/quality/goal_setting/escalation-hr"
    headers = {**auth(settings, "hr_admin", sub="system:worker"), "Idempotency-Key": key}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cycles") as client,
    ):
        first = await client.post("/v1/notifications", json=request_body(key), headers=headers)
        assert first.status_code == 503 and "not delivered via ['webhook']" in first.json()["detail"]
        listed = (
            await client.get("/v1/notifications", params={"cycle_id": "c1"}, headers=auth(settings, "ops"))
        ).json()
        assert len(listed) == 1 and listed[0]["delivery"]["webhook"].startswith("failed")
        retried = await client.post("/v1/notifications", json=request_body(key), headers=headers)
        again = await client.post("/v1/notifications", json=request_body(key), headers=headers)
        assert retried.status_code == 200 and retried.json()["created"] is False
        assert again.status_code == 200
        listed = (
            await client.get("/v1/notifications", params={"cycle_id": "c1"}, headers=auth(settings, "ops"))
        ).json()
    await outbound.aclose()
    assert [k for k, _ in received] == [key]
    assert received[0][1]["notification_id"] == listed[0]["notification_id"]
    assert listed[0]["delivery"] == {"record": "stored", "webhook": "sent"}
