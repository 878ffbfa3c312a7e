"""Stale-data and check-in reminders reach named people, by e-mail, through a real SMTP conversation.

The path is the real one end to end: the org import names data stewards; starting the cycle freezes
them (with the stewards and heads of departments outside the cycle) and sends them to tracking;
tracking's pending report names who answers for each stale KPI; the real ``DepartmentCycleWorkflow``
(time-skipping server, real ``check_pending`` / ``send_notification`` activities) asks
``contracts.timing.decide`` and posts to cycles' ``/v1/notifications``; cycles resolves the people
and its ``SmtpSender`` talks SMTP to a recording server on localhost.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from temporalio.worker import Worker

from contracts.cycle import DeadlinePolicy, Stage
from contracts.evaluation import evaluation_config
from contracts.goals import GoalLevel, KpiCatalog, KpiDefinition
from contracts.workflow_io import DepartmentCycleInput
from services.common.auth import Principal
from services.common.client import ServiceClient, ServiceTokens
from services.common.settings import Settings
from services.cycles.app import create_app as cycles_app
from services.cycles.service import sample_template
from services.goals.app import create_app as goals_app
from services.tracking import service as tracking_service
from services.tracking.app import create_app as tracking_app
from services.tracking.schemas import CheckInCreate
from services.tracking.service.data_owners import load_data_owners
from tests.integration.test_cycles_org_import import SAMPLE
from tests.integration.test_notification_smtp import RecordingSmtpServer
from tests.integration.test_tracking_data_owners import definition
from tests.support import auth
from workflows.activities import CycleActivities
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.handoffs import HandoffActivities

STEWARDS = {"sales-domestic": "E0160", "finance": "E0204"}
"""Named data stewards: sales-domestic's sits in sales; finance takes no part in the cycle."""
EMAIL = {
    "E0160": "mateo.rossi@northwind.example",  # steward of sales-domestic
    "E0204": "katrin.larsen@northwind.example",  # steward of finance (outside the cycle)
    "E0236": "laura.silva@northwind.example",  # head of IT (outside the cycle, no steward)
    "E0155": "anna.nguyen@northwind.example",  # head of sales (the cycle's department)
}
SERVICES = ("cycles", "goals", "tracking", "evaluation", "feedback", "results", "committee")


def org_with_stewards() -> bytes:
    document = json.loads((SAMPLE / "org.json").read_text())
    for department in document["departments"]:
        if department["department_id"] in STEWARDS:
            department["data_steward_id"] = STEWARDS[department["department_id"]]
    return json.dumps(document).encode()


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    """Cycles and tracking in process (``http://cycles.test``, ``http://tracking.test``)."""
    tracking_app: FastAPI
    services: ServiceClient
    """The worker's client, on ``http``."""
    smtp: RecordingSmtpServer
    apps: dict[str, FastAPI] = field(default_factory=dict)
    """The apps running in process, by service."""
    cycle_id: str = ""

    def hr(self) -> dict[str, str]:
        return auth(self.settings, "hr_admin", sub="hr-alice")

    async def call(self, method: str, service: str, path: str, **options: Any) -> httpx.Response:
        return await self.http.request(method, f"http://{service}.test{path}", **options)

    def recipients(self) -> list[set[str]]:
        """Per message received, the addresses it was sent to."""
        return [
            {str(line).split("<", 1)[1].split(">", 1)[0] for line in message["rcpt"]}  # type: ignore[attr-defined]
            for message in self.smtp.messages
        ]

    async def start_cycle(self, department_ids: list[str], **template: Any) -> str:
        hr = self.hr()
        imported = await self.call(
            "POST",
            "cycles",
            "/v1/org/import",
            content=org_with_stewards(),
            headers={**hr, "Content-Type": "application/json"},
        )
        assert imported.status_code == 200, imported.text
        spec = sample_template().model_copy(update=template).model_dump(mode="json")
        created = await self.call("POST", "cycles", "/v1/templates", json=spec, headers=hr)
        assert created.status_code == 201, created.text
        today = datetime.now(UTC).date()
        body = {
            "name": f"FY {uuid.uuid4().hex[:6]}",
            "template_id": created.json()["template_id"],
            "period_start": (today - timedelta(days=30)).isoformat(),
            "period_end": (today + timedelta(days=300)).isoformat(),
            "department_ids": department_ids,
        }
        cycle = await self.call("POST", "cycles", "/v1/cycles", json=body, headers=hr)
        assert cycle.status_code == 201, cycle.text
        self.cycle_id = cycle.json()["cycle_id"]
        started = await self.call("POST", "cycles", f"/v1/cycles/{self.cycle_id}/start", headers=hr)
        assert started.status_code == 200, started.text
        return self.cycle_id

    async def register(self, kpis: list[KpiDefinition], *, grace_hours: float = 0.0, cadence_days: int = 14) -> None:
        today = datetime.now(UTC).date()
        catalog = KpiCatalog(
            cycle_id=self.cycle_id,
            period_start=today - timedelta(days=30),
            period_end=today + timedelta(days=300),
            kpis=kpis,
        )
        put = await self.call(
            "PUT",
            "tracking",
            f"/v1/cycles/{self.cycle_id}/kpis",
            json=catalog.model_dump(mode="json"),
            params={"grace_hours": grace_hours, "check_in_cadence_days": cadence_days},
            headers=self.hr(),
        )
        assert put.status_code == 200, put.text


