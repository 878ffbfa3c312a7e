"""Improvement suggestions for a person, a team and a department: read the data, apply the rules.

Scoping follows the cycle's org snapshot: a person's suggestions are visible to whoever may see
the person (themselves, their managers, their department head, HR); a team's to whoever may see
its manager; a department's to HR, ops and its head. Outside scope the subject does not exist (404).
The reads act for the caller, so the other services' audit logs name who asked.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from services.committee.evidence import Link
from services.committee.facts import KpiFact
from services.committee.schemas import SuggestionsRead, ThemeRead
from services.committee.service.org import org_view, sees_department
from services.committee.service.records import Clients, actor_of
from services.committee.sources import CycleData, attempt
from services.committee.suggestions import (
    Scope,
    Suggestion,
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
from services.committee.themes import count_themes
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.participants import OrgView

__all__ = ["department_suggestions", "person_suggestions", "team_suggestions"]


def _not_found(what: str) -> DomainError:
    return DomainError(f"{what} does not exist in this cycle", status_code=404)


async def _kpis_with_trends(
    data: CycleData, cycle_id: str, kpis: list[KpiFact], rules: SuggestionRules
) -> list[KpiFact]:
    """``kpis``, with the trend read for those below the floor (the only ones whose trend is cited)."""
    gaps = [k for k in kpis if k.attainment_pct is not None and k.attainment_pct < rules.kpi_floor_pct]
    trends = {k.kpi_id: k for k in await data.with_trends(cycle_id, gaps)}
    return [trends.get(k.kpi_id, k) for k in kpis]


async def _kpi_rules(
    data: CycleData,
    *,
    cycle_id: str,
    scope: Scope,
    subject_id: str,
    kpis: list[KpiFact],
    org: OrgView,
    owned: Iterable[KpiFact] = (),
) -> list[Suggestion]:
    """The rules every scope applies to its KPIs: stale data (also of the KPIs it ``owned`` as data
    owner) and missed check-ins (gaps differ by scope)."""
    names = {d.department_id: d.name for d in org.departments.values()}
    check_ins = await data.check_ins(cycle_id, kpis)
    stale = [*kpis, *owned]
    return [
        *stale_suggestions(cycle_id=cycle_id, scope=scope, subject_id=subject_id, kpis=stale, departments=names),
        *check_in_suggestions(cycle_id=cycle_id, scope=scope, subject_id=subject_id, kpis=kpis, check_ins=check_ins),
    ]


def _answer(
    cycle_id: str,
    scope: Scope,
    subject_id: str,
    rules: SuggestionRules,
    suggestions: Iterable[Suggestion],
    unavailable: dict[str, str],
    themes: list[ThemeRead] | None = None,
) -> SuggestionsRead:
    return SuggestionsRead(
        cycle_id=cycle_id,
        scope=scope,
        subject_id=subject_id,
        rules=rules,
        suggestions=list(suggestions),
        themes=themes or [],
        unavailable=unavailable,
    )


async def person_suggestions(
    *,
    session: AsyncSession,
    cycle_id: str,
    employee_id: str,
    rules: SuggestionRules,
    principal: Principal,
    clients: Clients,
) -> SuggestionsRead:
    data = clients.data(actor_of(principal))
    org = await org_view(session, cycle_id, data)
    person = org.participants.get(employee_id)
    if person is None or not org.can_see(principal, employee_id):
        raise _not_found(f"employee {employee_id!r}")
    unavailable: dict[str, str] = {}
    read = await attempt("tracking.progress", data.kpis(cycle_id, employee_id=employee_id), unavailable)
    kpis = await _kpis_with_trends(data, cycle_id, [k for k in read or [] if k.employee_id == employee_id], rules)
    team = [
        p.employee_id
        for p in org.participants.values()
        if person.manager_id and p.manager_id == person.manager_id and p.employee_id != employee_id
    ]
    ratings = await data.manager_ratings(cycle_id, [employee_id, *team])
    own = ratings.get(employee_id)
    teammates = [ratings[e].competencies for e in team if e in ratings]
    suggestions = [
        *kpi_gap_suggestions(cycle_id=cycle_id, scope=Scope.PERSON, subject_id=employee_id, kpis=kpis, rules=rules),
        *await _kpi_rules(data, cycle_id=cycle_id, scope=Scope.PERSON, subject_id=employee_id, kpis=kpis, org=org),
    ]
    if own is not None and teammates:
        suggestions += competency_suggestions(
            scope=Scope.PERSON,
            subject_id=employee_id,
            own=own.competencies,
            reference=mean_competencies(teammates),
            reference_size=len(teammates),
            rules=rules,
            link=Link(service="evaluation", path=f"/v1/cycles/{cycle_id}/reviews/{employee_id}/summary"),
            names=await data.competency_names(cycle_id),
        )
    return _answer(cycle_id, Scope.PERSON, employee_id, rules, suggestions, unavailable)


async def team_suggestions(
    *,
    session: AsyncSession,
    cycle_id: str,
    manager_id: str,
    rules: SuggestionRules,
    principal: Principal,
    clients: Clients,
) -> SuggestionsRead:
    """The manager's direct reports as a team: their KPI gaps together, and their competencies
    against the department's."""
    data = clients.data(actor_of(principal))
    org = await org_view(session, cycle_id, data)
    manager = org.participants.get(manager_id)
    members = sorted(p.employee_id for p in org.participants.values() if p.manager_id == manager_id)
    if manager is None or not members or not org.can_see(principal, manager_id):
        raise _not_found(f"team of {manager_id!r}")
    unavailable: dict[str, str] = {}
    read = await attempt("tracking.progress", data.kpis(cycle_id), unavailable)
    kpis = await _kpis_with_trends(data, cycle_id, [k for k in read or [] if k.employee_id in members], rules)
    colleagues = sorted(
        p.employee_id
        for p in org.participants.values()
        if p.department_id == manager.department_id and p.employee_id not in members
    )
    ratings = await data.manager_ratings(cycle_id, [*members, *colleagues])
    team_ratings = [ratings[e].competencies for e in members if e in ratings]
    others = [ratings[e].competencies for e in colleagues if e in ratings]
    suggestions = [
        *team_kpi_gap_suggestions(cycle_id=cycle_id, manager_id=manager_id, members=members, kpis=kpis, rules=rules),
        *await _kpi_rules(data, cycle_id=cycle_id, scope=Scope.TEAM, subject_id=manager_id, kpis=kpis, org=org),
    ]
    if team_ratings and others:
        suggestions += competency_suggestions(
            scope=Scope.TEAM,
            subject_id=manager_id,
            own=mean_competencies(team_ratings),
            reference=mean_competencies(others),
            reference_size=len(others),
            rules=rules,
            link=Link(
                service="evaluation", path=f"/v1/cycles/{cycle_id}/results?department_id={manager.department_id}"
            ),
            names=await data.competency_names(cycle_id),
        )
    return _answer(cycle_id, Scope.TEAM, manager_id, rules, suggestions, unavailable)


