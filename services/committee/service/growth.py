"""Growth paths across cycles: career frameworks, potential ratings, a person's history, readiness and
9-box position, a team's and a cycle's 9-box (the rules are in ``services.committee.growth``).

Scoping follows each cycle's org snapshot, like suggestions: a person's growth is visible to
themselves, their managers, their department head and HR (and ops); outside scope the person does
not exist (404). A potential is rated by someone who sees the person and is not the person (a
manager or head, or HR), and calibrated by HR for the committee, optionally in a calibration session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.committee.facts import ScaleFact
from services.committee.growth import (
    BOX_LABELS,
    Level,
    Tier,
    check_levels,
    nine_box,
    performance_tier,
    readiness,
)
from services.committee.models import CommitteeCalibrationSession, CommitteeCareerFramework, CommitteePotential
from services.committee.schemas import (
    CycleRecord,
    DepartmentCycleRecord,
    DepartmentHistoryRead,
    FrameworkWrite,
    GrowthRead,
    NineBoxPosition,
    PotentialCalibration,
    PotentialRead,
    PotentialWrite,
    TeamGrowthRead,
    TeamMemberGrowth,
)
from services.committee.service.org import org_view, sees_department
from services.committee.service.records import Clients, actor_of
from services.committee.sources import CycleData, attempt
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.participants import OrgView

__all__ = [
    "calibrate_potential",
    "cycle_nine_box",
    "department_history",
    "growth",
    "list_frameworks",
    "put_framework",
    "rate_potential",
    "team_growth",
]


def _not_found(what: str) -> DomainError:
    return DomainError(f"{what} does not exist or is not in your scope", status_code=404)


# -- frameworks -----------------------------------------------------------------------------------
async def put_framework(
    *, session: AsyncSession, job_family: str, data: FrameworkWrite, principal: Principal, now: datetime
) -> CommitteeCareerFramework:
    check_levels(data.levels)
    others = (
        await session.scalars(select(CommitteeCareerFramework).where(CommitteeCareerFramework.job_family != job_family))
    ).all()
    for other in others:
        shared = sorted(set(other.job_titles) & set(data.job_titles))
        if shared:
            raise DomainError(
                f"job title(s) {', '.join(shared)} already belong to job family {other.job_family!r}",
                status_code=409,
                field="job_titles",
            )
    row = await session.get(CommitteeCareerFramework, job_family)
    if row is None:
        row = CommitteeCareerFramework(job_family=job_family)
        session.add(row)
    row.name, row.job_titles = data.name, list(data.job_titles)
    row.levels = [level.model_dump() for level in data.levels]
    row.updated_by, row.updated_at = principal.sub, now
    await session.commit()
    return row


async def list_frameworks(*, session: AsyncSession) -> list[CommitteeCareerFramework]:
    return list((await session.scalars(select(CommitteeCareerFramework).order_by("job_family"))).all())


def _ladder(frameworks: list[CommitteeCareerFramework], job_title: str) -> tuple[str, list[Level]] | None:
    for framework in frameworks:
        if job_title in framework.job_titles:
            return framework.job_family, [Level.model_validate(level) for level in framework.levels]
    return None


# -- potential ------------------------------------------------------------------------------------
async def _person_in_cycle(
    session: AsyncSession, cycle_id: str, employee_id: str, principal: Principal, clients: Clients
) -> OrgView:
    org = await org_view(session, cycle_id, clients.data(actor_of(principal)))
    if employee_id not in org.participants or not org.can_see(principal, employee_id):
        raise _not_found(f"employee {employee_id!r} in cycle {cycle_id!r}")
    return org


async def _potential_row(session: AsyncSession, cycle_id: str, employee_id: str) -> CommitteePotential:
    row = await session.get(CommitteePotential, (cycle_id, employee_id))
    if row is None:
        row = CommitteePotential(cycle_id=cycle_id, employee_id=employee_id, note="", calibration_reason="")
        session.add(row)
    return row


async def rate_potential(
    *,
    session: AsyncSession,
    cycle_id: str,
    employee_id: str,
    data: PotentialWrite,
    principal: Principal,
    clients: Clients,
    now: datetime,
) -> PotentialRead:
    await _person_in_cycle(session, cycle_id, employee_id, principal, clients)
    if principal.employee_id == employee_id:
        raise DomainError("nobody rates their own potential; your manager does", status_code=403)
    row = await _potential_row(session, cycle_id, employee_id)
    row.rated, row.note, row.rated_by, row.rated_at = data.potential.value, data.note, principal.sub, now
    await session.commit()
    return PotentialRead.model_validate(row)


async def calibrate_potential(
    *,
    session: AsyncSession,
    cycle_id: str,
    employee_id: str,
    data: PotentialCalibration,
    principal: Principal,
    clients: Clients,
    now: datetime,
) -> PotentialRead:
    await _person_in_cycle(session, cycle_id, employee_id, principal, clients)
    if data.session_id is not None:
        held = await session.get(CommitteeCalibrationSession, data.session_id)
        if held is None or held.cycle_id != cycle_id:
            raise DomainError(
                f"calibration session {data.session_id!r} does not exist for cycle {cycle_id!r}", field="session_id"
            )
    row = await _potential_row(session, cycle_id, employee_id)
    row.calibrated, row.calibration_reason, row.session_id = data.potential.value, data.reason, data.session_id
    row.calibrated_by, row.calibrated_at = principal.sub, now
    await session.commit()
    return PotentialRead.model_validate(row)


async def _potentials(session: AsyncSession, employee_ids: list[str]) -> dict[tuple[str, str], Tier]:
    rows = (
        await session.scalars(select(CommitteePotential).where(CommitteePotential.employee_id.in_(employee_ids)))
    ).all()
    found = {}
    for row in rows:
        value = row.calibrated or row.rated
        if value:
            found[(row.cycle_id, row.employee_id)] = Tier(value)
    return found


def _position(
    cycle_id: str, person: tuple[str, str], performance: Tier | None, potential: Tier | None
) -> NineBoxPosition | None:
    if performance is None or potential is None:
        return None
    box = nine_box(performance, potential)
    english, chinese = BOX_LABELS[box]
    return NineBoxPosition(
        cycle_id=cycle_id,
        employee_id=person[0],
        name=person[1],
        box=box,
        performance=performance,
        potential=potential,
        label_en=english,
        label_zh=chinese,
    )


# -- a person's growth ----------------------------------------------------------------------------
Taken = tuple[str, str, str | None, OrgView]
"""A cycle someone took part in: id, name, period end and its org snapshot."""


@dataclass
class _Sources:
    """What every person's growth reads: the cycles with their org snapshots, the career frameworks
    and each cycle's rating scale. Read once per request, so a team's growth does not re-read them
    for every report."""

    data: CycleData
    cycles: list[Taken]
    frameworks: list[CommitteeCareerFramework]
    scales: dict[str, ScaleFact | None] = field(default_factory=dict)

    async def scale(self, cycle_id: str) -> ScaleFact | None:
        if cycle_id not in self.scales:
            self.scales[cycle_id] = await self.data.scale(cycle_id)
        return self.scales[cycle_id]

    def taken_by(self, employee_id: str) -> list[Taken]:
        return [taken for taken in self.cycles if employee_id in taken[3].participants]


async def _sources(session: AsyncSession, principal: Principal, clients: Clients) -> _Sources:
    data = clients.data(actor_of(principal))
    cycles: list[Taken] = []
    for cycle in await data.cycles():
        cycles.append((cycle.cycle_id, cycle.name, cycle.period_end, await org_view(session, cycle.cycle_id, data)))
    return _Sources(data=data, cycles=cycles, frameworks=await list_frameworks(session=session))


async def _record(
    sources: _Sources,
    taken: Taken,
    employee_id: str,
    potentials: dict[tuple[str, str], Tier],
    names: dict[str, str],
) -> CycleRecord:
    cycle_id, cycle_name, period_end, org = taken
    person = org.participants[employee_id]
    data = sources.data
    result, scale, ratings = await asyncio.gather(
        data.released_result(cycle_id, employee_id),
        sources.scale(cycle_id),
        data.manager_ratings(cycle_id, [employee_id]),
    )
    performance = None
    if result is not None and scale is not None:
        performance = performance_tier(result.final_score, scale.rating_scale.min, scale.rating_scale.max)
    if scale is not None:
        names.update({c.competency_id: c.name for c in scale.competencies})
    review = ratings.get(employee_id)
    return CycleRecord(
        cycle_id=cycle_id,
        cycle_name=cycle_name,
        period_end=period_end,
        job_title=person.job_title,
        grade=person.grade,
        final_score=result.final_score if result else None,
        rating=result.rating if result else None,
        performance=performance,
        competencies=dict(review.competencies) if review else {},
        potential=potentials.get((cycle_id, employee_id)),
    )


async def growth(*, session: AsyncSession, employee_id: str, principal: Principal, clients: Clients) -> GrowthRead:
    """The person's history over every cycle they took part in, their profile, readiness and 9-box."""
    sources = await _sources(session, principal, clients)
    return await _growth_of(session, sources, employee_id, principal)


