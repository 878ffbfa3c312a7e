"""A cycle for the sample organisation runs all five stages on the real servers.

Every service and the worker run as processes (``running_stack``) on the session's
Temporal dev server, Kafka broker and PostgreSQL. People act through the APIs,
metrics stream from the simulator, and results are published at the end. Midway,
the worker is killed with SIGKILL and restarted, and the Temporal dev server (with
its persistent database file) is restarted too: the cycle carries on, and every
side effect (notifications, allocations, publication) happens exactly once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from contracts.cycle import Stage
from contracts.topics import CYCLE_EVENTS
from devtools.demo.scenario import DEMO_DEPARTMENTS, Scenario
from devtools.stack.local import LocalStack
from services.common.auth import mint_token
from services.common.settings import Settings


async def published_events(bootstrap: str, cycle_id: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        CYCLE_EVENTS,
        bootstrap_servers=bootstrap,
        group_id=f"e2e-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            records = [r for rs in batch.values() for r in rs]
            idle = 0 if records else idle + 1
            for record in records:
                event = json.loads(record.value)
                if event.get("cycle_id") == cycle_id:
                    events.append(event)
    finally:
        await consumer.stop()
    return events


async def audit_entries(urls: dict[str, str], headers: dict[str, str], cycle_id: str) -> dict[str, list[Any]]:
    """Every audit entry of each service that mentions the cycle (following the pages)."""
    found: dict[str, list[Any]] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for service in ("cycles", "goals", "evaluation", "results"):
            entries: list[Any] = []
            offset = 0
            while True:
                page = (
                    await http.get(
                        f"{urls[service]}/v1/audit", params={"limit": 500, "offset": offset}, headers=headers
                    )
                ).json()
                entries += [e for e in page["items"] if cycle_id in json.dumps(e)]
                offset += len(page["items"])
                if not page["has_more"]:
                    break
            found[service] = entries
    return found


async def test_sample_org_cycle_survives_worker_kill_and_temporal_restart(
    running_stack: LocalStack, temporal_server: Any, kafka_broker: Any, settings: Settings
) -> None:
    urls = {name: running_stack.url_of(name) for name in running_stack.config.service_ports}
    scenario = Scenario(
        settings=settings,
        urls=urls,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_idempotence=kafka_broker.supports_idempotence,
        day_seconds=3.0,
        log=lambda message: print(f"[scenario] {message}", flush=True),
    )
    crashes: list[str] = []

    async def restart_temporal() -> None:
        temporal_server.kill()
        await temporal_server.start()
        crashes.append("temporal restarted")

    async def kill_worker() -> None:
        await asyncio.sleep(2)
        await running_stack.restart("worker", kill=True)
        crashes.append("worker killed and restarted")

    scenario.hooks[Stage.TRACKING] = restart_temporal
    scenario.hooks[Stage.EVALUATION] = kill_worker
    report = await scenario.run()
    print(f"[scenario] report: {report}")

    assert crashes == ["temporal restarted", "worker killed and restarted"]
    status = report.final_status
    assert status["stage"] == "closed"
    assert status["stages_done"] == [s.value for s in Stage if s is not Stage.CLOSED]

    # The laggard department missed goal setting and evaluation: reminded, then escalated.
    notes = report.notifications
    assert notes.get("reminder", 0) >= 2
    assert notes.get("escalation_head", 0) >= 2 and notes.get("escalation_hr", 0) >= 2
    # The performance committee met on the cycle's data and decided one tracked action.
    assert report.committee["agenda"] and report.committee["decision"]["owner"], report.committee
    # The strategy roll-up moved during tracking, while metrics arrived (not at the stage's end).
    assert len(report.rollup) >= 2 and report.rollup[-1] > report.rollup[0], report.rollup
    # The silent department's KPIs went stale during tracking.
    assert notes.get("stale_kpi_reminder", 0) >= 1

    # Money: each department's pool was allocated once, exactly to the cent.
    assert set(report.allocations) == set(DEMO_DEPARTMENTS)
    for department, money in report.allocations.items():
        assert money["allocated"] + money["unallocated"] == money["pool"], department

    # The collaboration report page shows the department heatmap from the heads' ratings.
    hr = {"Authorization": f"Bearer {mint_token(settings, sub='hr', roles=['hr_admin', 'ops'])}"}
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(f"{urls['results']}/v1/cycles/{report.cycle_id}/collaboration-report.html", headers=hr)
        ingestion = (await http.get(f"{urls['tracking']}/v1/ops/ingestion", headers=hr)).json()
    assert page.status_code == 200, page.text[:300]
    assert 'class="heatmap"' in page.text and "procurement" in page.text.lower()
    # The audit log recorded the cycle's changes, with who did them and the request id.
    audit = await audit_entries(urls, hr, report.cycle_id)
    assert any(e["action"] == "update" and (e.get("after") or {}).get("status") == "active" for e in audit["cycles"])
    approvals = [e for e in audit["goals"] if (e.get("after") or {}).get("status") == "approved"]
    assert len(approvals) >= report.goals_approved
    assert all(e["actor"] and e["request_id"] for e in approvals)
    assert any(e["entity"] == "evaluation_result" for e in audit["evaluation"])
    assert any(e["entity"] == "results_allocation" and e["action"] == "create" for e in audit["results"])
    assert any(e["actor"] == "system:worker" for e in audit["goals"])  # the freeze, driven by the workflow

    # Malformed simulator events were dead-lettered with readable reasons; the consumer kept going.
    assert ingestion["dead_letters"] > 0 and ingestion["latest_dead_letters"][0]["reason"]
    assert ingestion["events_stored"] > 0

    events = await published_events(kafka_broker.bootstrap_servers, report.cycle_id)
    by_type: dict[str, set[str]] = {}
    for event in events:
        by_type.setdefault(event["type"], set()).add(event["event_id"])
    assert len(by_type.get("ResultsPublished", set())) >= 1
    publications = {e["payload"].get("publication_id") for e in events if e["type"] == "ResultsPublished"}
    assert len(publications) == 1, "results were published exactly once"
    # The cycles service's own record of the cycle says closed too (the worker's last action).
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(60):
            cycle = (await http.get(f"{urls['cycles']}/v1/cycles/{report.cycle_id}", headers=hr)).json()
            if cycle["status"] == "closed":
                break
            await asyncio.sleep(0.5)
    assert cycle["status"] == "closed"

    recorded = [e for e in events if e["type"] == "NotificationRecorded"]
    keys = [e["payload"]["idempotency_key"] for e in recorded]
    assert len(set(keys)) == sum(notes.values()), "every recorded notification is one key, sent once"
