"""Who answers for stale data, and key results without a metric, over a real tracking app and database.

* The pending report hands each stale KPI to exactly one of the cycle's department workflows (the
  nearest at or above its data owner; for an owner outside the cycle, the department it counts for)
  and names the person who must send the data: the owner's data steward, else its head.
* A key result without a metric (``metric = ""``) gets its current value through a check-in, counts
  like a metric event (aggregation, trend, back-fill), is never stale for want of events, and is in
  the progress export evaluation scores from.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.goals import Aggregation, Direction, ExportedGoal, GoalLevel, KpiCatalog, KpiDefinition
from contracts.org import DataOwnerDirectory, DataOwnerRef
from contracts.tracking import ProgressExport
from services.common.settings import Settings
from services.cycles.service import sample_template
from services.evaluation.scoring import goal_attainment, goal_score
from services.tracking import service
from services.tracking.app import create_app
from services.tracking.rules import responsible_department
from tests.integration.test_tracking_api import SNAPSHOT
from tests.support import api_client, auth

CYCLE = "cycle-1"  # the cycle of test_tracking_api's SNAPSHOT (sales: head carol; alice and bob)


def definition(kpi_id: str, owner: str, metric: str | None = None, **extra: Any) -> KpiDefinition:
    fields: dict[str, Any] = {
        "kpi_id": kpi_id,
        "level": GoalLevel.DEPARTMENT,
        "name": kpi_id,
        "metric": metric if metric is not None else f"{owner.split('-')[0]}.{kpi_id.replace('-', '_')}",
        "unit": "x",
        "aggregation": Aggregation.SUM,
        "direction": Direction.HIGHER_IS_BETTER,
        "start_value": 0,
        "target_value": 100,
        "owner_department_id": owner,
        "update_frequency_hours": 24,
        "department_id": "sales",
    }
    return KpiDefinition(**(fields | extra))


def catalog(kpis: list[KpiDefinition], cycle_id: str = CYCLE) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return KpiCatalog(
        cycle_id=cycle_id, period_start=today - timedelta(days=10), period_end=today + timedelta(days=80), kpis=kpis
    ).model_dump(mode="json")


def department(department_id: str, head: str, parent: str | None = "executive", steward: str | None = None) -> Any:
    return DataOwnerRef(
        department_id=department_id,
        name=department_id,
        parent_id=parent,
        head_employee_id=head,
        data_steward_id=steward,
    )


DIRECTORY = DataOwnerDirectory(
    cycle_id=CYCLE,
    cycle_department_ids=["sales", "marketing"],
    departments=[
        department("executive", "ceo", parent=None),
        department("sales", "carol"),
        department("sales-domestic", "dora", parent="sales", steward="sam"),
        department("marketing", "mia"),
        department("finance", "fin", steward="fiona"),
        department("it", "ian"),
    ],
)


def app_factory() -> Any:
    return functools.partial(create_app, run_consumer=False, staleness_interval=0)


def test_each_kpi_is_reminded_by_exactly_one_cycle_department() -> None:
    parents = {d.department_id: d.parent_id for d in DIRECTORY.departments} | {"loop-a": "loop-b", "loop-b": "loop-a"}
    cycle = {"sales", "marketing"}

    def owner(department: str, *counts_for: str | None) -> str | None:
        return responsible_department(
            owner_department_id=department, counts_for=counts_for, parents=parents, cycle_departments=cycle
        )

    assert owner("sales-domestic") == "sales"  # a sub-department: its cycle ancestor
    assert owner("finance", "sales") == "sales"  # outside the cycle: the department the KPI counts for
    assert owner("finance", None, "marketing") == "marketing"  # ... or its person's
    assert owner("finance") == "marketing"  # a company KPI owned outside: the cycle's first department
    assert owner("loop-a", "sales-domestic") == "sales"  # a broken tree ends the walk
    assert responsible_department(owner_department_id="x", counts_for=(), parents={}, cycle_departments=set()) is None


async def test_pending_names_the_data_steward_and_covers_owners_outside_the_cycle(
    settings: Settings, database_url: str
) -> None:
    hr = auth(settings, "hr_admin")
    kpis = [
        definition("domestic-orders", "sales-domestic"),  # sub-department, named steward
        definition("fx-rate", "finance"),  # outside, counts for sales
        definition("uptime", "it", department_id=None, level=GoalLevel.INDIVIDUAL, employee_id="alice"),
        definition("cash", "finance", department_id=None, level=GoalLevel.COMPANY),  # company KPI owned outside
        definition("revenue", "sales"),  # no steward: the head
        definition("nps", "sales", metric=""),  # a key result: no data SLA
    ]
    async with api_client(app_factory(), settings, database_url) as client:
        base = f"/v1/cycles/{CYCLE}"
        assert (await client.put(f"{base}/participants", json=SNAPSHOT.model_dump(mode="json"), headers=hr)).is_success
        assert (await client.put(f"{base}/kpis", json=catalog(kpis), headers=hr)).is_success
        wrong = await client.put("/v1/cycles/other/data-owners", json=DIRECTORY.model_dump(mode="json"), headers=hr)
        assert wrong.status_code == 422 and wrong.json()["field"] == "cycle_id"
        later = datetime.now(UTC) + timedelta(days=3)
        session_factory = client.app.state.sessions  # type: ignore[attr-defined]

        async def pending(department: str) -> dict[str, str | None]:
            async with session_factory() as session:
                report = await service.pending_report(
                    session=session, cycle_id=CYCLE, department_id=department, now=later
                )
            assert report.total == report.done + len(report.pending)
            return {i.item_id: i.owner_id for i in report.pending}

        # before the directory arrives: each department reports what it owns, to its snapshot head
        assert await pending("sales") == {"revenue": "carol"}
        accepted = await client.put(f"{base}/data-owners", json=DIRECTORY.model_dump(mode="json"), headers=hr)
        assert accepted.status_code == 200 and accepted.json()["departments"] == 6
        assert await pending("sales") == {
            "domestic-orders": "sam",
            "fx-rate": "fiona",
            "uptime": "ian",
            "revenue": "carol",
        }
        assert await pending("marketing") == {"cash": "fiona"}
        assert await pending("finance") == {}  # no workflow runs for finance: nothing is reported twice


async def test_a_key_result_without_a_metric_gets_its_value_by_check_in_and_scores(
    settings: Settings, database_url: str
) -> None:
    hr = auth(settings, "hr_admin")
    carol = auth(settings, "manager", sub="carol", employee_id="carol", department_id="sales")
    alice = auth(settings, "employee", sub="alice", employee_id="alice", department_id="sales")
    key_result = definition("nps", "sales", metric="", aggregation=Aggregation.LAST, target_value=50)
    async with api_client(app_factory(), settings, database_url) as client:
        base = f"/v1/cycles/{CYCLE}"
        assert (await client.put(f"{base}/participants", json=SNAPSHOT.model_dump(mode="json"), headers=hr)).is_success
        assert (
            await client.put(f"{base}/kpis", json=catalog([key_result, definition("revenue", "sales")]), headers=hr)
        ).is_success

        def check_in(value: Any, kpi_id: str = "nps", headers: dict[str, str] = carol) -> Any:
            body = {"kpi_id": kpi_id, "comment": "survey in", "confidence": 3, "value": value}
            return client.post(f"{base}/check-ins", json=body, headers=headers)

        assert (await check_in(30)).status_code == 201
        second = await check_in(40)
        assert second.status_code == 201 and second.json()["value"] == 40
        refused = await check_in(5, kpi_id="revenue")
        assert refused.status_code == 422 and refused.json()["field"] == "value"
        assert "metric" in refused.json()["detail"]
        infinite = '{"kpi_id": "nps", "comment": "x", "confidence": 3, "value": Infinity}'
        as_json = {**carol, "Content-Type": "application/json"}
        assert (await client.post(f"{base}/check-ins", content=infinite, headers=as_json)).status_code == 422
        assert (await check_in(10, headers=alice)).status_code == 403  # a department KR: its managers and head

        progress = (await client.get(f"{base}/kpis/nps/progress", headers=hr)).json()
        assert progress["current_value"] == 40 and progress["event_count"] == 2 and progress["stale"] is False
        assert progress["attainment_pct"] == 80 and sum(p["event_count"] for p in progress["trend"]) == 2
        listed = (await client.get(f"{base}/kpis/nps/check-ins", headers=hr)).json()
        assert [i["value"] for i in listed["items"]] == [40, 30]

        # re-mapped (another frequency): its aggregate is rebuilt from the check-ins, like events are
        remapped = await client.put(
            f"{base}/kpis", json=catalog([key_result.model_copy(update={"update_frequency_hours": 48})]), headers=hr
        )
        assert remapped.json()["backfilled_events"] == 2
        later = datetime.now(UTC) + timedelta(days=30)
        async with client.app.state.sessions() as session:  # type: ignore[attr-defined]
            report = await service.pending_report(session=session, cycle_id=CYCLE, department_id="sales", now=later)
        assert report.total == 0 and report.pending == []  # never stale for want of metric events

        export = ProgressExport.model_validate((await client.get(f"{base}/progress-export", headers=hr)).json())
        actuals = {a.kpi_id: a for a in export.actuals}
        assert actuals["nps"].actual_value == 40 and actuals["nps"].event_count == 2

    # evaluation scores it like any KPI (its goal export names the KR as its own KPI)
    scoring = sample_template().scoring
    goal = ExportedGoal(
        goal_id="nps",
        level=GoalLevel.DEPARTMENT,
        name="NPS",
        department_id="sales",
        kpi_id="nps",
        weight=100,
        unit="pts",
        direction=Direction.HIGHER_IS_BETTER,
        start_value=0,
        target_value=50,
    )
    scored = goal_score(
        [goal_attainment(goal, actual=actuals["nps"].actual_value, cap=1.5, scale=scoring.rating_scale)]
    )
    assert scored.score == pytest.approx(0.8) and scored.goals[0].method == "linear"
