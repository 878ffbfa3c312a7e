"""Goal tree roll-up (numbers computed by hand), progress intake, and the exports for other stages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.cycle import PendingReport
from contracts.goals import GoalExport, KpiCatalog
from contracts.tracking import KpiActual, ProgressExport
from services.common.settings import Settings
from tests.integration.test_goals_helpers import GoalsWorld, seeded


def _find(node: dict[str, Any], goal_id: str) -> dict[str, Any] | None:
    if node.get("goal_id") == goal_id:
        return node
    for child in node.get("children", []) + node.get("kpis", []):
        found = _find(child, goal_id)
        if found is not None:
            return found
    return None


def find(tree: dict[str, Any], goal_id: str) -> dict[str, Any]:
    for objective in tree["objectives"]:
        found = _find(objective, goal_id)
        if found is not None:
            return found
    raise AssertionError(f"{goal_id} not in tree")


async def _push(w: GoalsWorld, actuals: dict[str, float | None]) -> dict[str, Any]:
    export = ProgressExport(
        cycle_id=w.cycle_id,
        as_of=datetime(2026, 6, 30, tzinfo=UTC),
        actuals=[KpiActual(kpi_id=k, actual_value=v, event_count=3) for k, v in actuals.items()],
    )
    response = await w.client.put(
        f"{w.base}/progress", content=export.model_dump_json(), headers={**w.hr(), "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_tree_rolls_up_progress_as_weighted_means(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        accepted = await _push(
            w, {"i_s1": 50, "i_s2": 200, "d_sales_rev": 40, "i_f1": 90, "d_fin_cost": 85, "ghost": 1}
        )
        assert accepted["updated"] == 5 and accepted["unknown_kpi_ids"] == ["ghost"]
        tree = (await w.client.get(f"{w.base}/tree", headers=w.hr())).json()
        # leaves: (actual - start) / (target - start), clamped to 0..1.5
        assert find(tree, "i_s1")["progress"] == pytest.approx(0.5)  # 50 / 100
        assert find(tree, "i_s2")["attainment"] == pytest.approx(1.5)  # 200 / 100 = 2.0 -> capped 1.5
        assert find(tree, "i_f1")["progress"] == pytest.approx(0.5)  # lower is better: (90-100)/(80-100)
        # d_sales_orders: no own data, children 100 x 0.5 and 100 x 1.5 -> 1.0
        orders = find(tree, "d_sales_orders")
        assert orders["actual_value"] is None and orders["progress"] == pytest.approx(1.0)
        # d_sales_rev: own attainment 40 / 100 = 0.4, no children
        assert find(tree, "d_sales_rev")["progress"] == pytest.approx(0.4)
        # d_fin_cost: own 0.75 (85), but the child's roll-up wins: 0.5
        fin = find(tree, "d_fin_cost")
        assert fin["attainment"] == pytest.approx(0.75) and fin["progress"] == pytest.approx(0.5)
        # c_rev = (70 x 0.4 + 30 x 1.0) / 100 = 0.58; c_cost = 0.5
        assert find(tree, "c_rev")["progress"] == pytest.approx(0.58)
        assert find(tree, "c_cost")["progress"] == pytest.approx(0.5)
        # company = objective = (60 x 0.58 + 40 x 0.5) / 100 = 0.548
        assert tree["objectives"][0]["progress"] == pytest.approx(0.548)
        assert tree["progress"] == pytest.approx(0.548)
        assert find(tree, "c_rev")["weight"] == 60 and find(tree, "i_s1")["parent_id"] == "d_sales_orders"

        # an employee sees the same numbers but only their own individual goal
        mine = (await w.client.get(f"{w.base}/tree", headers=w.as_("s1"))).json()
        orders = find(mine, "d_sales_orders")
        assert [c["goal_id"] for c in orders["children"]] == ["i_s1"]
        assert orders["progress"] == pytest.approx(1.0) and mine["progress"] == pytest.approx(0.548)
        # department filter keeps company KPIs and that department's goals
        finance = (await w.client.get(f"{w.base}/tree", params={"department_id": "finance"}, headers=w.hr())).json()
        assert find(finance, "c_rev")["children"] == []
        assert [c["goal_id"] for c in find(finance, "c_cost")["children"]] == ["d_fin_cost"]


async def test_scorecard_rolls_the_tree_up_per_perspective(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        # cost moves under its own objective in the internal-process perspective
        body = {"objective_id": "lean", "name": "Run lean", "perspective": "internal_process"}
        await w.post("/objectives", body, w.hr(), expect=201)
        moved = await w.client.patch(f"{w.base}/goals/c_cost", json={"objective_id": "lean"}, headers=w.hr())
        assert moved.status_code == 200, moved.text
        await _push(w, {"i_s1": 50, "i_s2": 200, "d_sales_rev": 40, "i_f1": 90, "d_fin_cost": 85})
        card = (await w.client.get(f"{w.base}/scorecard", headers=w.hr())).json()
        by = {p["perspective"]: p for p in card["perspectives"]}
        assert list(by) == ["financial", "customer", "internal_process", "learning_growth"]
        # the company KPIs as in the tree: c_rev 0.58 (weight 60) and c_cost 0.5 (weight 40)
        assert (by["financial"]["weight"], by["financial"]["progress"]) == (60.0, pytest.approx(0.58))
        assert (by["internal_process"]["weight"], by["internal_process"]["progress"]) == (40.0, pytest.approx(0.5))
        assert by["customer"] == {"perspective": "customer", "weight": 0.0, "progress": None, "objectives": []}
        assert card["progress"] == pytest.approx(0.548)  # the tree's company progress
        assert [(o["objective_id"], o["weight"]) for o in by["internal_process"]["objectives"]] == [("lean", 40.0)]

        # sales' own scorecard: its KPIs (70 x 0.4 + 30 x 1.0) all under revenue's financial perspective
        sales = (await w.client.get(f"{w.base}/scorecard", params={"department_id": "sales"}, headers=w.hr())).json()
        by = {p["perspective"]: p for p in sales["perspectives"]}
        assert (by["financial"]["weight"], by["financial"]["progress"]) == (100.0, pytest.approx(0.58))
        assert by["internal_process"]["progress"] is None and sales["progress"] == pytest.approx(0.58)
        # finance's KPI aligns to cost: internal process
        fin = await w.client.get(f"{w.base}/scorecard", params={"department_id": "finance"}, headers=w.as_("f1"))
        assert fin.status_code == 200
        assert {p["perspective"]: p["progress"] for p in fin.json()["perspectives"]}["internal_process"] == 0.5


async def test_kpi_catalog_needs_the_period_then_lists_every_metric_goal(settings: Settings, database_url: str) -> None:
    # no cycles service answers on port 9: the period stays unknown until PUT /settings
    no_cycles = settings.model_copy(update={"cycles_url": "http://127.0.0.1:9"})
    async with seeded(no_cycles, database_url) as w:
        await w.build_tree()
        missing = await w.client.get(f"{w.base}/kpi-catalog", headers=w.hr())
        assert missing.status_code == 409
        assert "the cycles service did not provide it; PUT /v1/cycles/" in missing.json()["detail"]
        bad = await w.client.put(
            f"{w.base}/settings", json={"period_start": "2026-12-31", "period_end": "2026-01-01"}, headers=w.hr()
        )
        assert bad.status_code == 422 and "must be after" in bad.json()["detail"]
        await w.client.put(
            f"{w.base}/settings", json={"period_start": "2026-01-01", "period_end": "2026-12-31"}, headers=w.hr()
        )
        response = await w.client.get(f"{w.base}/kpi-catalog", headers=w.as_("ops", "ops"))
        assert response.status_code == 200
        catalog = KpiCatalog.model_validate(response.json())
        assert str(catalog.period_start) == "2026-01-01" and len(catalog.kpis) == 8
        by_id = {k.kpi_id: k for k in catalog.kpis}
        assert by_id["i_f1"].owner_department_id == "finance" and by_id["i_f1"].employee_id == "f1"
        assert by_id["i_f1"].department_id == "finance" and by_id["i_f1"].direction == "lower_is_better"
        assert by_id["c_rev"].metric == "sales.revenue" and by_id["c_rev"].level == "company"
        assert by_id["d_sales_orders"].aggregation == "sum" and by_id["d_sales_orders"].update_frequency_hours == 24


async def test_goal_export_lists_only_approved_goals(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        empty = GoalExport.model_validate((await w.client.get(f"{w.base}/goal-export", headers=w.hr())).json())
        assert empty.goals == []
        await w.post("/goals/d_fin_cost/submit", None, w.head("f_head"), expect=200)
        await w.post("/goals/d_fin_cost/approve", None, w.head("ceo"), expect=200)  # not who submitted it
        await w.post("/goals/i_f1/submit", None, w.as_("f1"), expect=200)
        await w.post("/goals/i_f1/approve", None, w.manager("f_head"), expect=200)
        export = GoalExport.model_validate((await w.client.get(f"{w.base}/goal-export", headers=w.hr())).json())
        assert [(g.goal_id, g.level, g.parent_id) for g in export.goals] == [
            ("d_fin_cost", "department", "c_cost"),
            ("i_f1", "individual", "d_fin_cost"),
        ]
        shared = export.goals[0]
        assert shared.contributing_department_ids == ["sales"] and shared.kpi_id == "d_fin_cost"
        assert shared.weight == 100 and shared.direction == "lower_is_better"


async def test_pending_report_names_who_must_act(settings: Settings, database_url: str) -> None:
    async with seeded(settings, database_url) as w:
        await w.build_tree()
        await w.post("/goals/i_s1/submit", None, w.as_("s1"), expect=200)
        response = await w.client.get(
            f"{w.base}/pending", params={"department_id": "sales", "stage": "goal_setting"}, headers=w.hr()
        )
        report = PendingReport.model_validate(response.json())
        assert report.total == 6 and report.done == 0
        assert {(p.item_id, p.kind, p.owner_id) for p in report.pending} == {
            ("s_head", "goals_missing", "s_head"),
            ("s_mgr", "goals_missing", "s_mgr"),
            ("d_sales_orders", "department_kpi_submission", "s_head"),
            ("d_sales_rev", "department_kpi_submission", "s_head"),
            ("i_s1", "goal_approval", "s_mgr"),
            ("i_s2", "goal_submission", "s2"),
        }
        await w.post("/goals/i_s1/approve", None, w.manager("s_mgr"), expect=200)
        report = PendingReport.model_validate(
            (await w.client.get(f"{w.base}/pending", params={"department_id": "sales"}, headers=w.hr())).json()
        )
        assert report.done == 1 and len(report.pending) == 5
        wrong = await w.client.get(
            f"{w.base}/pending", params={"department_id": "sales", "stage": "evaluation"}, headers=w.hr()
        )
        assert wrong.status_code == 422 and "goal_setting" in wrong.json()["detail"]
        unknown = await w.client.get(f"{w.base}/pending", params={"department_id": "nope"}, headers=w.hr())
        assert unknown.status_code == 404
