"""Templates and cycles over the API, on SQLite and PostgreSQL: validation, start freezes the org snapshot,
and the snapshot reaches real (in-process) stage-service receivers over HTTP."""

from __future__ import annotations

import copy
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase

from services.common.app import create_service_app
from services.common.participants import DepartmentMixin, ParticipantMixin, participants_router
from services.common.settings import Settings
from services.cycles.app import create_app
from services.cycles.service import sample_template
from tests.integration.test_cycles_org_import import import_sample, org_files, sample_rows
from tests.support import api_client, auth

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


class ReceiverBase(DeclarativeBase):
    pass


class ReceiverParticipant(ParticipantMixin, ReceiverBase):
    __tablename__ = "receiver_participant"


class ReceiverDepartment(DepartmentMixin, ReceiverBase):
    __tablename__ = "receiver_department"


@asynccontextmanager
async def stage_receiver(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    """A minimal stage service: the shared participants router on its own tables, lifespan running."""

    async def create_tables(app: FastAPI) -> None:
        async with app.state.engine.begin() as conn:
            await conn.run_sync(ReceiverBase.metadata.create_all)

    app = create_service_app(
        service="receiver",
        settings=settings.model_copy(update={"database_url": database_url}),
        description="test receiver of cycle snapshots",
        routers=[participants_router(ReceiverParticipant, ReceiverDepartment)],
        on_startup=[create_tables],
    )
    async with app.router.lifespan_context(app):
        yield app


async def received(app: FastAPI, cycle_id: str) -> int:
    async with app.state.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(ReceiverParticipant).where(ReceiverParticipant.cycle_id == cycle_id)
        )
    return int(count or 0)


def template_body(**changes: Any) -> dict[str, Any]:
    body = sample_template().model_dump(mode="json")
    body.update(changes)
    return body


async def test_templates_are_validated_with_clear_messages(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    good = template_body()
    stages_without_feedback = [s for s in good["stages"] if s["stage"] != "feedback"]
    bad_weights = copy.deepcopy(good["scoring"])
    bad_weights["weights"]["kpi"] = 40
    gap_bands = copy.deepcopy(good["scoring"])
    gap_bands["rating_scale"]["bands"][1]["min_score"] = 2.2
    unsafe_formula = copy.deepcopy(good["scoring"])
    unsafe_formula["formula"] = "__import__('os').system('true')"
    ignoring_formula = copy.deepcopy(good["scoring"])
    ignoring_formula["formula"] = "w_kpi * kpi + w_manager * manager"
    early_reminder = copy.deepcopy(good["stages"])
    early_reminder[3]["reminder_days_before"] = [30, 1]
    cases: list[tuple[dict[str, Any], str]] = [
        (template_body(stages=stages_without_feedback), "missing stage(s) ['feedback']"),
        (template_body(stages=[*good["stages"], {"stage": "closed", "duration_days": 1}]), "stage 'closed'"),
        (template_body(scoring=bad_weights), "scoring.weights must sum to 100, got 90"),
        (template_body(scoring=gap_bands), "bands must be contiguous"),
        (template_body(scoring=unsafe_formula), "formula may call only min(...) and max(...)"),
        (template_body(scoring=ignoring_formula), "formula ignores weighted component(s) ['cross_department', 'peer'"),
        (template_body(stages=early_reminder), "stage 'feedback': reminder(s) [30]"),
        (template_body(calibration={"limits": [{"band": "superstar", "max_percent": 5}]}), "unknown band(s)"),
        (template_body(peer_anonymity_threshold=1), "peer_anonymity_threshold"),
        (template_body(late_data_policy="whenever"), "'accept', 'reject' or 'next_period'"),
        (template_body(reminder_days_before=[7, 7]), "each day may appear once"),
    ]
    async with api_client(create_app, settings, database_url) as client:
        for body, expected in cases:
            response = await client.post("/v1/templates", json=body, headers=hr)
            assert response.status_code == 422, (expected, response.text)
            assert expected in response.json()["detail"], (expected, response.json()["detail"])

        created = await client.post("/v1/templates", json=good, headers=hr)
        assert created.status_code == 201, created.text
        template = created.json()
        assert template["version"] == 1 and template["spec"]["peer_anonymity_threshold"] == 3
        assert [s["stage"] for s in template["spec"]["stages"]][0] == "goal_setting"
        duplicate = await client.post("/v1/templates", json=good, headers=hr)
        assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]

        renamed = template_body(name="Annual review v2", peer_anonymity_threshold=5)
        replaced = await client.put(f"/v1/templates/{template['template_id']}", json=renamed, headers=hr)
        assert replaced.json()["version"] == 2 and replaced.json()["spec"]["peer_anonymity_threshold"] == 5
        listed = (await client.get("/v1/templates", headers=auth(settings, "employee", employee_id="E0164"))).json()
        assert [t["name"] for t in listed["items"]] == ["Annual review v2"]