async def _growth_of(session: AsyncSession, sources: _Sources, employee_id: str, principal: Principal) -> GrowthRead:
    taken = sources.taken_by(employee_id)
    if not taken or not taken[-1][3].can_see(principal, employee_id):
        raise _not_found(f"employee {employee_id!r}")
    potentials = await _potentials(session, [employee_id])
    names: dict[str, str] = {}
    history = [await _record(sources, cycle, employee_id, potentials, names) for cycle in taken]
    latest = history[-1]
    profile: dict[str, float] = {}
    for record in history:
        profile.update(record.competencies)
    ladder = _ladder(sources.frameworks, latest.job_title)
    current = following = None
    ready = None
    if ladder is not None:
        grades = [level.grade for level in ladder[1]]
        if latest.grade in grades:
            index = grades.index(latest.grade)
            current = ladder[1][index]
            following = ladder[1][index + 1] if index + 1 < len(grades) else None
            performances = [r.performance for r in history if r.performance is not None]
            ready = readiness(next_level=following, profile=profile, performances=performances, names=names)
    name = taken[-1][3].participants[employee_id].name
    box = next(
        (
            position
            for r in reversed(history)
            if (position := _position(r.cycle_id, (employee_id, name), r.performance, r.potential)) is not None
        ),
        None,
    )
    return GrowthRead(
        employee_id=employee_id,
        name=name,
        job_title=latest.job_title,
        grade=latest.grade,
        job_family=ladder[0] if ladder else None,
        current_level=current,
        next_level=following,
        history=history,
        profile=profile,
        competency_names=names,
        readiness=ready,
        nine_box=box,
    )


