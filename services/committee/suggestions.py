"""Improvement suggestions (绩效改进方案) for a person, a team and a department, from data, by explicit rules.

Pure. Each rule reads facts the services answered and the thresholds (``SuggestionRules``, every
one configurable per request) and returns suggestions that cite the data they stand on, with a
link to it, in English and Chinese. No model, no weights to learn: a suggestion appears exactly
when its rule's comparison holds, and the citation shows the numbers compared.

=========================  ====================================================================
rule                       fires when
=========================  ====================================================================
``kpi_gap``                a KPI with data is below ``kpi_floor_pct`` % of its target (the
                           trend, from tracking's slope and the KPI's direction, is cited)
``kpi_gap_team``           at least ``team_share`` of a team has a ``kpi_gap``
``stale_data``             a KPI of the subject is stale (no data by its owner's deadline)
``check_in_missed``        a KPI's check-in is overdue for its cadence
``competency_gap``         a person's competency (manager's rating) is ``competency_gap`` or more
                           below their team's mean; a team's below its department's
``collaboration_dimension``  a department's weakest collaboration dimension, as rated by the
                           other departments, is below ``collaboration_floor`` (1-5)
``comment_theme``          ``theme_mentions`` or more comments about a department mention a theme
                           (English and Chinese counted, ``themes.py``)
``rater_leniency``         evaluation flags the department's ratings lenient or strict
=========================  ====================================================================
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.evaluation import CollaborationCell
from services.committee.agenda import DIMENSIONS, weighted_mean
from services.committee.evidence import Citation, Link, Value
from services.committee.facts import CheckInFact, DeviationFact, KpiFact
from services.committee.texts import Text, term, text
from services.committee.themes import count_themes

__all__ = [
    "Scope",
    "Suggestion",
    "SuggestionRule",
    "SuggestionRules",
    "check_in_suggestions",
    "collaboration_suggestions",
    "competency_suggestions",
    "kpi_gap_suggestions",
    "leniency_suggestions",
    "mean_competencies",
    "stale_suggestions",
    "team_kpi_gap_suggestions",
]


class SuggestionRules(BaseModel):
    """The thresholds; every field is a query parameter of the suggestion routes."""

    model_config = ConfigDict(extra="forbid")

    kpi_floor_pct: float = Field(default=80, ge=0, le=200, description="A KPI below this % of target has a gap.")
    team_share: float = Field(default=0.3, gt=0, le=1, description="Share of a team with gaps that makes it a team's.")
    competency_gap: float = Field(default=0.5, gt=0, le=10, description="Points below the reference (own scale).")
    collaboration_floor: float = Field(default=3.5, ge=1, le=5, description="A dimension below this (1-5) is weak.")
    theme_mentions: int = Field(default=2, ge=1, le=1000, description="Comments that make a theme worth acting on.")


class Scope(StrEnum):
    PERSON = "person"
    TEAM = "team"
    DEPARTMENT = "department"


class SuggestionRule(StrEnum):
    KPI_GAP = "kpi_gap"
    KPI_GAP_TEAM = "kpi_gap_team"
    STALE_DATA = "stale_data"
    CHECK_IN_MISSED = "check_in_missed"
    COMPETENCY_GAP = "competency_gap"
    COLLABORATION_DIMENSION = "collaboration_dimension"
    COMMENT_THEME = "comment_theme"
    RATER_LENIENCY = "rater_leniency"


class Suggestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suggestion_id: str = Field(description="The rule and its subject, e.g. 'kpi_gap:rev-alice'.")
    rule: SuggestionRule
    scope: Scope
    subject_id: str = Field(description="The person, the team's manager or the department.")
    text: Text
    citations: list[Citation]


def _suggestion(
    rule: SuggestionRule,
    subject: str,
    *,
    scope: Scope,
    subject_id: str,
    text: Text,
    kind: str,
    values: dict[str, Value],
    link: Link,
) -> Suggestion:
    """A suggestion about ``subject`` standing on one piece of data (the cited values and their link)."""
    return Suggestion(
        suggestion_id=f"{rule.value}:{subject}",
        rule=rule,
        scope=scope,
        subject_id=subject_id,
        text=text,
        citations=[Citation(kind=kind, subject=subject, values=values, link=link)],
    )


def _kpi_link(cycle_id: str, kpi_id: str, tail: str = "progress") -> Link:
    return Link(service="tracking", path=f"/v1/cycles/{cycle_id}/kpis/{kpi_id}/{tail}")


def _kpi_values(kpi: KpiFact, rules: SuggestionRules) -> dict[str, Value]:
    return {
        "attainment_pct": kpi.attainment_pct,
        "kpi_floor_pct": rules.kpi_floor_pct,
        "current_value": kpi.current_value,
        "target_value": kpi.target_value,
        "trend_slope": kpi.trend_slope,
        "trend": kpi.trend,
        "direction": kpi.direction.value,
    }


def _gaps(kpis: Iterable[KpiFact], rules: SuggestionRules) -> list[KpiFact]:
    found = [k for k in kpis if k.attainment_pct is not None and k.attainment_pct < rules.kpi_floor_pct]
    return sorted(found, key=lambda k: (k.attainment_pct or 0, k.kpi_id))


def kpi_gap_suggestions(
    *, cycle_id: str, scope: Scope, subject_id: str, kpis: Iterable[KpiFact], rules: SuggestionRules
) -> list[Suggestion]:
    """One suggestion per KPI below the floor, worst first."""
    return [
        _suggestion(
            SuggestionRule.KPI_GAP,
            kpi.kpi_id,
            scope=scope,
            subject_id=subject_id,
            text=text("suggest.kpi_gap", kpi=kpi.name, attainment=kpi.attainment_pct, trend=term(f"trend.{kpi.trend}")),
            kind="kpi_progress",
            values=_kpi_values(kpi, rules),
            link=_kpi_link(cycle_id, kpi.kpi_id),
        )
        for kpi in _gaps(kpis, rules)
    ]


def team_kpi_gap_suggestions(
    *, cycle_id: str, manager_id: str, members: Sequence[str], kpis: Iterable[KpiFact], rules: SuggestionRules
) -> list[Suggestion]:
    """One suggestion when at least ``team_share`` of the team's members have a KPI gap (citing each gap)."""
    gaps = [k for k in _gaps(kpis, rules) if k.employee_id in members]
    people = sorted({k.employee_id for k in gaps if k.employee_id})
    if not members or not people or len(people) / len(members) < rules.team_share:
        return []
    return [
        Suggestion(
            suggestion_id=f"kpi_gap_team:{manager_id}",
            rule=SuggestionRule.KPI_GAP_TEAM,
            scope=Scope.TEAM,
            subject_id=manager_id,
            text=text("suggest.kpi_gap_team", count=len(people), size=len(members), floor=rules.kpi_floor_pct),
            citations=[
                Citation(
                    kind="kpi_progress",
                    subject=kpi.kpi_id,
                    values=_kpi_values(kpi, rules) | {"employee_id": kpi.employee_id, "team_share": rules.team_share},
                    link=_kpi_link(cycle_id, kpi.kpi_id),
                )
                for kpi in gaps
            ],
        )
    ]


