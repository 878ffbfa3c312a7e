"""The append-only audit log over the real services, on SQLite and PostgreSQL: what a change records
(actor, before/after, request id), state changes (goal approval, calibration), the query API and
its roles, and refusal of updates and deletes by the ORM and by the database."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from services.common.audit import AuditLogIsAppendOnly
from services.common.settings import Settings
from services.cycles.app import create_app as create_cycles_app
from services.evaluation.app import create_app as create_evaluation_app
from services.goals.models import GoalsAudit
from tests.integration.test_cycles_lifecycle import UNREACHABLE, template_body
from tests.integration.test_cycles_org_import import import_sample
from tests.integration.test_evaluation_api import CYCLE as EVAL_CYCLE
from tests.integration.test_evaluation_api import collect_reviews, ok, setup_cycle
from tests.integration.test_evaluation_api import hr as eval_hr
from tests.integration.test_goals_helpers import GoalsWorld, goal_body, seeded
from tests.integration.test_tracking_api import CYCLE as TRACKING_CYCLE
from tests.integration.test_tracking_api import SNAPSHOT as TRACKING_SNAPSHOT
from tests.integration.test_tracking_api import _feed, app_factory, catalog, event
from tests.support import api_client, auth


async def audit(client: httpx.AsyncClient, headers: dict[str, str], **filters: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params=filters, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


STAGES = ("goals", "tracking", "evaluation", "feedback", "results")


def ops(settings: Settings) -> dict[str, str]:
    return auth(settings, "ops", sub="ops-olga")


async def test_create_update_delete_are_recorded_with_actor_before_after_and_request_id(
    settings: Settings, database_url: str
) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        body = goal_body("individual", 100, goal_id="i_extra", employee_id="s2", parent_id="d_sales_rev")
        created = await w.client.post(f"{w.base}/goals", json=body, headers={**w.hr(), "X-Request-ID": "req-create-1"})
        assert created.status_code == 201, created.text
        assert created.headers["X-Request-ID"] == "req-create-1"
        patched = await w.client.patch(f"{w.base}/goals/i_extra", json={"target_value": 120}, headers=w.hr())
        assert patched.status_code == 200, patched.text
        patch_request_id = patched.headers["X-Request-ID"]  # none sent: the service made one up
        assert len(patch_request_id) == 36
        removed = await w.client.delete(f"{w.base}/goals/i_extra", headers={**w.hr(), "X-Request-ID": "req-del-1"})
        assert removed.status_code in (200, 204), removed.text

        entries = await audit(w.client, w.hr(), entity="goals_goal", entity_id=f"{w.cycle_id}/i_extra")
        assert [e["action"] for e in entries] == ["delete", "update", "create"]  # newest first
        delete_entry, update_entry, create_entry = entries
        assert (create_entry["actor"], create_entry["actor_roles"], create_entry["service"]) == (
            "hr",
            ["hr_admin"],
            "goals",
        )
        assert create_entry["request_id"] == "req-create-1" and create_entry["before"] is None
        assert create_entry["after"]["target_value"] == 100 and create_entry["after"]["status"] == "draft"
        assert update_entry["request_id"] == patch_request_id
        assert (update_entry["before"]["target_value"], update_entry["after"]["target_value"]) == (100, 120)
        assert "target_value" in update_entry["changed"] and "name" not in update_entry["changed"]
        assert delete_entry["request_id"] == "req-del-1" and delete_entry["after"] is None
        assert delete_entry["before"]["target_value"] == 120 and delete_entry["before"]["employee_id"] == "s2"

        # a request id that is not a sane token is replaced, not stored
        odd = await w.client.get("/v1/audit", headers={**w.hr(), "X-Request-ID": "bad id; drop table"})
        assert odd.headers["X-Request-ID"] != "bad id; drop table"


async def test_goal_approval_is_an_update_with_before_and_after_status(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        await w.post("/goals/i_s1/approve", None, w.manager("s_mgr"), expect=200)
        submit_entry, approve_entry = reversed(
            await audit(w.client, w.hr(), entity="goals_goal", entity_id=f"{w.cycle_id}/i_s1", action="update")
        )
        assert (submit_entry["actor"], submit_entry["before"]["status"], submit_entry["after"]["status"]) == (
            "s1",
            "draft",
            "submitted",
        )
        assert approve_entry["actor"] == "s_mgr" and approve_entry["actor_roles"] == ["employee", "manager"]
        assert (approve_entry["before"]["status"], approve_entry["after"]["status"]) == ("submitted", "approved")
        assert {"status", "status_changed_by"} <= set(approve_entry["changed"])
        # the org snapshot push is audited too: one row per participant created
        pushed = await audit(w.client, w.hr(), entity="goals_participant", action="create", limit=500)
        assert len(pushed) == 7 and {e["actor"] for e in pushed} == {"hr"}


async def test_calibration_adjustment_is_an_update_of_the_result(settings: Settings, database_url: str) -> None:
    async with api_client(create_evaluation_app, settings, database_url) as client:
        await setup_cycle(client, settings)
        await collect_reviews(client, settings, peers=3)
        base = f"/v1/cycles/{EVAL_CYCLE}"
        h = eval_hr(settings)
        ok(await client.post(f"{base}/scores/compute", headers=h))
        adjusted = await client.post(
            f"{base}/calibration/adjustments",
            json={"employee_id": "e-r", "new_rating": "outstanding", "reason": "led the key account"},
            headers={**h, "X-Request-ID": "calibrate-e-r"},
        )
        assert adjusted.status_code == 201, adjusted.text
        entries = await audit(client, h, request_id="calibrate-e-r")
        by_entity = {e["entity"]: e for e in entries}
        result = by_entity["evaluation_result"]
        assert (result["action"], result["entity_id"], result["actor"]) == ("update", f"{EVAL_CYCLE}/e-r", "hr-hana")
        assert result["before"]["final_score"] == pytest.approx(3.8455) and result["before"]["rating"] == "exceeds"
        assert (result["after"]["final_score"], result["after"]["rating"]) == (4.75, "outstanding")
        assert {"final_score", "rating"} <= set(result["changed"])
        trail = by_entity["evaluation_adjustment"]
        assert trail["action"] == "create" and trail["after"]["reason"] == "led the key account"


async def test_cycle_start_is_recorded_as_a_set_based_update_with_its_criteria(
    settings: Settings, database_url: str
) -> None:
    hr = auth(settings, "hr_admin", sub="hr-hana")
    stages_down = settings.model_copy(update={f"{svc}_url": UNREACHABLE for svc in STAGES})
    async with (
        httpx.AsyncClient() as http,
        api_client(functools.partial(create_cycles_app, http_client=http), stages_down, database_url) as client,
    ):
        await import_sample(client, settings)
        template_id = (await client.post("/v1/templates", json=template_body(), headers=hr)).json()["template_id"]
        body = {
            "name": "FY2025",
            "template_id": template_id,
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
            "department_ids": ["sales"],
        }
        cycle_id = (await client.post("/v1/cycles", json=body, headers=hr)).json()["cycle_id"]
        started = await client.post(f"/v1/cycles/{cycle_id}/start", headers={**hr, "X-Request-ID": "start-1"})
        assert started.status_code == 200, started.text

        history = await audit(client, hr, entity="cycles_cycle", entity_id=cycle_id)
        assert [e["action"] for e in history][-1] == "create"
        claim = next(e for e in history if e["request_id"] == "start-1" and e["criteria"])
        assert claim["action"] == "update" and claim["actor"] == "hr-hana" and claim["row_count"] == 1
        assert "status = 'draft'" in claim["criteria"] and claim["after"]["status"] == "active"
        frozen = await audit(client, hr, request_id="start-1", entity="cycles_snapshot_participant", limit=500)
        assert {e["action"] for e in frozen} == {"create"}
        # The participants, plus the data stewards and heads outside the cycle kept for its stale-data
        # reminders (not participants: GET /snapshot leaves them out).
        snapshot = (await client.get(f"/v1/cycles/{cycle_id}/snapshot", headers=hr)).json()
        in_cycle = {d["department_id"] for d in snapshot["departments"]}
        taking_part = [e for e in frozen if e["after"]["department_id"] in in_cycle]
        assert len(taking_part) == started.json()["participants"] == len(snapshot["participants"])


async def test_tracking_audits_the_catalog_and_check_ins_but_not_ingestion(
    settings: Settings, database_url: str
) -> None:
    hr = auth(settings, "hr_admin", sub="hr-hana")
    alice = auth(settings, "employee", sub="alice", employee_id="alice", department_id="sales")
    base = f"/v1/cycles/{TRACKING_CYCLE}"
    async with api_client(app_factory(), settings, database_url) as client:
        assert (await client.put(f"{base}/kpis", json=catalog().model_dump(mode="json"), headers=hr)).status_code == 200
        participants = TRACKING_SNAPSHOT.model_dump(mode="json")
        assert (await client.put(f"{base}/participants", json=participants, headers=hr)).status_code == 200
        check_in = {"kpi_id": "rev-alice", "comment": "two deals slipped", "confidence": 3}
        assert (await client.post(f"{base}/check-ins", json=check_in, headers=alice)).status_code == 201
        await _feed(client, [event("sales.revenue", 30, employee_id="alice"), event("production.defect_rate", 2)])

        kpis = await audit(client, hr, entity="tracking_kpi", action="create")
        assert len(kpis) == 4 and {e["actor"] for e in kpis} == {"hr-hana"}
        (entry,) = await audit(client, hr, entity="tracking_check_in")
        assert (entry["actor"], entry["action"], entry["after"]["confidence"]) == ("alice", "create", 3)
        for raw in ("tracking_metric_event", "tracking_kpi_bucket", "tracking_dead_letter", "tracking_outbox"):
            assert await audit(client, hr, entity=raw) == [], raw


async def test_hr_admin_and_ops_query_with_filters_and_others_are_refused(
    settings: Settings, database_url: str
) -> None:
    async with seeded(settings, database_url) as w:
        started = datetime.now(UTC) - timedelta(seconds=1)
        await w.build_tree()
        everything = await audit(w.client, ops(settings), limit=500)
        assert everything and everything == sorted(everything, key=lambda e: e["id"], reverse=True)
        objective = await audit(w.client, ops(settings), entity="goals_objective", actor="hr", action="create")
        assert [(e["entity_id"], e["after"]["name"]) for e in objective] == [(f"{w.cycle_id}/grow", "Grow revenue")]
        assert await audit(w.client, w.hr(), actor="nobody") == []
        assert await audit(w.client, w.hr(), action="delete", entity="goals_goal") == []
        since = await audit(w.client, w.hr(), since=started.isoformat(), limit=500)
        assert len(since) == len(everything)
        assert await audit(w.client, w.hr(), until=started.isoformat()) == []

        first = (await w.client.get("/v1/audit", params={"limit": 2}, headers=w.hr())).json()
        second = (await w.client.get("/v1/audit", params={"limit": 2, "offset": 2}, headers=w.hr())).json()
        assert first["has_more"] and [e["id"] for e in first["items"] + second["items"]] == [
            e["id"] for e in everything[:4]
        ]
        assert (await w.client.get("/v1/audit", params={"limit": 501}, headers=w.hr())).status_code == 422

        for headers in (w.as_("s1"), w.manager("s_mgr"), w.head("s_head")):
            refused = await w.client.get("/v1/audit", headers=headers)
            assert refused.status_code == 403 and "hr_admin" in refused.json()["detail"]
        assert (await w.client.get("/v1/audit")).status_code == 401


async def _first_row(world: GoalsWorld) -> int:
    entries = await audit(world.client, world.hr(), limit=1)
    return int(entries[0]["id"])


async def test_updates_and_deletes_of_audit_rows_are_refused_by_the_orm_and_the_database(
    settings: Settings, database_url: str
) -> None:
    async with seeded(settings, database_url) as w:
        row_id = await _first_row(w)
        app: Any = w.client.app  # type: ignore[attr-defined]

        async with app.state.sessions() as session:
            row = await session.get(GoalsAudit, row_id)
            assert row is not None
            row.actor = "someone-else"
            with pytest.raises(AuditLogIsAppendOnly, match="append-only"):
                await session.commit()
        async with app.state.sessions() as session:
            row = await session.get(GoalsAudit, row_id)
            await session.delete(row)
            with pytest.raises(AuditLogIsAppendOnly):
                await session.commit()
        async with app.state.sessions() as session:
            with pytest.raises(AuditLogIsAppendOnly):
                await session.execute(update(GoalsAudit).values(actor="x"))
            with pytest.raises(AuditLogIsAppendOnly):
                await session.execute(delete(GoalsAudit))

        # Raw SQL, past the ORM: the database trigger refuses it.
        for statement in (
            "UPDATE goals_audit SET actor = 'someone-else'",
            f"DELETE FROM goals_audit WHERE id = {row_id}",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with app.state.engine.begin() as conn:
                    await conn.execute(text(statement))
        async with app.state.engine.connect() as conn:
            kept = (await conn.execute(select(GoalsAudit.actor).where(GoalsAudit.id == row_id))).scalar_one()
        assert kept == "hr"