def kpi(kpi_id: str, metric: str, owner: str, **extra: Any) -> KpiDefinition:
    """A sales KPI due a third of a second after registration (stale at once, without grace)."""
    return definition(kpi_id, owner, metric=metric, **({"update_frequency_hours": 0.0001} | extra))


class InProcess(httpx.AsyncBaseTransport):
    """Routes ``http://<service>.test`` to that service's app in this process; any other host is down."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}

    def mount(self, service: str, app: FastAPI) -> None:
        self.apps[f"{service}.test"] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.apps.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"{request.url.host} is not running in this test", request=request)
        return await transport.handle_async_request(request)


@asynccontextmanager
async def reminder_stack(settings: Settings, database_url: str, *, goals: bool = False) -> AsyncIterator[Stack]:
    """Cycles (with the SMTP sender) and tracking in process, each on its own database; goals too if asked."""
    smtp = RecordingSmtpServer()
    server = await asyncio.start_server(smtp.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    urls = {name: f"http://{name}.test" for name in SERVICES}
    base = settings.model_copy(
        update={
            "database_url": database_url.replace("test.db", "{service}.db"),
            **{f"{name}_url": url for name, url in urls.items()},
        }
    )
    in_process = InProcess()
    http = httpx.AsyncClient(transport=in_process)
    tracking = tracking_app(base, run_consumer=False, staleness_interval=0, http_client=http)
    smtp_settings = {"smtp_host": "127.0.0.1", "smtp_port": port, "hr_email": "hr@northwind.example"}
    cycles = cycles_app(base.model_copy(update=smtp_settings), http_client=http)
    in_process.mount("tracking", tracking)
    in_process.mount("cycles", cycles)
    apps = [tracking, cycles]
    if goals:
        apps.append(goals_app(base))
        in_process.mount("goals", apps[-1])
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(server)
        stack.push_async_callback(http.aclose)
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        tokens = ServiceTokens(base, sub="system:worker", roles=("hr_admin",))
        yield Stack(
            settings=base,
            http=http,
            tracking_app=tracking,
            apps={name: app for name, app in zip(("tracking", "cycles", "goals"), apps, strict=False)},
            services=ServiceClient(http=http, urls=urls, tokens=tokens),
            smtp=smtp,
        )


async def test_a_stale_kpis_reminder_and_escalation_reach_its_data_stewards_by_smtp(
    settings: Settings, database_url: str, time_skipping_env: Any
) -> None:
    async with reminder_stack(settings, database_url) as stack:
        cycle_id = await stack.start_cycle(["sales"])
        await stack.register(
            [
                kpi("domestic-orders", "sales.orders", "sales-domestic"),  # a sub-department: its named steward
                kpi("fx-rate", "finance.fx_rate", "finance"),  # outside the cycle: its named steward
                kpi("uptime", "it.uptime", "it"),  # outside the cycle, no steward: its head
            ]
        )
        await asyncio.sleep(0.5)  # past each KPI's due time (frequency 0.36 s, no grace)
        pending = (
            await stack.call(
                "GET",
                "tracking",
                f"/v1/cycles/{cycle_id}/pending",
                params={"department_id": "sales"},
                headers=stack.hr(),
            )
        ).json()
        assert {(i["item_id"], i["owner_id"]) for i in pending["pending"]} == {
            ("domestic-orders", "E0160"),
            ("fx-rate", "E0204"),
            ("uptime", "E0236"),
        }

        client = time_skipping_env.client
        queue = f"reminders-{uuid.uuid4().hex[:8]}"
        activities = CycleActivities(
            handoffs=HandoffActivities(client=stack.services, scoring_config=evaluation_config)
        )
        start = (await time_skipping_env.get_current_time()).astimezone(UTC)
        async with Worker(client, task_queue=queue, workflows=[DepartmentCycleWorkflow], activities=activities.all()):
            outcome = await client.execute_workflow(
                DepartmentCycleWorkflow.run,
                DepartmentCycleInput(
                    cycle_id=cycle_id,
                    department_id="sales",
                    stage=Stage.TRACKING,
                    deadline=start + timedelta(days=6),
                    reminder_days_before=[],
                    escalate_to_hr_after_days=2,
                    deadline_policy=DeadlinePolicy.CLOSE,
                    extension_days=0,
                    recheck_hours=24,
                    parent_workflow_id="none",
                ),
                id=f"reminders-{cycle_id}",
                task_queue=queue,
            )
        assert outcome.outcome == "completed" and outcome.reminders == 1 and outcome.escalations == 1

        reminder, escalation = stack.recipients()
        assert reminder == {EMAIL["E0160"], EMAIL["E0204"], EMAIL["E0236"]}
        assert escalation == {EMAIL["E0160"], EMAIL["E0204"], EMAIL["E0236"], EMAIL["E0155"]}
        assert "stale kpi reminder: tracking" in str(stack.smtp.messages[0]["data"])
        assert "3 KPI(s)" in str(stack.smtp.messages[0]["data"])
        assert "stale kpi escalation: tracking" in str(stack.smtp.messages[1]["data"])

        recorded = (
            await stack.call("GET", "cycles", "/v1/notifications", params={"cycle_id": cycle_id}, headers=stack.hr())
        ).json()
        names = {r["name"] for n in recorded for r in n["recipients"]}
        assert {"Mateo Rossi", "Katrin Larsen", "Laura Silva", "Anna Nguyen"} <= names
        assert all(n["delivery"]["smtp"] == "sent" for n in recorded)


async def test_the_snapshot_carries_outside_stewards_for_notifications_only(
    settings: Settings, database_url: str
) -> None:
    async with reminder_stack(settings, database_url) as stack:
        cycle_id = await stack.start_cycle(["sales"])
        snapshot = (await stack.call("GET", "cycles", f"/v1/cycles/{cycle_id}/snapshot", headers=stack.hr())).json()
        people = {p["employee_id"] for p in snapshot["participants"]}
        assert "E0160" in people and "E0204" not in people and "E0236" not in people
        departments = {d["department_id"] for d in snapshot["departments"]}
        assert departments == {"sales", "sales-domestic", "sales-export", "sales-service"}
        assert {p["department_id"] for p in snapshot["participants"]} <= departments
        cycle = (await stack.call("GET", "cycles", f"/v1/cycles/{cycle_id}", headers=stack.hr())).json()
        assert {d["service"]: d["status"] for d in cycle["distribution"]}["tracking"] == "delivered"
        async with stack.tracking_app.state.sessions() as session:
            owners = await load_data_owners(session=session, cycle_id=cycle_id)
        assert owners.cycle_departments == {"sales"}
        assert owners.contact("finance") == "E0204" and owners.contact("it") == "E0236"
        assert owners.contact("sales-domestic") == "E0160" and owners.contact("sales") == "E0155"


async def test_overdue_check_ins_are_reminded_once_per_cadence_round(settings: Settings, database_url: str) -> None:
    async with reminder_stack(settings, database_url) as stack:
        cycle_id = await stack.start_cycle(["sales"])
        await stack.register(
            [
                kpi(
                    "domestic-orders",
                    "sales.orders",
                    "sales-domestic",
                    update_frequency_hours=24,
                    department_id="sales-domestic",
                ),
                kpi(
                    "my-deals",
                    "sales.deals",
                    "sales",
                    level=GoalLevel.INDIVIDUAL,
                    employee_id="E0164",
                    department_id=None,
                    update_frequency_hours=24,
                ),
                kpi("nps", "", "sales", update_frequency_hours=24),  # a key result without a metric
            ],
            grace_hours=1,
            cadence_days=14,
        )
        tracking = stack.tracking_app
        reminders = tracking.state.check_in_reminders
        now = datetime.now(UTC)

        async def send(at: datetime) -> int:
            async with tracking.state.sessions() as session:
                sent: int = await reminders.send_due(session=session, now=at)
            return sent

        assert await send(now + timedelta(days=13)) == 0  # not due yet
        assert await send(now + timedelta(days=15)) == 3  # E0164, the head of sales-domestic, the head of sales
        assert await send(now + timedelta(days=15, hours=6)) == 0  # same round: already sent
        to = stack.recipients()
        assert sorted(min(r) for r in to) == sorted(
            ["helena.kaya@northwind.example", "carla.hoffmann@northwind.example", EMAIL["E0155"]]
        )
        bodies = [str(m["data"]) for m in stack.smtp.messages]
        assert any("nps" in b and "current value of each key result" in b for b in bodies)

        # E0164 checks in on day 15: due again 14 days later; the others are reminded again a cadence on
        person = Principal(
            sub="E0164", roles=frozenset({"employee"}), employee_id="E0164", department_id="sales-domestic"
        )
        async with tracking.state.sessions() as session:
            body = CheckInCreate(kpi_id="my-deals", comment="two deals signed", confidence=4)
            await tracking_service.add_check_in(
                session=session, cycle_id=cycle_id, body=body, principal=person, now=now + timedelta(days=15)
            )
        assert await send(now + timedelta(days=28, hours=1)) == 2  # the others' second round
        assert await send(now + timedelta(days=28, hours=2)) == 0
        assert await send(now + timedelta(days=29, hours=1)) == 1  # E0164's, 14 days after the check-in
        counts = await stack.call(
            "GET", "cycles", "/v1/notifications/counts", params={"cycle_id": cycle_id}, headers=stack.hr()
        )
        assert counts.json() == {"check_in_reminder": 6}