def stale_suggestions(
    *,
    cycle_id: str,
    scope: Scope,
    subject_id: str,
    kpis: Iterable[KpiFact],
    departments: Mapping[str, str],
) -> list[Suggestion]:
    """One suggestion per stale KPI of the subject, asking its data owner for the data."""
    return [
        _suggestion(
            SuggestionRule.STALE_DATA,
            kpi.kpi_id,
            scope=scope,
            subject_id=subject_id,
            text=text(
                "suggest.stale_data",
                kpi=kpi.name,
                due=kpi.due_at.date().isoformat(),
                owner=departments.get(kpi.owner_department_id, kpi.owner_department_id),
            ),
            kind="stale_kpis",
            values={"stale": True, "due_at": kpi.due_at.isoformat(), "owner": kpi.owner_department_id},
            link=Link(service="tracking", path=f"/v1/cycles/{cycle_id}/stale-kpis"),
        )
        for kpi in sorted(kpis, key=lambda k: k.kpi_id)
        if kpi.stale
    ]


def check_in_suggestions(
    *,
    cycle_id: str,
    scope: Scope,
    subject_id: str,
    kpis: Iterable[KpiFact],
    check_ins: Mapping[str, CheckInFact],
) -> list[Suggestion]:
    """One suggestion per KPI whose check-in is overdue for its cadence."""
    overdue = [(k, check_ins[k.kpi_id]) for k in sorted(kpis, key=lambda k: k.kpi_id) if k.kpi_id in check_ins]
    return [
        _suggestion(
            SuggestionRule.CHECK_IN_MISSED,
            kpi.kpi_id,
            scope=scope,
            subject_id=subject_id,
            text=text(
                "suggest.check_in_missed",
                kpi=kpi.name,
                last=cadence.last_check_in_at.date().isoformat() if cadence.last_check_in_at else "-",
                cadence=cadence.cadence_days,
            ),
            kind="check_ins",
            values={
                "cadence_days": cadence.cadence_days,
                "last_check_in_at": cadence.last_check_in_at.isoformat() if cadence.last_check_in_at else None,
                "next_due_at": cadence.next_due_at.isoformat(),
                "overdue": True,
            },
            link=_kpi_link(cycle_id, kpi.kpi_id, "check-ins"),
        )
        for kpi, cadence in overdue
        if cadence.overdue
    ]


