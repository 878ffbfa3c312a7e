"""Cross-department collaboration: which department pairs work together (a shared goal or a declared
collaboration), the ratings departments give each other, and the department-to-department matrix.

A declared collaboration is a proposal until both departments stand behind it: the head of each
side declares it (or HR, for both at once). Only confirmed links let departments rate each other or
a manager nominate cross-department raters, and only ratings along confirmed links count: a head
who declared a collaboration alone with a department could otherwise rate it 1/1/1 and lower the
scores of everyone in it. A shared goal is confirmed by the approved goal tree itself."""

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

__all__ = [
    "collaboration_links",
    "collaboration_matrix",
    "confirmed_ratings",
    "declare_collaboration",
    "linked",
    "rate_collaboration",
    "require_confirmed",
]


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _require_departments(org: OrgView, **departments: str) -> None:
    for field, department_id in departments.items():
        if department_id not in org.departments:
            raise DomainError(
                f"{field} {department_id!r} is not a department of this cycle", status_code=404, field=field
            )


def _declared_read(link: EvaluationCollaborationLink) -> CollaborationLinkRead:
    sides = ((link.department_a, link.confirmed_a_by), (link.department_b, link.confirmed_b_by))
    awaiting = [department for department, confirmed_by in sides if not confirmed_by]
    return CollaborationLinkRead(
        department_a=link.department_a,
        department_b=link.department_b,
        source="declared",
        status="proposed" if awaiting else "confirmed",
        awaiting=awaiting,
    )


async def _links(session: AsyncSession, cycle_id: str, org: OrgView) -> dict[tuple[str, str], CollaborationLinkRead]:
    links: dict[tuple[str, str], CollaborationLinkRead] = {}
    for goal in await load_goals(session, cycle_id):
        departments = set(goal.contributing_department_ids)
        if goal.department_id:
            departments.add(goal.department_id)
        owner = org.participants.get(goal.employee_id) if goal.employee_id else None
        if owner is not None and departments:
            departments.add(owner.department_id)
        for a, b in combinations(sorted(departments), 2):
            links.setdefault((a, b), CollaborationLinkRead(department_a=a, department_b=b, source="shared_goal"))
    declared = await session.scalars(
        select(EvaluationCollaborationLink).where(EvaluationCollaborationLink.cycle_id == cycle_id)
    )
    for link in declared:
        read = _declared_read(link)
        pair = (link.department_a, link.department_b)
        if pair not in links or not read.awaiting:  # a shared goal already confirms what one side proposed
            links[pair] = read
    return links


async def collaboration_links(*, session: AsyncSession, cycle_id: str) -> list[CollaborationLinkRead]:
    """Department pairs that may rate each other (confirmed) and proposals awaiting the other side."""
    links = await _links(session, cycle_id, await org_for(session, cycle_id))
    return [links[pair] for pair in sorted(links)]


async def linked(session: AsyncSession, *, cycle_id: str, org: OrgView, a: str, b: str) -> CollaborationLinkRead | None:
    """The link between departments ``a`` and ``b`` (confirmed or proposed), or ``None``."""
    return (await _links(session, cycle_id, org)).get(_pair(a, b))


def require_confirmed(link: CollaborationLinkRead, a: str, b: str, *, field: str) -> None:
    """409 while ``link`` between departments ``a`` and ``b`` is a proposal, naming who must confirm."""
    if link.status != "confirmed":
        raise DomainError(
            f"the collaboration between {a!r} and {b!r} is not confirmed yet: it awaits confirmation by the head "
            f"of {' and '.join(repr(d) for d in link.awaiting)} (or HR), who declares it too at "
            "POST /v1/cycles/{id}/collaborations; nothing counts along it until then",
            status_code=409,
            field=field,
        )


async def declare_collaboration(
    *, session: AsyncSession, cycle_id: str, principal: Principal, department_a: str, department_b: str
) -> CollaborationLinkRead:
    """Propose or confirm a collaboration: the caller confirms every side they head (HR: both)."""
    org = await org_for(session, cycle_id)
    _require_departments(org, department_a=department_a, department_b=department_b)
    if department_a == department_b:
        raise DomainError("a department cannot declare collaboration with itself", field="department_b")
    a, b = _pair(department_a, department_b)
    sides = [heads_department(principal, org, a), heads_department(principal, org, b)]
    if not any(sides):
        raise DomainError("only HR or the head of one of the two departments may declare it", status_code=403)
    await ensure_open(session, cycle_id, "declaring collaboration")
    link = await session.get(EvaluationCollaborationLink, (cycle_id, a, b))
    if link is None:
        link = EvaluationCollaborationLink(
            cycle_id=cycle_id, department_a=a, department_b=b, declared_by=principal.sub, created_at=now()
        )
        session.add(link)
    if sides[0] and not link.confirmed_a_by:
        link.confirmed_a_by = principal.sub
    if sides[1] and not link.confirmed_b_by:
        link.confirmed_b_by = principal.sub
    await session.commit()
    return _declared_read(link)


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
    link = await linked(session, cycle_id=cycle_id, org=org, a=rater_department_id, b=rated_department_id)
    if link is None:
        raise DomainError(
            f"{rater_department_id!r} and {rated_department_id!r} share no goal and have no declared "
            "collaboration; a department rates only the departments it works with",
            field="rated_department_id",
        )
    require_confirmed(link, rater_department_id, rated_department_id, field="rated_department_id")
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


async def confirmed_ratings(session: AsyncSession, cycle_id: str) -> list[EvaluationCollaborationRating]:
    """The cycle's collaboration ratings along confirmed links (ratings stored before a link needed
    both sides, or along a link no longer shared, do not count)."""
    links = await _links(session, cycle_id, await org_for(session, cycle_id))
    return [
        row
        for row in await collaboration_rows(session, cycle_id)
        if (link := links.get(_pair(row.rater_department_id, row.rated_department_id))) is not None
        and link.status == "confirmed"
    ]


async def collaboration_matrix(*, session: AsyncSession, cycle_id: str) -> CollaborationMatrix:
    cells: dict[tuple[str, str], list[EvaluationCollaborationRating]] = defaultdict(list)
    for row in await confirmed_ratings(session, cycle_id):
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