async def test_cycle_creation_checks_period_departments_and_template(settings: Settings, database_url: str) -> None:
    hr = auth(settings, "hr_admin")
    async with api_client(create_app, settings, database_url) as client:
        await import_sample(client, settings)
        template_id = (await client.post("/v1/templates", json=template_body(), headers=hr)).json()["template_id"]
        base = {
            "name": "FY2025",
            "template_id": template_id,
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
            "department_ids": ["sales", "finance"],
        }
        cases = [
            ({"period_end": "2024-12-31"}, "period_end", "must be after period_start"),
            ({"department_ids": ["sales", "marketing"]}, "department_ids", "unknown department(s) ['marketing']"),
            ({"template_id": "tpl-nope"}, "template_id", "unknown template 'tpl-nope'"),
        ]
        for change, field, message in cases:
            response = await client.post("/v1/cycles", json={**base, **change}, headers=hr)
            assert response.status_code == 422, response.text
            assert response.json()["field"] == field and message in response.json()["detail"]
        empty = await client.post("/v1/cycles", json={**base, "department_ids": []}, headers=hr)
        assert empty.status_code == 422 and "department_ids" in empty.json()["detail"]

        created = await client.post("/v1/cycles", json=base, headers=hr)
        assert created.status_code == 201, created.text
        cycle = created.json()
        assert cycle["status"] == "draft" and cycle["participants"] is None and cycle["distribution"] == []
        assert cycle["schedule"][0] == {
            "stage": "goal_setting",
            "opens_on": "2025-01-01",
            "deadline": "2025-01-22",
            "closes_on": "2025-02-01",
            "reminders": ["2025-01-15", "2025-01-21"],
        }
        again = await client.post("/v1/cycles", json=base, headers=hr)
        assert again.status_code == 409
        draft_snapshot = await client.get(f"/v1/cycles/{cycle['cycle_id']}/snapshot", headers=hr)
        assert draft_snapshot.status_code == 409 and "frozen when it starts" in draft_snapshot.json()["detail"]
        assert (await client.post(f"/v1/cycles/{cycle['cycle_id']}/distribute", headers=hr)).status_code == 409
        listed = (await client.get("/v1/cycles", params={"status": "draft"}, headers=hr)).json()
        assert [c["cycle_id"] for c in listed["items"]] == [cycle["cycle_id"]]
        assert (await client.get("/v1/cycles", params={"status": "active"}, headers=hr)).json()["total"] == 0


