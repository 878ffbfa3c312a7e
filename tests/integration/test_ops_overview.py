"""The ops overview over HTTP, on SQLite and PostgreSQL, against real parts: the cycles app, a tracking
app in-process, the Temporal dev server running a real ``ReviewCycleWorkflow`` (its activities scripted:
one department never finishes, escalations are recorded through the cycles API), and an unreachable
Temporal, broker and worker for the "report, don't fail" path."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker

from contracts.cycle import STAGE_ORDER, Stage, review_cycle_workflow_id
from contracts.workflow_io import (
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
    ReviewCycleInput,
    StageSchedule,
)
from services.common.auth import mint_token
from services.common.settings import Settings
from services.cycles.app import create_app
from services.cycles.service import sample_template
from services.tracking.app import create_app as create_tracking_app
from tests.integration.test_cycles_org_import import import_sample
from tests.support import api_client, auth, handoff_fakes
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.review_cycle import CYCLE_ID, STAGE, ReviewCycleWorkflow

UNREACHABLE_HTTP = "http://127.0.0.1:9"
UNREACHABLE_HOSTPORT = "127.0.0.1:9"


def offline(settings: Settings, **changes: Any) -> Settings:
    """Settings whose every neighbour is down unless ``changes`` points somewhere real."""
    base: dict[str, Any] = {
        "temporal_address": UNREACHABLE_HOSTPORT,
        "kafka_bootstrap_servers": UNREACHABLE_HOSTPORT,
        "temporal_ui_url": "http://temporal-ui.test:8233",
        **{f"{name}_url": UNREACHABLE_HTTP for name in ("goals", "tracking", "evaluation", "feedback", "results")},
    }
    return settings.model_copy(update={**base, **changes})


async def start_sample_cycle(client: httpx.AsyncClient, settings: Settings, *, departments: list[str]) -> str:
    """Import the sample org, create a template and a cycle, start it; returns the cycle id."""
    hr = auth(settings, "hr_admin", sub="hr-admin")
    await import_sample(client, settings)
    template = await client.post("/v1/templates", json=sample_template().model_dump(mode="json"), headers=hr)
    assert template.status_code in (201, 409), template.text
    template_id = (
        template.json()["template_id"]
        if template.status_code == 201
        else (await client.get("/v1/templates", headers=hr)).json()["items"][0]["template_id"]
    )
    today = date.today()
    created = await client.post(
        "/v1/cycles",
        json={
            "name": f"Ops test {uuid.uuid4().hex[:6]}",
            "template_id": template_id,
            "period_start": (today - timedelta(days=10)).isoformat(),
            "period_end": (today + timedelta(days=300)).isoformat(),
            "department_ids": departments,
        },
        headers=hr,
    )
    assert created.status_code == 201, created.text
    cycle_id: str = created.json()["cycle_id"]
    started = await client.post(f"/v1/cycles/{cycle_id}/start", headers=hr)
    assert started.status_code == 200, started.text
    return cycle_id


class ScriptedDepartments:
    """The review workflow's activities with their real names: pending counts come from a script,
    notifications go to the cycles service's real ``POST /v1/notifications``."""

    def __init__(self, cycles: httpx.AsyncClient, settings: Settings, pending: dict[str, tuple[int, int]]) -> None:
        self.cycles = cycles
        self.settings = settings
        self.pending = pending  # department -> (total, done)

    @activity.defn(name="check_pending")
    async def check_pending(self, query: PendingQuery) -> PendingSummary:
        if query.stage == Stage.TRACKING:
            return PendingSummary(total=1, done=1, pending=0)
        total, done = self.pending.get(query.department_id, (1, 1))
        return PendingSummary(total=total, done=done, pending=total - done, owner_ids=["E0206"])

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        token = mint_token(self.settings, sub="system:worker", roles=["hr_admin", "ops"])
        response = await self.cycles.post(
            "/v1/notifications",
            json=request.model_dump(mode="json"),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": request.idempotency_key},
        )
        response.raise_for_status()
        return NotificationResult.model_validate(response.json())

    def all(self) -> list[Any]:
        return [self.check_pending, self.send_notification, *handoff_fakes(lambda _name, _ref: None)]


@asynccontextmanager
async def running_cycle_workflow(
    client: Client, activities: ScriptedDepartments, *, cycle_id: str, departments: list[str], deadline_in: float
) -> AsyncIterator[Any]:
    """A real ReviewCycleWorkflow for ``cycle_id`` whose goal-setting deadline is ``deadline_in`` seconds away."""
    now = datetime.now(UTC)
    deadline = now + timedelta(seconds=deadline_in)
    schedule = [
        StageSchedule(stage=stage, deadline=deadline + timedelta(days=i)) for i, stage in enumerate(STAGE_ORDER)
    ]
    task_queue = f"ops-test-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ReviewCycleWorkflow, DepartmentCycleWorkflow],
        activities=activities.all(),
    ):
        handle = await client.start_workflow(
            ReviewCycleWorkflow.run,
            ReviewCycleInput(
                cycle_id=cycle_id,
                department_ids=departments,
                schedule=schedule,
                reminder_days_before=[],
                escalate_to_hr_after_days=1,
                recheck_hours=1,
            ),
            id=review_cycle_workflow_id(cycle_id),
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(CYCLE_ID, cycle_id), SearchAttributePair(STAGE, Stage.GOAL_SETTING.value)]
            ),
        )
        try:
            yield handle
        finally:
            await handle.terminate("test finished")


