"""The goals service reads a cycle's period from the cycles service when it was never set."""

from __future__ import annotations

from datetime import date

import httpx

from services.common.client import ServiceClient, ServiceTokens
from services.common.settings import DEV_JWT_SECRET, Settings
from services.goals.cycle_period import CyclesPeriodSource

SETTINGS = Settings(env="test", jwt_secret=DEV_JWT_SECRET + "-unit", cycles_url="http://cycles.test/")


def _source(handler: httpx.MockTransport) -> tuple[CyclesPeriodSource, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=handler)
    tokens = ServiceTokens(SETTINGS, sub="system:goals", roles=("hr_admin",))
    return CyclesPeriodSource(client=ServiceClient.from_settings(SETTINGS, http=http, tokens=tokens)), http


async def test_reads_the_period_of_the_cycle() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"cycle_id": "c 1", "period_start": "2026-01-01", "period_end": "2026-12-31"})

    source, http = _source(httpx.MockTransport(answer))
    async with http:
        assert await source("c 1") == (date(2026, 1, 1), date(2026, 12, 31))
    assert str(seen[0].url) == "http://cycles.test/v1/cycles/c%201"
    assert seen[0].headers["Authorization"].startswith("Bearer ")


async def test_unknown_when_the_cycle_is_missing_malformed_or_unreachable() -> None:
    def missing(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "no cycle"})

    def malformed(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"period_start": "soon"})

    def not_json(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy page</html>")

    def failing(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="down")

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler in (missing, malformed, not_json, failing, unreachable):
        source, http = _source(httpx.MockTransport(handler))
        async with http:
            assert await source("c1") is None
