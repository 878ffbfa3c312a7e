"""Promotion nominations: who the cycle's promotion rule nominates, each with its reasons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.scoping import in_scope
from services.results.models import EmployeeResultRow, Nomination
from services.results.service.records import get_cycle, get_policy, require_results
from services.results.service.scope import org_view

__all__ = ["list_nominations", "nominate_promotions"]


async def nominate_promotions(*, session: AsyncSession, cycle_id: str, now: datetime) -> list[Nomination]:
    """Recompute the nominations from the cycle's promotion rule (replaces the previous ones)."""
    require_results(await get_cycle(session=session, cycle_id=cycle_id))
    rule = (await get_policy(session=session, cycle_id=cycle_id)).promotion
    org = await org_view(session=session, cycle_id=cycle_id)
    if not org.participants:
        raise DomainError(f"cycle {cycle_id!r} has no participants (grades) yet", status_code=409)
    await session.execute(delete(Nomination).where(Nomination.cycle_id == cycle_id))
    rows = (
        await session.scalars(
            select(EmployeeResultRow)
            .where(EmployeeResultRow.cycle_id == cycle_id)
            .order_by(EmployeeResultRow.employee_id)
        )
    ).all()
    nominations = []
    ratings = set(rule.ratings)
    for r in rows:
        person = org.participants.get(r.employee_id)
        if person is None or r.rating not in ratings:
            continue
        reasons = [f"rating '{r.rating}' is in the promotion band {sorted(ratings)}"]
        if rule.min_score is not None:
            if r.final_score < rule.min_score:
                continue
            reasons.append(f"score {r.final_score:g} >= {rule.min_score:g}")
        if rule.grade_ladder:
            if person.grade not in rule.grade_ladder or person.grade == rule.grade_ladder[-1]:
                continue
            reasons.append(f"grade {person.grade} is below the top grade {rule.grade_ladder[-1]}")
        nominations.append(
            Nomination(
                cycle_id=cycle_id,
                employee_id=r.employee_id,
                department_id=r.department_id,
                grade=person.grade,
                rating=r.rating,
                final_score=r.final_score,
                reasons=reasons,
                created_at=now,
            )
        )
    session.add_all(nominations)
    await session.commit()
    return nominations


async def list_nominations(
    *, session: AsyncSession, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[Nomination]:
    query = select(Nomination).where(Nomination.cycle_id == cycle_id)
    org = partial(org_view, session=session, cycle_id=cycle_id)
    query = await in_scope(query, Nomination.employee_id, principal=principal, org=org)
    return (await session.scalars(query.order_by(Nomination.employee_id).limit(limit).offset(offset))).all()