def mean_competencies(ratings: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Each competency's mean over the people rated on it."""
    columns: dict[str, list[float]] = {}
    for person in ratings:
        for competency, score in person.items():
            columns.setdefault(competency, []).append(score)
    return {competency: statistics.fmean(scores) for competency, scores in columns.items()}


def competency_suggestions(
    *,
    scope: Scope,
    subject_id: str,
    own: Mapping[str, float],
    reference: Mapping[str, float],
    reference_size: int,
    rules: SuggestionRules,
    link: Link,
    names: Mapping[str, str],
) -> list[Suggestion]:
    """One suggestion per competency ``competency_gap`` or more below the reference mean
    (a person against their team; a team against its department)."""
    key = "suggest.competency_gap" if scope is Scope.PERSON else "suggest.competency_gap_team"
    gaps = sorted(
        (
            (competency, score, reference[competency])
            for competency, score in own.items()
            if competency in reference and reference[competency] - score >= rules.competency_gap
        ),
        key=lambda gap: (gap[1] - gap[2], gap[0]),
    )
    return [
        _suggestion(
            SuggestionRule.COMPETENCY_GAP,
            competency,
            scope=scope,
            subject_id=subject_id,
            text=text(key, competency=names.get(competency, competency), score=score, reference=mean),
            kind="review_summary",
            values={
                "score": round(score, 4),
                "reference_mean": round(mean, 4),
                "reference_size": reference_size,
                "competency_gap": rules.competency_gap,
            },
            link=link,
        )
        for competency, score, mean in gaps
    ]


def collaboration_suggestions(
    *,
    cycle_id: str,
    department_id: str,
    department_name: str,
    cells: Iterable[CollaborationCell],
    rules: SuggestionRules,
) -> list[Suggestion]:
    """The department's weakest dimension as the others rate it, and the themes of their comments."""
    received = [c for c in cells if c.rated_department_id == department_id and c.rater_department_id != department_id]
    if not received:
        return []
    link = Link(service="evaluation", path=f"/v1/cycles/{cycle_id}/collaboration-matrix")
    scores = {d: weighted_mean(received, d) for d in DIMENSIONS}
    weakest = min(DIMENSIONS, key=lambda d: (scores[d], d))
    suggestions = []
    if scores[weakest] < rules.collaboration_floor:
        suggestions.append(
            _suggestion(
                SuggestionRule.COLLABORATION_DIMENSION,
                weakest,
                text=text(
                    "suggest.collaboration_dimension",
                    department=department_name,
                    dimension=term(weakest),
                    score=scores[weakest],
                    action=term(f"action.{weakest}"),
                ),
                kind="collaboration_matrix",
                values={
                    "score": round(scores[weakest], 4),
                    "collaboration_floor": rules.collaboration_floor,
                    "rater_departments": len(received),
                    "ratings": sum(c.ratings for c in received),
                },
                scope=Scope.DEPARTMENT,
                subject_id=department_id,
                link=link,
            )
        )
    for theme in count_themes(comment for c in received for comment in c.comments):
        if theme.mentions >= rules.theme_mentions:
            suggestions.append(
                _suggestion(
                    SuggestionRule.COMMENT_THEME,
                    theme.theme,
                    text=text(
                        "suggest.comment_theme",
                        mentions=theme.mentions,
                        department=department_name,
                        theme=term(f"theme.{theme.theme}"),
                        action=term(f"action.theme.{theme.theme}"),
                    ),
                    kind="collaboration_comments",
                    values={
                        "mentions": theme.mentions,
                        "english": theme.english,
                        "chinese": theme.chinese,
                        "keywords": ", ".join(theme.keywords),
                        "theme_mentions": rules.theme_mentions,
                    },
                    scope=Scope.DEPARTMENT,
                    subject_id=department_id,
                    link=link,
                )
            )
    return suggestions


def leniency_suggestions(
    *, cycle_id: str, department_id: str, department_name: str, deviation: DeviationFact | None
) -> list[Suggestion]:
    """The department's ratings flagged lenient or strict by evaluation's deviation report."""
    group = next((g for g in (deviation.by_department if deviation else []) if g.group_id == department_id), None)
    if deviation is None or group is None or group.flag not in ("lenient", "strict"):
        return []
    return [
        _suggestion(
            SuggestionRule.RATER_LENIENCY,
            department_id,
            scope=Scope.DEPARTMENT,
            subject_id=department_id,
            text=text(
                "suggest.rater_leniency",
                department=department_name,
                flag=term(group.flag),
                mean=group.mean,
                z=group.z_score,
            ),
            kind="calibration_deviation",
            values={
                "flag": group.flag,
                "mean": group.mean,
                "company_mean": deviation.company_mean,
                "z_score": group.z_score,
                "z_threshold": deviation.z_threshold,
            },
            link=Link(service="evaluation", path=f"/v1/cycles/{cycle_id}/calibration/deviation"),
        )
    ]
