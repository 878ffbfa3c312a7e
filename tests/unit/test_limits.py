"""Input limits: the body-size middleware (401 and 413 before the body is read, 413 while it streams),
the memory an unauthenticated oversized body can cost, the token-bucket rate limiter and its 429."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from services.common.app import create_service_app, route_roles
from services.common.auth import Role, TokenVerifier, requires
from services.common.limits import BULK_ROUTES, BodySizeLimitMiddleware, RateLimiter
from services.common.settings import DEV_JWT_SECRET, Settings
from services.goals.app import create_app as create_goals_app
from services.tracking.app import create_app as create_tracking_app
from tests.support import auth

UNIT = Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-unit")

echo = APIRouter()


@echo.post("/echo")
async def echo_body(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


@echo.put("/v1/cycles/{cycle_id}/participants", dependencies=[requires(Role.HR_ADMIN)])
async def bulk_body(request: Request, cycle_id: str) -> dict[str, int]:
    return {"received": len(await request.body())}


@echo.post("/v1/ingest/metrics", dependencies=[requires(Role.DEPARTMENT_SYSTEM)])
async def small_body(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


def limited_app(max_bytes: int, bulk_max_bytes: int) -> FastAPI:
    app = FastAPI()
    app.include_router(echo)
    app.state.token_verifier = TokenVerifier(UNIT)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=max_bytes,
        bulk_max_bytes=bulk_max_bytes,
        route_roles=lambda: route_roles(app.routes),
    )
    return app


def hr() -> dict[str, str]:
    return auth(UNIT, "hr_admin", sub="hr")


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
    bulk = await client.put("/v1/cycles/c1/participants", content=b"x" * 4000, headers=hr())
    assert bulk.json() == {"received": 4000}
    assert (await client.put("/v1/cycles/c1/participants", content=b"x" * 5001, headers=hr())).status_code == 413
    system = auth(UNIT, "department_system", sub="crm", department_id="sales")
    assert (await client.post("/v1/ingest/metrics", content=b"x" * 4000, headers=system)).status_code == 413


async def test_credentials_are_checked_before_the_body_is_read(client: httpx.AsyncClient) -> None:
    """Issue 14: a body sent without a token to a protected route is a 401 before any of it is read;
    the bulk limit is granted only to a verified caller holding the route's role."""
    anonymous = await client.put("/v1/cycles/c1/participants", content=b"x" * 4000)
    assert anonymous.status_code == 401 and "body was not read" in anonymous.json()["detail"]
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    forged = await client.put(
        "/v1/cycles/c1/participants", content=b"x" * 4000, headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert forged.status_code == 401 and "invalid token" in forged.json()["detail"]
    employee = auth(UNIT, "employee", sub="e-1", employee_id="e-1")
    small = await client.put("/v1/cycles/c1/participants", content=b"x" * 1001, headers=employee)
    assert small.status_code == 413 and "limit for this endpoint is 1000 bytes" in small.json()["detail"]
    chunked = await client.put("/v1/cycles/c1/participants", content=chunks(6000), headers=hr())
    assert chunked.status_code == 413 and "5000 bytes" in chunked.json()["detail"]
    # routes without roles are untouched: the body is read and limited as before
    assert (await client.post("/echo", content=b"x" * 10)).json() == {"received": 10}


class StreamedBody:
    """An ASGI ``receive`` that produces a JSON body of many small objects in 64 KiB chunks, as a
    server streams it off the socket, and counts what the app pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0
        head = b'{"cycle_id":"c-1","departments":[],"participants":['
        self.chunk_size = 64 * 1024
        item = b'{"a":1},'
        self.first = head + item * ((self.chunk_size - len(head)) // len(item))
        self.item_chunk = item * (self.chunk_size // len(item))

    async def __call__(self) -> dict[str, Any]:
        if self.sent >= self.total:
            return {"type": "http.disconnect"}
        chunk = self.first if self.sent == 0 else self.item_chunk
        last = self.sent + len(chunk) >= self.total
        if last:
            chunk = chunk[: self.total - self.sent - 2] + b"]}"
        self.sent += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": not last}


async def call_measured(app: Any, method: str, path: str, body: StreamedBody, headers: dict[str, str]) -> Any:
    """(status, tracemalloc peak in bytes during the call) of one streamed request to ``app``."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), *raw_headers],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        await app(scope, body, send)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    return statuses[0], peak


BULK_BODY = 32 * 1024 * 1024
UNAUTHENTICATED_PEAK = 1024 * 1024
"""The promise (docs/security.md): a 32 MiB body sent without a token to a bulk route costs the
service less than 1 MiB of allocations, and none of it is read."""
SMALL_LIMIT_PEAK = 32 * 1024 * 1024
"""A caller with a valid token but not the route's role is held to the 1 MiB non-bulk limit: less
than 32 MiB of allocations (instead of the ~870 MB of parsing 32 MiB of small JSON objects)."""


async def test_an_unauthenticated_oversized_body_stays_under_the_memory_bound(tmp_path: Path) -> None:
    settings = UNIT.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db"})
    app = create_goals_app(settings)
    path = "/v1/cycles/c-1/participants"
    length = {"content-length": str(BULK_BODY)}
    async with app.router.lifespan_context(app):
        anonymous = StreamedBody(BULK_BODY)
        status, peak = await call_measured(app, "PUT", path, anonymous, length)
        assert status == 401
        assert anonymous.sent == 0, "the body was read"
        assert peak < UNAUTHENTICATED_PEAK, f"{peak / 2**20:.1f} MiB"

        chunked = StreamedBody(BULK_BODY)
        status, peak = await call_measured(app, "PUT", path, chunked, {"transfer-encoding": "chunked"})
        assert (status, chunked.sent) == (401, 0)

        employee = StreamedBody(BULK_BODY)
        status, peak = await call_measured(app, "PUT", path, employee, auth(settings, "employee", sub="e-1"))
        assert status == 413 and employee.sent <= settings.max_body_bytes + employee.chunk_size
        assert peak < SMALL_LIMIT_PEAK, f"{peak / 2**20:.1f} MiB"

        declared = StreamedBody(BULK_BODY)
        status, _ = await call_measured(app, "PUT", path, declared, {**length, **auth(settings, "employee")})
        assert (status, declared.sent) == (413, 0)


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