async def team_growth(
    *, session: AsyncSession, manager_id: str, principal: Principal, clients: Clients
) -> TeamGrowthRead:
    """Each direct report's readiness and 9-box position (the manager, their head and HR)."""
    sources = await _sources(session, principal, clients)
    org = next((taken[3] for taken in reversed(sources.cycles) if manager_id in taken[3].participants), None)
    if org is None or not org.can_see(principal, manager_id):
        raise _not_found(f"team of {manager_id!r}")
    reports = sorted(p.employee_id for p in org.participants.values() if p.manager_id == manager_id)
    members = []
    for employee_id in reports:
        if not org.can_see(principal, employee_id):
            continue
        view = await _growth_of(session, sources, employee_id, principal)
        members.append(
            TeamMemberGrowth(
                employee_id=employee_id,
                name=view.name,
                grade=view.grade,
                readiness=view.readiness.status if view.readiness else None,
                next_grade=view.readiness.next_grade if view.readiness else None,
                nine_box=view.nine_box,
            )
        )
    return TeamGrowthRead(manager_id=manager_id, members=members)


async def cycle_nine_box(
    *, session: AsyncSession, cycle_id: str, principal: Principal, clients: Clients
) -> list[NineBoxPosition]:
    """Talent review: the 9-box of everyone the caller sees in the cycle with a released result and a
    potential (HR and ops: everyone). People without either are left out."""
    data = clients.data(actor_of(principal))
    org = await org_view(session, cycle_id, data)
    scale = await data.scale(cycle_id)
    if scale is None:
        raise DomainError(f"cycle {cycle_id!r} has no rating scale yet (evaluation is not configured)", status_code=409)
    visible = [e for e in sorted(org.participants) if org.can_see(principal, e)]
    potentials = await _potentials(session, visible)
    positions = []
    for employee_id in visible:
        potential = potentials.get((cycle_id, employee_id))
        if potential is None:
            continue
        result = await data.released_result(cycle_id, employee_id)
        if result is None:
            continue
        tier = performance_tier(result.final_score, scale.rating_scale.min, scale.rating_scale.max)
        position = _position(cycle_id, (employee_id, org.participants[employee_id].name), tier, potential)
        if position is not None:
            positions.append(position)
    return positions


async def department_history(
    *, session: AsyncSession, department_id: str, principal: Principal, clients: Clients
) -> DepartmentHistoryRead:
    """The department over every cycle it took part in: people, released results and their ratings,
    its own KPIs' attainment, and how the other departments rated working with it."""
    data = clients.data(actor_of(principal))
    records: list[DepartmentCycleRecord] = []
    unavailable: dict[str, str] = {}
    name = department_id
    for cycle in await data.cycles():
        org = await org_view(session, cycle.cycle_id, data)
        if department_id not in org.departments or not sees_department(principal, org, department_id):
            continue
        name = org.departments[department_id].name
        tree = org.department_tree(department_id)
        members = {p.employee_id for p in org.participants.values() if p.department_id in tree}
        found: dict[str, str] = {}
        results = await attempt("feedback.results", data.released_results(cycle.cycle_id), found) or []
        mine = [r for r in results if r.employee_id in members]
        kpis = await attempt("tracking.progress", data.kpis(cycle.cycle_id), found) or []
        own = [k.attainment_pct for k in kpis if k.employee_id is None and k.department_id == department_id]
        attained = [a for a in own if a is not None]
        matrix = await attempt("evaluation.collaboration_matrix", data.matrix(cycle.cycle_id), found)
        received = [c for c in (matrix.cells if matrix else []) if c.rated_department_id == department_id and c.ratings]
        ratings: dict[str, int] = {}
        for r in mine:
            ratings[r.rating] = ratings.get(r.rating, 0) + 1
        unavailable.update({f"{cycle.cycle_id}:{source}": why for source, why in found.items()})
        records.append(
            DepartmentCycleRecord(
                cycle_id=cycle.cycle_id,
                cycle_name=cycle.name,
                period_end=cycle.period_end,
                people=len(members),
                released=len(mine),
                mean_score=round(sum(r.final_score for r in mine) / len(mine), 4) if mine else None,
                ratings=ratings,
                kpi_attainment_pct=round(sum(attained) / len(attained), 2) if attained else None,
                collaboration_received=round(sum(c.overall for c in received) / len(received), 4) if received else None,
                collaboration_raters=len(received),
            )
        )
    if not records:
        raise _not_found(f"department {department_id!r}")
    return DepartmentHistoryRead(department_id=department_id, name=name, cycles=records, unavailable=unavailable)
