"""Input limits: the body-size middleware (413), the token-bucket rate limiter and its 429 on ingest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from services.common.app import create_service_app
from services.common.limits import BULK_ROUTES, BodySizeLimitMiddleware, RateLimiter
from services.common.settings import Settings
from services.tracking.app import create_app as create_tracking_app
from tests.support import auth

echo = APIRouter()


@echo.post("/echo")
async def echo_body(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


@echo.put("/v1/cycles/{cycle_id}/participants")
async def bulk_body(request: Request, cycle_id: str) -> dict[str, int]:
    return {"received": len(await request.body())}


@echo.post("/v1/ingest/metrics")
async def small_body(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


def limited_app(max_bytes: int, bulk_max_bytes: int) -> FastAPI:
    app = FastAPI()
    app.include_router(echo)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes, bulk_max_bytes=bulk_max_bytes)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app(1000, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_a_body_within_the_limit_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"x" * 1000)
    assert response.status_code == 200
    assert response.json() == {"received": 1000}


async def test_a_declared_content_length_over_the_limit_is_413_before_reading(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "request body is 1001 bytes; the limit for this endpoint is 1000 bytes: send smaller batches"
    )


async def test_a_streamed_body_without_length_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=chunks(5000))
    assert response.status_code == 413
    assert "the limit for this endpoint is 1000 bytes" in response.json()["detail"]
    small = await client.post("/echo", content=chunks(900))
    assert small.json() == {"received": 900}


async def test_a_body_read_outside_any_route_still_gets_413() -> None:
    async def raw_app(scope: dict[str, object], receive: object, send: object) -> None:
        while True:  # reads the whole body itself, like a middleware that buffers it
            message = await receive()  # type: ignore[operator]
            if not message.get("more_body"):
                break
        raise AssertionError("unreachable: the body is over the limit")

    transport = httpx.ASGITransport(app=BodySizeLimitMiddleware(raw_app, max_bytes=10))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/anything", content=chunks(50, size=5))
    assert response.status_code == 413


async def test_bulk_pushes_get_the_larger_limit_and_ingest_does_not(client: httpx.AsyncClient) -> None:
    bulk = await client.put("/v1/cycles/c1/participants", content=b"x" * 4000)
    assert bulk.json() == {"received": 4000}
    assert (await client.put("/v1/cycles/c1/participants", content=b"x" * 5001)).status_code == 413
    assert (await client.post("/v1/ingest/metrics", content=b"x" * 4000)).status_code == 413


def test_bulk_routes_cover_the_whole_cycle_pushes_only() -> None:
    middleware = BodySizeLimitMiddleware(limited_app(1, 1), max_bytes=10, bulk_max_bytes=100)
    assert middleware.limit_for("PUT", "/v1/cycles/c-1/participants") == 100
    assert middleware.limit_for("PUT", "/v1/cycles/c-1/actuals") == 100
    assert middleware.limit_for("POST", "/v1/org/import") == 100
    assert middleware.limit_for("POST", "/v1/cycles/c-1/participants") == 10
    assert middleware.limit_for("PUT", "/v1/cycles/c-1/goals/g-1") == 10
    assert middleware.limit_for("POST", "/v1/ingest/metrics") == 10
    assert {method for method, _ in BULK_ROUTES} == {"PUT", "POST"}


async def test_every_service_app_refuses_oversized_bodies(settings: Settings, tmp_path: Path) -> None:
    app_settings = settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db", "max_body_bytes": 2048}
    )
    app = create_service_app(service="limitstest", settings=app_settings, description="limits", routers=[echo])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.post("/echo", content=b"{}" * 1024)).status_code == 200
            response = await http.post("/echo", content=b"{}" * 1025)
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_admits_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, burst=50, clock=clock)
    assert limiter.acquire("sales", 50) == 0.0
    assert limiter.acquire("sales", 10) == pytest.approx(1.0)  # 10 tokens at 10/s
    assert limiter.acquire("finance", 50) == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.acquire("sales", 10) == pytest.approx(0.5)  # 5 refilled, a refusal takes nothing
    clock.now += 0.5
    assert limiter.acquire("sales", 10) == 0.0
    clock.now += 3600
    assert limiter.acquire("sales", 50) == 0.0  # refill stops at the burst
    assert limiter.acquire("sales", 1) == pytest.approx(0.1)


def test_a_cost_above_the_burst_is_charged_as_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=100, burst=20, clock=clock)
    assert limiter.acquire("sales", 1000) == 0.0
    assert limiter.acquire("sales", 1000) == pytest.approx(0.2)


def test_the_limiter_keeps_at_most_max_keys_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1, burst=10, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.acquire(f"dept-{i}", 5)
        clock.now += 0.001
    assert len(limiter._buckets) <= 100
    with pytest.raises(ValueError, match="rate must be > 0"):
        RateLimiter(rate=0, burst=1)


def metric(department_id: str, value: object = 1.0) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "source": "crm",
        "department_id": department_id,
        "metric": "sales.revenue",
        "value": value,
        "unit": "EUR",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def test_tracking_ingest_is_rate_limited_per_department(settings: Settings, tmp_path: Path) -> None:
    app = create_tracking_app(
        settings.model_copy(
            update={
                "database_url": f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db",
                "ingest_rate_per_second": 1.0,
                "ingest_rate_burst": 10,
            }
        ),
        run_consumer=False,
    )
    sales = auth(settings, "department_system", sub="crm", department_id="sales")
    finance = auth(settings, "department_system", sub="erp", department_id="finance")
    # Invalid values: nothing reaches Kafka (422), yet every event is charged to the department.
    batch = {"events": [metric("sales", "not-a-number") for _ in range(10)]}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = await http.post("/v1/ingest/metrics", json=batch, headers=sales)
            limited = await http.post("/v1/ingest/metrics", json=batch, headers=sales)
            other = await http.post(
                "/v1/ingest/metrics",
                json={"events": [metric("finance", "nan-text")]},
                headers=finance,
            )
    assert first.status_code == 422, first.text
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "10"
    assert limited.json()["detail"] == (
        "department 'sales' is over its ingest rate of 1 events/s (burst 10); retry the batch in 10s"
    )
    assert other.status_code == 422  # another department has its own bucket
