"""Cross-department collaboration: which department pairs work together (a shared goal or a declared
collaboration), the ratings departments give each other, and the department-to-department matrix."""

from __future__ import annotations

import statistics
from collections import defaultdict
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import CollaborationCell, CollaborationMatrix
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.evaluation.models import EvaluationCollaborationLink, EvaluationCollaborationRating
from services.evaluation.schemas import CollaborationLinkRead, CollaborationRatingRead
from services.evaluation.service.records import (
    as_utc,
    collaboration_rows,
    ensure_open,
    heads_department,
    load_goals,
    now,
    org_for,
    read_model,
)

__all__ = ["collaboration_links", "collaboration_matrix", "declare_collaboration", "linked", "rate_collaboration"]


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _require_departments(org: OrgView, **departments: str) -> None:
    for field, department_id in departments.items():
        if department_id not in org.departments:
            raise DomainError(
                f"{field} {department_id!r} is not a department of this cycle", status_code=404, field=field
            )


async def _links(session: AsyncSession, cycle_id: str, org: OrgView) -> list[CollaborationLinkRead]:
    links: dict[tuple[str, str], str] = {}
    for goal in await load_goals(session, cycle_id):
        departments = set(goal.contributing_department_ids)
        if goal.department_id:
            departments.add(goal.department_id)
        owner = org.participants.get(goal.employee_id) if goal.employee_id else None
        if owner is not None and departments:
            departments.add(owner.department_id)
        for a, b in combinations(sorted(departments), 2):
            links.setdefault((a, b), "shared_goal")
    declared = await session.scalars(
        select(EvaluationCollaborationLink).where(EvaluationCollaborationLink.cycle_id == cycle_id)
    )
    for link in declared:
        links[(link.department_a, link.department_b)] = "declared"
    return [CollaborationLinkRead(department_a=a, department_b=b, source=s) for (a, b), s in sorted(links.items())]


async def collaboration_links(*, session: AsyncSession, cycle_id: str) -> list[CollaborationLinkRead]:
    """Department pairs that may rate each other: shared goals plus declared collaborations."""
    return await _links(session, cycle_id, await org_for(session, cycle_id))


async def linked(session: AsyncSession, *, cycle_id: str, org: OrgView, a: str, b: str) -> bool:
    """Whether departments ``a`` and ``b`` work together (share a goal or declared it)."""
    pair = _pair(a, b)
    return any((link.department_a, link.department_b) == pair for link in await _links(session, cycle_id, org))


async def declare_collaboration(
    *, session: AsyncSession, cycle_id: str, principal: Principal, department_a: str, department_b: str
) -> CollaborationLinkRead:
    org = await org_for(session, cycle_id)
    _require_departments(org, department_a=department_a, department_b=department_b)
    if department_a == department_b:
        raise DomainError("a department cannot declare collaboration with itself", field="department_b")
    if not (heads_department(principal, org, department_a) or heads_department(principal, org, department_b)):
        raise DomainError("only HR or the head of one of the two departments may declare it", status_code=403)
    await ensure_open(session, cycle_id, "declaring collaboration")
    a, b = _pair(department_a, department_b)
    if await session.get(EvaluationCollaborationLink, (cycle_id, a, b)) is None:
        session.add(
            EvaluationCollaborationLink(
                cycle_id=cycle_id, department_a=a, department_b=b, declared_by=principal.sub, created_at=now()
            )
        )
    await session.commit()
    return CollaborationLinkRead(department_a=a, department_b=b, source="declared")


async def rate_collaboration(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    rater_department_id: str,
    rated_department_id: str,
    responsiveness: int,
    data_quality: int,
    reliability: int,
    comment: str | None,
) -> CollaborationRatingRead:
    org = await org_for(session, cycle_id)
    _require_departments(org, rater_department_id=rater_department_id, rated_department_id=rated_department_id)
    if rater_department_id == rated_department_id:
        raise DomainError("a department does not rate itself", field="rated_department_id")
    if not heads_department(principal, org, rater_department_id):
        raise DomainError(
            f"only the head of {rater_department_id!r} (or HR) may rate on its behalf",
            status_code=403,
            field="rater_department_id",
        )
    if not await linked(session, cycle_id=cycle_id, org=org, a=rater_department_id, b=rated_department_id):
        raise DomainError(
            f"{rater_department_id!r} and {rated_department_id!r} share no goal and have no declared "
            "collaboration; a department rates only the departments it works with",
            field="rated_department_id",
        )
    await ensure_open(session, cycle_id, "rating collaboration")
    row = await session.get(EvaluationCollaborationRating, (cycle_id, rater_department_id, rated_department_id))
    if row is None:
        row = EvaluationCollaborationRating(
            cycle_id=cycle_id, rater_department_id=rater_department_id, rated_department_id=rated_department_id
        )
        session.add(row)
    row.responsiveness, row.data_quality, row.reliability = responsiveness, data_quality, reliability
    row.comment, row.rated_by, row.updated_at = comment, principal.sub, now()
    await session.commit()
    return read_model(CollaborationRatingRead, row, updated_at=as_utc(row.updated_at))


async def collaboration_matrix(*, session: AsyncSession, cycle_id: str) -> CollaborationMatrix:
    cells: dict[tuple[str, str], list[EvaluationCollaborationRating]] = defaultdict(list)
    for row in await collaboration_rows(session, cycle_id):
        cells[(row.rater_department_id, row.rated_department_id)].append(row)
    out = []
    for (rater, rated), rows in sorted(cells.items()):
        responsiveness = statistics.fmean(r.responsiveness for r in rows)
        data_quality = statistics.fmean(r.data_quality for r in rows)
        reliability = statistics.fmean(r.reliability for r in rows)
        out.append(
            CollaborationCell(
                rater_department_id=rater,
                rated_department_id=rated,
                responsiveness=round(responsiveness, 4),
                data_quality=round(data_quality, 4),
                reliability=round(reliability, 4),
                overall=round((responsiveness + data_quality + reliability) / 3, 4),
                ratings=len(rows),
                comments=sorted(r.comment for r in rows if r.comment),
            )
        )
    return CollaborationMatrix(cycle_id=cycle_id, cells=out)
