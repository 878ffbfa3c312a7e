"""Improvement suggestion rules and comment themes, pure: each suggestion cites the data it compared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.evaluation import CollaborationCell
from services.committee.evidence import Link
from services.committee.facts import CheckInFact, DeviationFact, KpiFact
from services.committee.suggestions import (
    Scope,
    SuggestionRules,
    check_in_suggestions,
    collaboration_suggestions,
    competency_suggestions,
    kpi_gap_suggestions,
    leniency_suggestions,
    mean_competencies,
    stale_suggestions,
    team_kpi_gap_suggestions,
)
from services.committee.texts import term, text
from services.committee.themes import count_themes, words

NOW = datetime(2026, 3, 1, tzinfo=UTC)
RULES = SuggestionRules()


def kpi(kpi_id: str, attainment: float | None, **extra: Any) -> KpiFact:
    fields: dict[str, Any] = {
        "kpi_id": kpi_id,
        "name": kpi_id.title(),
        "level": "individual",
        "direction": "higher_is_better",
        "target_value": 100,
        "owner_department_id": "sales",
        "employee_id": "alice",
        "attainment_pct": attainment,
        "due_at": NOW,
    }
    return KpiFact(**(fields | extra))


def test_kpi_gaps_worst_first_with_their_trend_in_both_languages() -> None:
    kpis = [
        kpi("revenue", 45.0, trend_slope=-3.0),
        kpi("calls", 70.0, trend_slope=2.0),
        kpi("defects", 50.0, trend_slope=0.5, direction="lower_is_better"),
        kpi("nps", 95.0),
        kpi("new", None),
    ]
    found = kpi_gap_suggestions(cycle_id="c-1", scope=Scope.PERSON, subject_id="alice", kpis=kpis, rules=RULES)
    assert [s.suggestion_id for s in found] == ["kpi_gap:revenue", "kpi_gap:defects", "kpi_gap:calls"]
    revenue, defects, calls = found
    assert revenue.text.en.startswith("Revenue is at 45% of target and falling: agree a recovery plan")
    assert revenue.text.zh_Hans.startswith("Revenue目前为目标的45%，且呈下降趋势：请制定带里程碑的改进计划")
    assert defects.citations[0].values["trend"] == "worsening"  # a rising defect rate is worse
    assert calls.text.en.startswith("Calls is at 70% of target and rising:")
    (citation,) = revenue.citations
    assert citation.kind == "kpi_progress"
    assert citation.values["attainment_pct"] == 45.0 and citation.values["kpi_floor_pct"] == 80
    assert citation.link == Link(service="tracking", path="/v1/cycles/c-1/kpis/revenue/progress")
    strict = kpi_gap_suggestions(
        cycle_id="c-1", scope=Scope.PERSON, subject_id="alice", kpis=kpis, rules=SuggestionRules(kpi_floor_pct=48)
    )
    assert [s.suggestion_id for s in strict] == ["kpi_gap:revenue"]


def test_a_team_gap_needs_a_share_of_the_team() -> None:
    kpis = [kpi("a-rev", 40, employee_id="a"), kpi("b-rev", 90, employee_id="b"), kpi("c-rev", 60, employee_id="c")]
    members = ["a", "b", "c", "d"]
    (team,) = team_kpi_gap_suggestions(cycle_id="c-1", manager_id="m", members=members, kpis=kpis, rules=RULES)
    assert team.text.en.startswith("2 of 4 people in the team have KPIs below 80% of target")
    assert team.text.zh_Hans.startswith("团队4人中有2人的KPI低于目标的80%")
    assert [c.subject for c in team.citations] == ["a-rev", "c-rev"]
    high = SuggestionRules(team_share=0.6)
    assert team_kpi_gap_suggestions(cycle_id="c-1", manager_id="m", members=members, kpis=kpis, rules=high) == []


def test_stale_data_and_missed_check_ins_cite_their_source() -> None:
    kpis = [kpi("revenue", 50, stale=True, owner_department_id="finance"), kpi("calls", 90)]
    (stale,) = stale_suggestions(
        cycle_id="c-1", scope=Scope.PERSON, subject_id="alice", kpis=kpis, departments={"finance": "Finance"}
    )
    assert stale.text.en == (
        "Revenue has had stale data since 2026-03-01: ask Finance (data owner) to restore the feed."
    )
    assert stale.text.zh_Hans == "Revenue自2026-03-01起数据未按时更新：请联系Finance(数据负责部门)恢复数据。"
    assert stale.citations[0].link.path == "/v1/cycles/c-1/stale-kpis"
    cadence = {
        "calls": CheckInFact(
            kpi_id="calls",
            cadence_days=14,
            last_check_in_at=NOW - timedelta(days=20),
            next_due_at=NOW - timedelta(days=6),
            overdue=True,
        ),
        "revenue": CheckInFact(kpi_id="revenue", cadence_days=14, next_due_at=NOW + timedelta(days=3), overdue=False),
    }
    (missed,) = check_in_suggestions(
        cycle_id="c-1", scope=Scope.PERSON, subject_id="alice", kpis=kpis, check_ins=cadence
    )
    assert missed.suggestion_id == "check_in_missed:calls"
    assert missed.text.en.startswith("No check-in on Calls since 2026-02-09 (every 14 days)")
    assert missed.text.zh_Hans.startswith("Calls自2026-02-09起未进行进度更新(应每14天一次)")
    assert missed.citations[0].link.path == "/v1/cycles/c-1/kpis/calls/check-ins"


def test_competency_gaps_against_the_team_mean() -> None:
    team = mean_competencies([{"delivery": 4.0, "collaboration": 4.5}, {"delivery": 3.0, "collaboration": 3.5}])
    assert team == {"delivery": 3.5, "collaboration": 4.0}
    found = competency_suggestions(
        scope=Scope.PERSON,
        subject_id="alice",
        own={"delivery": 3.2, "collaboration": 2.5},
        reference=team,
        reference_size=2,
        rules=RULES,
        link=Link(service="evaluation", path="/v1/cycles/c-1/reviews/alice/summary"),
        names={"collaboration": "Collaborates across teams"},
    )
    (gap,) = found  # delivery is 0.3 below: under the 0.5 gap
    assert gap.text.en.startswith("Collaborates across teams: 2.5 against the team's 4.0")
    assert gap.text.zh_Hans.startswith("能力素质“Collaborates across teams”：2.5，团队平均4.0")
    assert gap.citations[0].values == {"score": 2.5, "reference_mean": 4.0, "reference_size": 2, "competency_gap": 0.5}


def cell(rater: str, rated: str, score: float, comments: list[str], **dims: float) -> CollaborationCell:
    values = {"responsiveness": score, "data_quality": score, "reliability": score} | dims
    return CollaborationCell(
        rater_department_id=rater, rated_department_id=rated, overall=score, ratings=1, comments=comments, **values
    )


def test_the_weakest_dimension_and_the_comment_themes_in_both_languages() -> None:
    cells = [
        cell("sales", "it", 3.0, ["Responses are slow, we wait days", "数据总是延迟，沟通不及时"], responsiveness=2.0),
        cell("finance", "it", 3.4, ["报表口径不一致，经常出错", "Numbers are often wrong"], responsiveness=2.6),
        cell("it", "sales", 1.0, ["not about IT"]),
    ]
    found = collaboration_suggestions(
        cycle_id="c-1", department_id="it", department_name="IT", cells=cells, rules=RULES
    )
    assert [s.suggestion_id for s in found] == [
        "collaboration_dimension:responsiveness",
        "comment_theme:data_quality",
        "comment_theme:responsiveness",
    ]
    dimension, data_theme, speed_theme = found
    assert dimension.text.en.startswith("Other departments rate IT's responsiveness 2.3 of 5: agree a response-time")
    assert dimension.text.zh_Hans.startswith("其他部门对IT的响应速度部门协作评分为2.3/5：约定响应时限")
    assert dimension.citations[0].values["rater_departments"] == 2
    assert data_theme.citations[0].values == {
        "mentions": 2,
        "english": 1,
        "chinese": 1,
        "keywords": "wrong, 不一致, 出错, 口径",
        "theme_mentions": 2,
    }
    assert data_theme.text.zh_Hans.startswith("有2条关于IT的评论提到数据错误：针对反复出现的数据错误开展联合根因分析")
    assert speed_theme.text.en.startswith("2 comment(s) about IT mention slow responses:")
    assert collaboration_suggestions(
        cycle_id="c-1", department_id="it", department_name="IT", cells=cells, rules=SuggestionRules(theme_mentions=3)
    ) == [dimension]


def test_lenient_or_strict_department_ratings() -> None:
    deviation = DeviationFact(
        company_mean=3.2,
        z_threshold=1.0,
        by_department=[{"group_id": "sales", "count": 6, "mean": 2.4, "z_score": -1.6, "flag": "strict"}],
    )
    (found,) = leniency_suggestions(cycle_id="c-1", department_id="sales", department_name="Sales", deviation=deviation)
    assert found.text.en.startswith("Sales's ratings are strict (mean 2.40, -1.6 standard deviations)")
    assert found.text.zh_Hans.startswith("Sales为严格评分人(平均分2.40，偏离-1.6个标准差)")
    assert leniency_suggestions(cycle_id="c-1", department_id="it", department_name="IT", deviation=deviation) == []


def test_themes_counted_once_per_comment_in_either_language() -> None:
    english, chinese = words("交接不清楚，沟通不及时")
    assert english == [] and {"交接", "不清楚", "沟通", "不及时"} <= set(chinese)
    counts = {
        c.theme: c for c in count_themes(["Handover was unclear; 交接不清楚", "great work", "职责不清，互相推诿"])
    }
    assert counts["communication"].mentions == 1  # one comment, both languages: counted once
    assert (counts["communication"].english, counts["communication"].chinese) == (1, 1)
    assert counts["ownership"].mentions == 1 and counts["ownership"].keywords == ("互相推诿", "职责不清")
    assert set(counts) == {"communication", "ownership"}


def test_texts_render_terms_in_each_language() -> None:
    rendered = text("agenda.lagging_department", department="IT", done=1, total=4, stage=term("tracking"))
    assert (rendered.en, rendered.zh_Hans) == ("IT: 1 of 4 done in tracking", "IT：过程跟踪阶段已完成1/4")
    assert term("a_stage_added_later").zh_Hans == "a_stage_added_later"
