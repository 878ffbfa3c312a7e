"""The collaboration award as an incentive that happens: finance may fund it, and publication records
and announces it once (the winner, the ranking it won over, the money), never recomputed after.
The workflow's publication then notifies every department head (``workflows.handoffs``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.results import COLLABORATION_AWARD_ANNOUNCED, CollaborationAwardAnnouncedPayload
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.results.models import AwardFund, AwardRecord, ResultsOutbox
from services.results.schemas import PoolUpdate
from services.results.service.collaboration import awards
from services.results.service.records import SERVICE, get_cycle

__all__ = ["AWARD", "announced_award", "get_award_fund", "record_award", "set_award_fund"]

AWARD = "best collaboration team"


async def set_award_fund(
    *, session: AsyncSession, cycle_id: str, budget: PoolUpdate, principal: Principal, now: datetime
) -> AwardFund:
    await get_cycle(session=session, cycle_id=cycle_id, create=True)
    announced = await session.get(AwardRecord, cycle_id)
    if announced is not None:
        raise DomainError(
            f"the award of cycle {cycle_id!r} was announced at {announced.announced_at.isoformat()}; "
            "its fund can no longer change",
            status_code=409,
            field="amount_cents",
        )
    fund = await session.get(AwardFund, cycle_id)
    if fund is None:
        fund = AwardFund(cycle_id=cycle_id)
        session.add(fund)
    fund.amount_cents, fund.currency, fund.source = budget.amount_cents, budget.currency, budget.source
    fund.updated_at, fund.updated_by = now, principal.sub
    await session.commit()
    return fund


async def get_award_fund(*, session: AsyncSession, cycle_id: str) -> AwardFund:
    fund = await session.get(AwardFund, cycle_id)
    if fund is None:
        raise DomainError(f"cycle {cycle_id!r} has no award fund", status_code=404)
    return fund


async def announced_award(*, session: AsyncSession, cycle_id: str) -> AwardRecord | None:
    return await session.get(AwardRecord, cycle_id)


async def record_award(*, session: AsyncSession, cycle_id: str, actor: str, now: datetime) -> AwardRecord:
    """Record the award as it stands now (part of the publication's transaction; not committed here)."""
    held = await session.get(AwardRecord, cycle_id)
    if held is not None:
        return held
    try:
        candidates = await awards(session=session, cycle_id=cycle_id)
    except DomainError as exc:  # no collaboration matrix: nobody rated a collaboration
        candidates, why = [], exc.message
    else:
        why = "no department was rated by enough departments (awards.min_rater_departments)"
    winner = candidates[0] if candidates and candidates[0].eligible else None
    fund = await session.get(AwardFund, cycle_id)
    record = AwardRecord(
        cycle_id=cycle_id,
        award=AWARD,
        winner_department_id=winner.department_id if winner else None,
        winner_name=winner.department_name if winner else None,
        score=winner.score if winner else None,
        reason=(f"highest award score of {len(candidates)} department(s)" if winner else why)[:500],
        ranking=[asdict(c) for c in candidates],
        fund_cents=fund.amount_cents if fund is not None and winner else None,
        currency=fund.currency if fund is not None and winner else None,
        announced_at=now,
        announced_by=actor,
    )
    session.add(record)
    # announced to payroll and others through the outbox, in the publication's transaction: once
    announced = CollaborationAwardAnnouncedPayload(
        cycle_id=cycle_id,
        award=record.award,
        winner_department_id=record.winner_department_id,
        winner_name=record.winner_name,
        score=record.score,
        reason=record.reason,
        fund_cents=record.fund_cents,
        currency=record.currency,
        announced_at=now,
    )
    event = new_event(
        service=SERVICE, type=COLLABORATION_AWARD_ANNOUNCED, cycle_id=cycle_id, subject_id=cycle_id, payload=announced
    )
    add_event(session, ResultsOutbox, event)
    return record
