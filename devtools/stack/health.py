"""Health checks of a running local stack, as ``tandem status`` reports them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from contracts.probe import ProbeInput, ProbeResult
from contracts.task_queues import REVIEW_CYCLE_TASK_QUEUE
from devtools.stack.kafka import admin_check
from devtools.stack.local import NO_DATABASE, redact_url
from services.common.db import create_engine

__all__ = ["check_stack"]

Result = tuple[str, bool, str]


async def _check_temporal(address: str) -> Result:
    from workflows.worker import connect

    try:
        await asyncio.wait_for(connect(address), timeout=5)
        return ("temporal", True, address)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return ("temporal", False, f"{address}: {exc}")


async def _check_worker(address: str, url: str) -> Result:
    """Run the probe workflow: proves the worker polls and runs activities."""
    from workflows.probe import StackProbeWorkflow
    from workflows.worker import connect

    try:
        client = await asyncio.wait_for(connect(address), timeout=5)
        nonce = uuid.uuid4().hex
        result: ProbeResult = await asyncio.wait_for(
            client.execute_workflow(
                StackProbeWorkflow.run,
                ProbeInput(nonce=nonce),
                id=f"tandem-status-probe-{nonce}",
                task_queue=REVIEW_CYCLE_TASK_QUEUE,
            ),
            timeout=15,
        )
        ok = result.nonce == nonce
        return ("worker", ok, f"{url}; probe workflow ran on {result.worker_identity}")
    except Exception as exc:  # noqa: BLE001
        return ("worker", False, f"probe workflow failed: {exc!r}")


async def _check_kafka(provider: str, servers: str) -> Result:
    ok = await admin_check(servers)
    return (f"kafka ({provider})", ok, servers)


async def _check_database(url: str, service: str) -> Result:
    engine = create_engine(url.replace("{service}", service))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return (f"database ({service})", True, redact_url(url.replace("{service}", service)))
    except Exception as exc:  # noqa: BLE001
        return (f"database ({service})", False, str(exc))
    finally:
        await engine.dispose()


async def _check_http(name: str, url: str) -> Result:
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            response = await client.get(f"{url}/healthz")
        return (name, response.status_code == 200, url)
    except httpx.HTTPError as exc:
        return (name, False, f"{url}: {exc!r}")


async def check_stack(data: dict[str, Any]) -> list[Result]:
    checks = [
        _check_temporal(data["temporal"]["address"]),
        _check_kafka(data["kafka"]["provider"], data["kafka"]["bootstrap_servers"]),
    ]
    services: dict[str, Any] = data.get("services", {})
    with_database = [name for name in services if name not in NO_DATABASE]
    db_targets = with_database if "{service}" in data["database_url"] else ["shared"]
    checks += [_check_database(data["database_url"], name) for name in db_targets]
    checks += [_check_http(f"service {name}", svc["url"]) for name, svc in services.items()]
    checks.append(_check_worker(data["temporal"]["address"], data["worker"]["url"]))
    return list(await asyncio.gather(*checks))