async def test_start_freezes_the_snapshot_and_distributes_it(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    hr = auth(settings, "hr_admin")
    cycles_settings = settings.model_copy(
        update={
            "goals_url": "http://goals.test",
            "tracking_url": "http://tracking.test",
            "evaluation_url": UNREACHABLE,
            "feedback_url": UNREACHABLE,
            "results_url": UNREACHABLE,
        }
    )
    receivers_db = f"sqlite+aiosqlite:///{tmp_path}/receivers.db"
    async with (
        stage_receiver(settings, receivers_db) as goals,
        stage_receiver(settings, f"sqlite+aiosqlite:///{tmp_path}/tracking.db") as tracking,
        # tracking is "down" at first: its host is not mounted, so the client cannot connect
        httpx.AsyncClient(mounts={"http://goals.test": httpx.ASGITransport(app=goals)}) as http,
        api_client(functools.partial(create_app, http_client=http), cycles_settings, database_url) as client,
    ):
        await import_sample(client, settings)
        template_id = (await client.post("/v1/templates", json=template_body(), headers=hr)).json()["template_id"]
        created = await client.post(
            "/v1/cycles",
            json={
                "name": "FY2025 sales and finance",
                "template_id": template_id,
                "period_start": "2025-01-01",
                "period_end": "2025-12-31",
                "department_ids": ["sales", "finance"],
            },
            headers=hr,
        )
        cycle_id = created.json()["cycle_id"]

        started = await client.post(f"/v1/cycles/{cycle_id}/start", headers=hr)
        assert started.status_code == 200, started.text
        cycle = started.json()
        assert cycle["status"] == "active" and cycle["participants"] == 48 + 20
        status = {d["service"]: d for d in cycle["distribution"]}
        assert list(status) == ["goals", "tracking", "evaluation", "feedback", "results"]
        assert status["goals"]["status"] == "delivered" and status["goals"]["last_error"] is None
        for service in ("tracking", "evaluation", "feedback", "results"):
            assert status[service]["status"] == "pending" and status[service]["attempts"] == 1
            assert "unreachable" in status[service]["last_error"]
        assert await received(goals, cycle_id) == 68

        snapshot = (await client.get(f"/v1/cycles/{cycle_id}/snapshot", headers=hr)).json()
        assert snapshot["cycle_id"] == cycle_id
        assert {d["department_id"] for d in snapshot["departments"]} == {
            "sales",
            "sales-domestic",
            "sales-export",
            "sales-service",
            "finance",
            "finance-accounting",
            "finance-controlling",
        }
        assert len(snapshot["participants"]) == 68
        assert (await client.post(f"/v1/cycles/{cycle_id}/start", headers=hr)).status_code == 409

        # The org changes after the start: someone moves from sales to HR, someone leaves, someone joins.
        departments, employees = sample_rows()
        mover = next(e for e in employees if e["employee_id"] == "E0190")
        mover["department_id"], mover["manager_id"] = "hr", "E0223"
        employees = [e for e in employees if e["employee_id"] != "E0191"]
        employees.append(
            {
                **employees[-1],
                "employee_id": "E0900",
                "email": "x@northwind.example",
                "department_id": "sales",
                "manager_id": "E0155",
            }
        )
        changed = await client.post("/v1/org/import", files=org_files(departments, employees), headers=hr)
        assert changed.json()["changed"] is True
        assert (await client.get(f"/v1/cycles/{cycle_id}/snapshot", headers=hr)).json() == snapshot

        # tracking comes up; the retry delivers to it and leaves the others pending
        client.app.state.http = httpx.AsyncClient(  # type: ignore[attr-defined]
            mounts={
                "http://goals.test": httpx.ASGITransport(app=goals),
                "http://tracking.test": httpx.ASGITransport(app=tracking),
            }
        )
        try:
            retried = await client.post(f"/v1/cycles/{cycle_id}/distribute", headers=hr)
        finally:
            await client.app.state.http.aclose()  # type: ignore[attr-defined]
        rows = {d["service"]: d for d in retried.json()}
        assert rows["tracking"]["status"] == "delivered" and rows["tracking"]["attempts"] == 2
        assert rows["goals"]["attempts"] == 1  # delivered before: not sent again
        assert rows["results"]["status"] == "pending" and rows["results"]["attempts"] == 2
        assert await received(tracking, cycle_id) == 68

        # a cycle created after the change sees the new org
        later = await client.post(
            "/v1/cycles",
            json={
                "name": "FY2025 sales only",
                "template_id": template_id,
                "period_start": "2025-02-01",
                "period_end": "2025-12-31",
                "department_ids": ["sales"],
            },
            headers=hr,
        )
        client.app.state.http = http  # type: ignore[attr-defined]
        later_started = (await client.post(f"/v1/cycles/{later.json()['cycle_id']}/start", headers=hr)).json()
        assert later_started["participants"] == 48 - 2 + 1
        assert await received(goals, later.json()["cycle_id"]) == 47 and await received(goals, cycle_id) == 68
