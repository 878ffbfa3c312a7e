"""The committee's agenda rules, pure: each item from the data it stands on, in a fixed order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.committee import CommitteeFunction, DecisionStatus, MemberRole
from contracts.evaluation import CollaborationCell, CollaborationMatrix
from contracts.handoffs import Blocked, Incident
from contracts.tracking import StaleKpi, StaleKpiDepartment, StaleKpiReport
from contracts.workflow_io import CycleStatus, DepartmentProgress
from services.committee.agenda import AgendaFacts, AgendaKind, AgendaRules, build_agenda, pair_key, pair_scores
from services.committee.facts import AppealFact, DecisionFact, DeviationFact, DistributionFact, KpiFact
from services.committee.rules import Seat, TransitionError, composition_problems, next_decision_status

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DEPARTMENTS = {"sales": "Sales", "it": "IT", "finance": "Finance", "hr": "HR"}


def kpi(kpi_id: str, department: str, attainment: float | None, **extra: Any) -> KpiFact:
    return KpiFact(
        kpi_id=kpi_id,
        name=kpi_id.title(),
        level=extra.pop("level", "department"),
        direction="higher_is_better",
        target_value=100,
        owner_department_id=extra.pop("owner", department),
        department_id=department,
        attainment_pct=attainment,
        due_at=NOW,
        **extra,
    )


def cell(rater: str, rated: str, overall: float, ratings: int = 1, **dims: float) -> CollaborationCell:
    values = {"responsiveness": overall, "data_quality": overall, "reliability": overall} | dims
    return CollaborationCell(
        rater_department_id=rater, rated_department_id=rated, overall=overall, ratings=ratings, **values
    )


def facts(**fields: Any) -> AgendaFacts:
    return AgendaFacts(cycle_id="c-1", held_at=NOW, departments=DEPARTMENTS, **fields)


def kinds(facts_: AgendaFacts, rules: AgendaRules | None = None) -> list[str]:
    return [item.item_id for item in build_agenda(facts_, rules or AgendaRules())]


def test_blocked_stage_incident_and_lagging_departments_come_first() -> None:
    status = CycleStatus(
        cycle_id="c-1",
        stage="evaluation",
        paused=False,
        cancelled=False,
        next_deadline=None,
        departments=[
            DepartmentProgress(department_id="sales", total=10, done=2, pending=8),
            DepartmentProgress(department_id="it", total=10, done=6, pending=4),
            DepartmentProgress(department_id="hr", total=10, done=1, pending=9, outcome="forced"),
        ],
        stages_done=[],
        blocked=Blocked(reason="calibration is open", service="evaluation", unblock_by="hr_admin", action="close it"),
        incident=Incident(stage="evaluation", handoff="close_evaluation", error="no scores", opened_at="2026-03-01"),
    )
    items = build_agenda(facts(status=status), AgendaRules())
    assert [i.item_id for i in items] == [
        "blocked_stage:evaluation",
        "incident:close_evaluation",
        "lagging_department:sales",
    ]
    assert items[0].title.en == "Stage evaluation cannot end: calibration is open (hr_admin can unblock it: close it)"
    assert items[0].title.zh_Hans.startswith("绩效评估阶段无法结束")
    assert items[2].evidence == {"stage": "evaluation", "done": 2, "total": 10, "pending": 8, "lagging_share": 0.5}
    assert items[2].links[0].path == "/v1/cycles/c-1/status"


def test_kpis_off_track_by_department_with_their_trend_and_links() -> None:
    kpis = [
        kpi("revenue", "sales", 40.0, trend_slope=-2.0),
        kpi("margin", "sales", 65.0),
        kpi("uptime", "it", 95.0),
        kpi("no-data", "it", None),
        kpi("alice-goal", "sales", 10.0, level="individual", employee_id="alice"),
    ]
    (item,) = build_agenda(facts(kpis=kpis), AgendaRules())
    assert item.item_id == "kpi_off_track:sales" and item.department_ids == ["sales"]
    assert item.title.en == "Sales: 2 KPI(s) below 70% of target"
    assert item.title.zh_Hans == "Sales：2项KPI(关键绩效指标)低于目标的70%"
    assert item.evidence["kpis"] == [
        {"kpi_id": "revenue", "name": "Revenue", "attainment_pct": 40.0, "trend": "worsening"},
        {"kpi_id": "margin", "name": "Margin", "attainment_pct": 65.0, "trend": "flat"},
    ]
    assert [link.path for link in item.links] == [
        "/v1/cycles/c-1/kpis/revenue/progress",
        "/v1/cycles/c-1/kpis/margin/progress",
    ]
    assert kinds(facts(kpis=kpis), AgendaRules(off_track_pct=50)) == ["kpi_off_track:sales"]
    assert kinds(facts(kpis=kpis), AgendaRules(off_track_pct=30)) == []


def test_stale_data_by_data_owner() -> None:
    stale = StaleKpiReport(
        cycle_id="c-1",
        as_of=NOW,
        departments=[
            StaleKpiDepartment(
                department_id="finance",
                kpis=[
                    StaleKpi(
                        kpi_id="cost",
                        name="Cost",
                        metric="finance.cost",
                        owner_department_id="finance",
                        update_frequency_hours=24,
                        last_event_at=None,
                        due_at=NOW - timedelta(days=2),
                    )
                ],
            ),
            StaleKpiDepartment(department_id="it", kpis=[]),
        ],
    )
    (item,) = build_agenda(facts(stale=stale), AgendaRules())
    assert item.item_id == "stale_data:finance"
    assert item.title.en == "Finance (data owner): 1 KPI(s) with stale data"
    assert item.title.zh_Hans == "Finance(数据负责部门)：1项KPI数据未按时更新"


def test_weakest_pairs_weighted_by_ratings_with_the_trend_since_the_last_meeting() -> None:
    matrix = CollaborationMatrix(
        cycle_id="c-1",
        cells=[
            cell("sales", "it", 2.0, ratings=3, responsiveness=1.0),
            cell("it", "sales", 4.0, ratings=1),
            cell("finance", "hr", 3.0),
            cell("hr", "finance", 4.8),
            cell("sales", "finance", 4.5),
        ],
    )
    scores = pair_scores(matrix.cells)
    assert scores[pair_key("sales", "it")].overall == 2.5  # (2*3 + 4*1) / 4
    items = build_agenda(
        facts(matrix=matrix, previous_pairs={"it|sales": 3.0}), AgendaRules(weakest_pairs=5, weak_pair_overall=4)
    )
    assert [i.item_id for i in items] == ["weak_collaboration:it|sales", "weak_collaboration:finance|hr"]
    first = items[0]
    assert first.evidence["overall"] == 2.5 and first.evidence["change"] == -0.5
    assert first.evidence["weakest_dimension"] == "responsiveness"
    assert first.title.en == "Collaboration IT and Sales: 2.50 of 5 (down 0.50 since the last meeting)"
    assert first.title.zh_Hans == "IT与Sales的部门协作评分：2.50/5(较上次会议下降0.50)"
    assert items[1].evidence["change"] is None and items[1].title.en.endswith("3.90 of 5")
    assert kinds(facts(matrix=matrix), AgendaRules(weakest_pairs=1)) == ["weak_collaboration:it|sales"]


def test_calibration_outliers_and_lenient_or_strict_raters() -> None:
    deviation = DeviationFact(
        company_mean=3.2,
        z_threshold=1.0,
        by_department=[
            {"group_id": "sales", "count": 8, "mean": 4.1, "z_score": 1.8, "flag": "lenient"},
            {"group_id": "it", "count": 5, "mean": 3.1, "z_score": -0.2, "flag": None},
        ],
        by_manager=[{"group_id": "mgr-9", "count": 4, "mean": 2.1, "z_score": -2.2, "flag": "strict"}],
    )
    distribution = DistributionFact(total=20, violations=["exceeds: 40% above the 20% maximum"])
    items = build_agenda(facts(deviation=deviation, distribution=distribution), AgendaRules())
    assert [i.item_id for i in items] == [
        "calibration_distribution",
        "rater_deviation:department:sales",
        "rater_deviation:manager:mgr-9",
    ]
    assert items[1].title.en == "Sales rates leniently: mean 4.10 (+1.8 standard deviations)"
    assert items[1].title.zh_Hans == "Sales为宽松评分人：平均分4.10(偏离+1.8个标准差)"
    assert items[2].title.zh_Hans.startswith("mgr-9为严格评分人")


def test_open_appeals_overdue_decisions_and_unreadable_sources() -> None:
    appeals = [
        AppealFact(id=1, employee_id="a", department_id="sales", status="submitted", hr_due_at=NOW - timedelta(days=1)),
        AppealFact(id=2, employee_id="b", department_id="it", status="under_review", hr_due_at=NOW + timedelta(days=3)),
        AppealFact(id=3, employee_id="c", department_id="it", status="rejected", hr_due_at=NOW - timedelta(days=9)),
    ]
    decisions = [
        DecisionFact(decision_id="d-late", title="Fix feed", owner_id="olga", due_at=NOW - timedelta(days=1)),
        DecisionFact(decision_id="d-later", title="Plan", owner_id="olga", due_at=NOW + timedelta(days=1)),
    ]
    items = build_agenda(
        facts(appeals=appeals, decisions=decisions, unavailable={"cycles.status": "Temporal is unreachable"}),
        AgendaRules(),
    )
    assert [i.item_id for i in items] == ["open_appeals", "overdue_decision:d-late", "source_unavailable:cycles.status"]
    assert items[0].evidence == {"open": 2, "overdue": 1, "appeal_ids": [1, 2]}
    assert items[0].title.zh_Hans == "2项申诉待处理，其中1项已逾期"
    assert items[1].title.en == "Overdue decision 'Fix feed' (owner olga, due 2026-02-28)"
    assert items[2].kind is AgendaKind.SOURCE_UNAVAILABLE


# -- committee rules --------------------------------------------------------------------------------
def seat(employee: str, function: CommitteeFunction, role: MemberRole = MemberRole.MEMBER) -> Seat:
    return Seat(employee, function, role)


def test_a_committee_seats_every_function_one_chair_and_one_secretary() -> None:
    full = [
        seat("h", CommitteeFunction.HR, MemberRole.SECRETARY),
        seat("b", CommitteeFunction.BUSINESS, MemberRole.CHAIR),
        seat("f", CommitteeFunction.FINANCE),
        seat("i", CommitteeFunction.IT),
    ]
    assert composition_problems(full) == []
    problems = composition_problems([*full[:2], seat("b", CommitteeFunction.FINANCE, MemberRole.CHAIR)])
    assert problems == [
        "members: each person sits once; ['b'] appear more than once",
        "members: no seat for ['it']; HR, business, finance and IT each need at least one member",
        "members: a committee has exactly one chair, got 2",
    ]


def test_decision_transitions() -> None:
    assert next_decision_status(DecisionStatus.OPEN, DecisionStatus.DONE, by_owner_only=True) is DecisionStatus.DONE
    with pytest.raises(TransitionError, match="only the committee"):
        next_decision_status(DecisionStatus.OPEN, DecisionStatus.CANCELLED, by_owner_only=True)
    with pytest.raises(TransitionError, match="a done decision cannot become open"):
        next_decision_status(DecisionStatus.DONE, DecisionStatus.OPEN, by_owner_only=False)
