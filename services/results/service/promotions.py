"""Promotion nominations: who the cycle's promotion rule nominates, each with its reasons."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.org import Participant
from contracts.results import PromotionRule
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.scoping import in_scope
from services.results.models import EmployeeResultRow, Nomination, ResultsCycle
from services.results.service.records import get_cycle, get_policy, rating_labels, require_results
from services.results.service.scope import org_view

__all__ = ["list_nominations", "nominate_promotions", "renominate"]


def _nomination(
    rule: PromotionRule, ratings: Collection[str], r: EmployeeResultRow, person: Participant | None, now: datetime
) -> Nomination | None:
    """The nomination the rule gives ``r`` (with its reasons), or None."""
    if person is None or r.rating not in ratings:
        return None
    reasons = [f"rating '{r.rating}' is in the promotion band {sorted(ratings)}"]
    if rule.min_score is not None:
        if r.final_score < rule.min_score:
            return None
        reasons.append(f"score {r.final_score:g} >= {rule.min_score:g}")
    if rule.grade_ladder:
        if person.grade not in rule.grade_ladder or person.grade == rule.grade_ladder[-1]:
            return None
        reasons.append(f"grade {person.grade} is below the top grade {rule.grade_ladder[-1]}")
    return Nomination(
        cycle_id=r.cycle_id,
        employee_id=r.employee_id,
        department_id=r.department_id,
        grade=person.grade,
        rating=r.rating,
        final_score=r.final_score,
        reasons=reasons,
        created_at=now,
    )


async def _nominate(
    session: AsyncSession, cycle: ResultsCycle, rows: Sequence[EmployeeResultRow], now: datetime
) -> list[Nomination]:
    """Replace the nominations of ``rows``' employees with what the rule gives them now (not committed)."""
    policy = await get_policy(session=session, cycle_id=cycle.cycle_id)
    ratings = set(policy.promotion_ratings(rating_labels(cycle)))
    org = await org_view(session=session, cycle_id=cycle.cycle_id)
    await session.execute(
        delete(Nomination).where(
            Nomination.cycle_id == cycle.cycle_id, Nomination.employee_id.in_([r.employee_id for r in rows])
        )
    )
    made = [_nomination(policy.promotion, ratings, r, org.participants.get(r.employee_id), now) for r in rows]
    nominations = [n for n in made if n is not None]
    session.add_all(nominations)
    return nominations


async def nominate_promotions(*, session: AsyncSession, cycle_id: str, now: datetime) -> list[Nomination]:
    """Recompute the nominations from the cycle's promotion rule (replaces the previous ones)."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    require_results(cycle)
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
    nominations = await _nominate(session, cycle, rows, now)
    cycle.promotions_nominated_at = now
    await session.commit()
    return nominations


async def renominate(
    session: AsyncSession, cycle: ResultsCycle, rows: Sequence[EmployeeResultRow], now: datetime
) -> None:
    """After results changed (an appeal): re-apply the rule to ``rows``, if HR has nominated already."""
    if cycle.promotions_nominated_at is not None and rows:
        await _nominate(session, cycle, rows, now)


async def list_nominations(
    *, session: AsyncSession, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[Nomination]:
    query = select(Nomination).where(Nomination.cycle_id == cycle_id)
    org = partial(org_view, session=session, cycle_id=cycle_id)
    query = await in_scope(query, Nomination.employee_id, principal=principal, org=org)
    return (await session.scalars(query.order_by(Nomination.employee_id).limit(limit).offset(offset))).all()