async def wait_for(check: Any, *, timeout: float = 30.0, every: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with the last value otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


async def test_overview_shows_stage_completion_escalations_and_stale_kpis(
    settings: Settings, one_database_url: str, temporal_server: Any, temporal_client: Client, tmp_path: Path
) -> None:
    """The overview reads the services' APIs and Temporal, whatever the engine: PostgreSQL only."""
    database_url = one_database_url
    tracking_app = create_tracking_app(
        settings.model_copy(
            update={
                "database_url": f"sqlite+aiosqlite:///{tmp_path}/tracking.db",
                "kafka_bootstrap_servers": "127.0.0.1:9",
            }
        )
    )
    cycles_settings = offline(settings, temporal_address=temporal_server.address, tracking_url="http://tracking.test")
    hr = auth(settings, "hr_admin")
    ops = auth(settings, "ops", sub="ops-oncall")
    async with (
        tracking_app.router.lifespan_context(tracking_app),
        httpx.AsyncClient(mounts={"http://tracking.test": httpx.ASGITransport(app=tracking_app)}) as http,
        api_client(functools.partial(create_app, http_client=http), cycles_settings, database_url) as client,
    ):
        cycle_id = await start_sample_cycle(client, settings, departments=["sales", "finance"])
        # tracking got the snapshot; one KPI owned by finance that is due every ~second and never fed
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=tracking_app), base_url="http://t") as tracking:
            catalog = {
                "cycle_id": cycle_id,
                "period_start": (date.today() - timedelta(days=10)).isoformat(),
                "period_end": (date.today() + timedelta(days=300)).isoformat(),
                "kpis": [
                    {
                        "kpi_id": "dk-fin-close",
                        "level": "department",
                        "name": "Days to close the books",
                        "metric": "finance.days_to_close",
                        "unit": "days",
                        "aggregation": "last",
                        "direction": "lower_is_better",
                        "start_value": 10,
                        "target_value": 5,
                        "owner_department_id": "finance",
                        "update_frequency_hours": 0.0002,
                        "department_id": "finance",
                    }
                ],
            }
            registered = await tracking.put(
                f"/v1/cycles/{cycle_id}/kpis", json=catalog, params={"grace_hours": 0}, headers=hr
            )
            assert registered.status_code == 200, registered.text

        activities = ScriptedDepartments(client, settings, {"sales": (4, 4), "finance": (5, 2)})
        async with running_cycle_workflow(
            temporal_client, activities, cycle_id=cycle_id, departments=["sales", "finance"], deadline_in=3
        ):

            async def finance_escalated() -> dict[str, Any] | None:
                response = await client.get("/v1/ops/overview", headers=ops)
                assert response.status_code == 200, response.text
                view = next(c for c in response.json()["cycles"] if c["cycle_id"] == cycle_id)
                overdue = {d["department_id"]: d for d in view["overdue_departments"]}
                if "finance" in overdue and "escalation_head" in overdue["finance"]["escalated_to"]:
                    return {"overview": response.json(), "cycle": view}
                return None

            found = await wait_for(finance_escalated)

        overview, view = found["overview"], found["cycle"]
        health = {h["name"]: h for h in overview["health"]}
        assert health["database"]["ok"] and health["temporal"]["ok"], health
        assert not health["broker"]["ok"] and "127.0.0.1:9" in health["broker"]["detail"]
        assert not health["worker"]["ok"]
        assert health["service:tracking"]["ok"] and not health["service:goals"]["ok"]

        workflow = view["workflow"]
        assert view["workflow_error"] is None
        assert workflow["stage"] == "goal_setting" and workflow["deadline_passed"] is True
        departments = {d["department_id"]: d for d in workflow["departments"]}
        assert departments["finance"] == {
            "department_id": "finance",
            "total": 5,
            "done": 2,
            "pending": 3,
            "percent": 40.0,
            "outcome": None,
        }
        assert departments["sales"]["pending"] == 0 and departments["sales"]["outcome"] == "completed"

        finance = next(d for d in view["overdue_departments"] if d["department_id"] == "finance")
        assert finance["stage"] == "goal_setting" and finance["pending"] == 3
        assert "missed the deadline" in finance["reason"]
        assert [d["department_id"] for d in view["overdue_departments"]] == ["finance"]
        escalation = next(x for x in view["escalations"] if x["kind"] == "escalation_head")
        # the head's name, resolved from the frozen snapshot
        assert escalation["department_id"] == "finance" and escalation["recipients"] == ["Stefan Hoffmann"]
        assert view["notification_counts"] == {"escalation_head": 1}

        assert view["stale_kpis_error"] is None
        assert view["stale_kpis"] == [
            {
                "department_id": "finance",
                "kpis": [
                    {
                        "kpi_id": "dk-fin-close",
                        "name": "Days to close the books",
                        "metric": "finance.days_to_close",
                        "last_event_at": None,
                        "due_at": view["stale_kpis"][0]["kpis"][0]["due_at"],
                    }
                ],
            }
        ]
        assert view["temporal_ui_url"] == (
            f"http://temporal-ui.test:8233/namespaces/default/workflows?query=CycleId%3D%22{cycle_id}%22"
        )
        ingestion = overview["ingestion"]
        assert overview["ingestion_error"] is None and ingestion["dead_letters"] == 0
        assert ingestion["total_lag"] is None and "could not read the consumer lag" in ingestion["lag_error"]

        # HR sees the same; the workflow is gone now (terminated), which is reported, not raised
        after = (await client.get("/v1/ops/overview", params={"cycle_id": cycle_id}, headers=hr)).json()
        assert after["total_cycles"] == 1
        assert after["cycles"][0]["workflow"] is None and after["cycles"][0]["workflow_error"]


