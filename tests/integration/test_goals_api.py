"""Goals API over httpx against the real database (SQLite and PostgreSQL): structure, alignment,
weights, freeze and outbox events."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from services.common.settings import Settings
from services.goals.models import GoalsOutbox
from tests.integration.test_goals_helpers import GoalsWorld, goal_body, seeded


async def _events(world: GoalsWorld) -> list[dict[str, Any]]:
    app: Any = world.client.app  # type: ignore[attr-defined]
    async with app.state.sessions() as session:
        rows = (await session.scalars(select(GoalsOutbox).order_by(GoalsOutbox.id))).all()
    return [json.loads(r.payload) for r in rows]


async def test_strategy_cascade_is_created_and_listed(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        objectives = (await w.client.get(f"{w.base}/objectives", headers=w.hr())).json()
        assert [(o["objective_id"], o["perspective"]) for o in objectives] == [("grow", "financial")]
        page = (await w.client.get(f"{w.base}/goals", params={"level": "department"}, headers=w.hr())).json()
        assert page["total"] == 3
        assert {g["goal_id"]: g["parent_id"] for g in page["items"]} == {
            "d_fin_cost": "c_cost",
            "d_sales_orders": "c_rev",
            "d_sales_rev": "c_rev",
        }
        shared = next(g for g in page["items"] if g["goal_id"] == "d_fin_cost")
        assert shared["contributing_department_ids"] == ["sales"]
        assert shared["status"] == "draft" and shared["data_owner_department_id"] == "finance"
        individual = (await w.client.get(f"{w.base}/goals/i_s1", headers=w.hr())).json()
        assert individual["department_id"] == "sales" and individual["employee_id"] == "s1"
        limited = (await w.client.get(f"{w.base}/goals", params={"limit": 2, "offset": 1}, headers=w.hr())).json()
        assert limited["total"] == 8 and len(limited["items"]) == 2


async def test_alignment_rules(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        cases = [
            # department KPI must align to a company KPI
            (
                goal_body("department", 10, department_id="sales", parent_id="d_sales_rev"),
                "parent_id",
                "must align to a company KPI",
            ),
            (goal_body("department", 10, department_id="sales"), "parent_id", "parent_id is required"),
            (goal_body("department", 10, department_id="sales", parent_id="nope"), "parent_id", "no company KPI"),
            # company KPI must name an existing objective
            (goal_body("company", 10), "objective_id", "objective_id is required"),
            (goal_body("company", 10, objective_id="missing"), "objective_id", "no objective 'missing'"),
            # individual goal aligns to a KPI of the employee's own department...
            (
                goal_body("individual", 10, employee_id="f1", parent_id="d_sales_orders"),
                "parent_id",
                "employee 'f1' is in 'finance'",
            ),
            # ...and never directly to a company KPI
            (
                goal_body("individual", 10, employee_id="s1", parent_id="c_rev"),
                "parent_id",
                "must align to a department KPI",
            ),
            (
                goal_body("department", 10, department_id="marketing", parent_id="c_rev"),
                "department_id",
                "department 'marketing' is not in cycle",
            ),
            (
                goal_body("department", 10, department_id="sales", parent_id="c_rev", metric="Sales Revenue"),
                "metric",
                "not a valid key",
            ),
            (
                goal_body("department", 10, department_id="sales", parent_id="c_rev", start_value=50, target_value=10),
                "target_value",
                "below start",
            ),
            (
                goal_body("department", 10, department_id="sales", parent_id="c_rev", metric=None),
                "metric",
                "metric is required for kind 'kpi'",
            ),
        ]
        for body, field, message in cases:
            response = await w.post("/goals", body, w.hr())
            assert response.status_code == 422, (body, response.text)
            detail = response.json()
            assert message in detail["detail"], (message, detail)
            assert field in (detail.get("field") or detail["detail"])
        # a shared KPI: sales contributes to finance's cost KPI, so a sales rep may align to it
        await w.create(
            goal_body(
                "individual",
                10,
                employee_id="s1",
                parent_id="d_fin_cost",
                goal_id="i_s1_cost",
                direction="lower_is_better",
                start_value=100,
                target_value=80,
            )
        )
        # an OKR key result needs no metric
        okr = await w.create(
            goal_body(
                "individual",
                5,
                employee_id="s2",
                parent_id="d_sales_orders",
                kind="okr_key_result",
                metric=None,
                data_owner_department_id=None,
            )
        )
        assert okr["metric"] is None


async def test_weights_report_and_enforcement_on_submit(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        report = (await w.client.get(f"{w.base}/weights", headers=w.hr())).json()
        assert report["valid"] is True and report["problems"] == []
        assert {(s["level"], s["owner"]): s["total"] for s in report["sums"]} == {
            ("company", "company"): 100,
            ("department", "finance"): 100,
            ("department", "sales"): 100,
            ("individual", "f1"): 100,
            ("individual", "s1"): 100,
            ("individual", "s2"): 100,
        }
        # sales gets a third KPI: its weights now sum to 110
        await w.create(goal_body("department", 10, goal_id="d_extra", department_id="sales", parent_id="c_rev"))
        report = (await w.client.get(f"{w.base}/weights", headers=w.hr())).json()
        assert report["valid"] is False
        assert report["problems"] == ["weights of department 'sales' KPIs sum to 110, not 100"]
        response = await w.post("/goals/d_sales_rev/submit", None, w.head("s_head"))
        assert response.status_code == 422
        assert response.json() == {
            "detail": "cannot submit goal 'd_sales_rev': weights of department 'sales' KPIs sum to 110, not 100",
            "field": "weight",
        }
        # fix the weights (70 + 20 + 10) and the submit goes through
        patched = await w.client.patch(f"{w.base}/goals/d_sales_orders", json={"weight": 20}, headers=w.hr())
        assert patched.status_code == 200 and patched.json()["version"] == 2
        await w.post("/goals/d_sales_rev/submit", None, w.head("s_head"), expect=200)
        # individual level: s1 adds a second goal of 50 -> 150
        await w.create(goal_body("individual", 50, goal_id="i_s1_b", employee_id="s1", parent_id="d_sales_orders"))
        response = await w.post("/goals/i_s1/submit", None, w.as_("s1"))
        assert response.json()["detail"].endswith("weights of employee 's1' goals sum to 150, not 100")
        # company level names the single owner "company"
        await w.create(goal_body("company", 0.5, goal_id="c_tiny", objective_id="grow"))
        response = await w.post("/goals/c_rev/submit", None, w.hr())
        assert response.json()["detail"].endswith("weights of company KPIs sum to 100.5, not 100")


async def test_objective_and_goal_edits_and_deletes(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        response = await w.client.delete(f"{w.base}/objectives/grow", headers=w.hr())
        assert response.status_code == 409 and "2 company KPI(s)" in response.json()["detail"]
        response = await w.client.delete(f"{w.base}/goals/d_sales_orders", headers=w.hr())
        assert response.status_code == 409 and "2 goal(s) aligned" in response.json()["detail"]
        assert (await w.client.delete(f"{w.base}/goals/i_s2", headers=w.hr())).status_code == 204
        assert (await w.client.get(f"{w.base}/goals/i_s2", headers=w.hr())).status_code == 404
        response = await w.client.patch(f"{w.base}/objectives/grow", json={"perspective": "customer"}, headers=w.hr())
        assert response.json()["perspective"] == "customer"
        duplicate = await w.post("/goals", goal_body("company", 1, goal_id="c_rev", objective_id="grow"), w.hr())
        assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
        bad = await w.client.patch(f"{w.base}/goals/c_rev", json={"stretch_value": 50}, headers=w.hr())
        assert bad.status_code == 422 and bad.json()["field"] == "stretch_value"


async def test_freeze_refuses_every_edit_with_409(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        frozen = await w.post("/freeze", None, w.hr(), expect=200)
        assert frozen.json()["goals_by_status"] == {"draft": 7, "submitted": 1, "approved": 0, "returned": 0}
        attempts = [
            w.client.post(f"{w.base}/objectives", json={"name": "x", "perspective": "customer"}, headers=w.hr()),
            w.client.post(f"{w.base}/goals", json=goal_body("company", 1, objective_id="grow"), headers=w.hr()),
            w.client.patch(f"{w.base}/goals/i_s2", json={"weight": 50}, headers=w.as_("s2")),
            w.client.delete(f"{w.base}/goals/i_s2", headers=w.hr()),
            w.client.post(f"{w.base}/goals/i_s2/submit", headers=w.as_("s2")),
            w.client.post(f"{w.base}/goals/i_s1/approve", headers=w.manager("s_mgr")),
            w.client.put(
                f"{w.base}/settings", json={"period_start": "2026-01-01", "period_end": "2026-12-31"}, headers=w.hr()
            ),
        ]
        for attempt in attempts:
            response = await attempt
            assert response.status_code == 409, response.text
            assert "frozen" in response.json()["detail"] and "can no longer be changed" in response.json()["detail"]
        again = await w.post("/freeze", None, w.hr(), expect=200)
        assert again.json()["already_frozen"] is True
        settings_read = (await w.client.get(f"{w.base}/settings", headers=w.as_("s1"))).json()
        assert settings_read["frozen"] is True and settings_read["frozen_by"] == "hr"
        types = [e["type"] for e in await _events(w)]
        assert types == ["GoalSubmitted", "GoalsFrozen"]


async def test_transitions_are_written_to_the_outbox(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        await w.post("/goals/i_s1/return", {"comment": "target too low"}, w.manager("s_mgr"), expect=200)
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        await w.post("/goals/i_s1/approve", None, w.manager("s_mgr"), expect=200)
        events = await _events(w)
        assert [e["type"] for e in events] == ["GoalSubmitted", "GoalReturned", "GoalSubmitted", "GoalApproved"]
        returned = events[1]
        assert returned["cycle_id"] == w.cycle_id and returned["subject_id"] == "i_s1"
        assert returned["payload"]["comment"] == "target too low"
        assert returned["payload"]["from_status"] == "submitted" and returned["payload"]["to_status"] == "returned"
        assert returned["payload"]["actor"] == "s_mgr"