async def department_suggestions(
    *,
    session: AsyncSession,
    cycle_id: str,
    department_id: str,
    rules: SuggestionRules,
    principal: Principal,
    clients: Clients,
) -> SuggestionsRead:
    """The department's own KPIs, the data it owns, how the others rate working with it (and what
    their comments say, in either language), and how its managers rate."""
    data = clients.data(actor_of(principal))
    org = await org_view(session, cycle_id, data)
    department = org.departments.get(department_id)
    if department is None or not sees_department(principal, org, department_id):
        raise _not_found(f"department {department_id!r}")
    unavailable: dict[str, str] = {}
    read = await attempt("tracking.progress", data.kpis(cycle_id), unavailable)
    own = [k for k in read or [] if k.employee_id is None and k.department_id == department_id]
    owned_elsewhere = [
        k for k in read or [] if k.owner_department_id == department_id and k.department_id != department_id
    ]
    kpis = await _kpis_with_trends(data, cycle_id, own, rules)
    matrix = await attempt("evaluation.collaboration_matrix", data.matrix(cycle_id), unavailable)
    deviation = await attempt("evaluation.deviation", data.deviation(cycle_id), unavailable)
    cells = matrix.cells if matrix is not None else []
    received = [c for c in cells if c.rated_department_id == department_id and c.rater_department_id != department_id]
    suggestions = [
        *kpi_gap_suggestions(
            cycle_id=cycle_id, scope=Scope.DEPARTMENT, subject_id=department_id, kpis=kpis, rules=rules
        ),
        *await _kpi_rules(
            data,
            cycle_id=cycle_id,
            scope=Scope.DEPARTMENT,
            subject_id=department_id,
            kpis=kpis,
            org=org,
            owned=owned_elsewhere,
        ),
        *collaboration_suggestions(
            cycle_id=cycle_id, department_id=department_id, department_name=department.name, cells=cells, rules=rules
        ),
        *leniency_suggestions(
            cycle_id=cycle_id, department_id=department_id, department_name=department.name, deviation=deviation
        ),
    ]
    themes = [
        ThemeRead(theme=t.theme, mentions=t.mentions, english=t.english, chinese=t.chinese, keywords=list(t.keywords))
        for t in count_themes(comment for c in received for comment in c.comments)
    ]
    return _answer(cycle_id, Scope.DEPARTMENT, department_id, rules, suggestions, unavailable, themes)