async def test_overview_reports_what_is_down_instead_of_failing(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, offline(settings), database_url) as client:
        first = await start_sample_cycle(client, settings, departments=["sales"])
        second = await start_sample_cycle(client, settings, departments=["quality"])
        worker = auth(settings, "hr_admin", sub="system:worker")
        for kind, department, stage in [
            ("reminder", "sales", "goal_setting"),
            ("escalation_head", "sales", "goal_setting"),
            ("escalation_hr", "sales", "goal_setting"),
            ("stale_kpi_reminder", "sales-export", "tracking"),
        ]:
            key = f"{first}/{department}/{stage}/{kind}"
            body = {
                "idempotency_key": key,
                "cycle_id": first,
                "department_id": department,
                "stage": stage,
                "kind": kind,
                "recipients": ["department_head"],
                "pending": 7,
                "deadline": datetime(2026, 3, 1, tzinfo=UTC).isoformat(),
                "message": f"{kind} for {department}",
            }
            recorded = await client.post("/v1/notifications", json=body, headers={**worker, "Idempotency-Key": key})
            assert recorded.status_code == 200, recorded.text

        started = asyncio.get_running_loop().time()
        response = await client.get("/v1/ops/overview", headers=auth(settings, "ops"))
        elapsed = asyncio.get_running_loop().time() - started
        assert response.status_code == 200, response.text
        assert elapsed < 10, f"the overview took {elapsed:.1f} s with everything down"
        overview = response.json()
        health = {h["name"]: h for h in overview["health"]}
        assert health["database"]["ok"]
        assert not health["temporal"]["ok"] and "unreachable" in health["temporal"]["detail"]
        assert not health["broker"]["ok"] and not health["worker"]["ok"]
        assert overview["ingestion"] is None and "could not reach tracking" in overview["ingestion_error"]
        assert overview["total_cycles"] == 2
        assert [c["cycle_id"] for c in overview["cycles"]] == [second, first]  # newest first

        view = overview["cycles"][1]
        assert view["workflow"] is None and view["workflow_error"].startswith("Temporal is unreachable")
        assert view["stale_kpis"] == [] and "could not reach tracking" in view["stale_kpis_error"]
        # without a workflow every escalated (department, stage) counts; reminders are not overdue
        assert [(d["department_id"], d["stage"], d["escalated_to"]) for d in view["overdue_departments"]] == [
            ("sales", "goal_setting", ["escalation_head", "escalation_hr"])
        ]
        assert {x["kind"] for x in view["escalations"]} == {"escalation_head", "escalation_hr", "stale_kpi_reminder"}
        assert view["notification_counts"] == {
            "reminder": 1,
            "escalation_head": 1,
            "escalation_hr": 1,
            "stale_kpi_reminder": 1,
        }
        head = next(x for x in view["escalations"] if x["kind"] == "escalation_head")
        assert (
            head["recipients"] == ["Anna Nguyen"]
            and head["pending"] == 7
            and head["message"] == "escalation_head for sales"
        )
        assert overview["cycles"][0]["overdue_departments"] == []

        paged = await client.get("/v1/ops/overview", params={"limit": 1, "offset": 1}, headers=auth(settings, "ops"))
        assert [c["cycle_id"] for c in paged.json()["cycles"]] == [first] and paged.json()["total_cycles"] == 2


async def test_overview_roles(settings: Settings, database_url: str) -> None:
    async with api_client(create_app, offline(settings), database_url) as client:
        assert (await client.get("/v1/ops/overview")).status_code == 401
        for role in ("employee", "manager", "dept_head", "department_system"):
            denied = await client.get("/v1/ops/overview", headers=auth(settings, role))
            assert denied.status_code == 403 and "['hr_admin', 'ops']" in denied.json()["detail"], role
        for role in ("ops", "hr_admin"):
            assert (await client.get("/v1/ops/overview", headers=auth(settings, role))).status_code == 200
        route = client.app.openapi()["paths"]["/v1/ops/overview"]["get"]  # type: ignore[attr-defined]
        assert route["x-roles"] == ["ops", "hr_admin"] and route["summary"]
