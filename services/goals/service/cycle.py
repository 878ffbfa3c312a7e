"""A cycle's goal-setting settings (its period) and the freeze that ends goal setting."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import GoalsFrozenPayload
from contracts.goals import DEFAULT_APPROVAL_CHAINS, ApprovalChains
from services.common.auth import Principal
from services.common.clock import utc_now
from services.common.errors import DomainError
from services.goals.models import GoalsCycle, GoalsGoal
from services.goals.rules import GoalStatus
from services.goals.schemas import CycleSettingsRead, CycleSettingsUpdate, FreezeResult
from services.goals.service.records import emit_event

__all__ = ["chains_of", "cycle_row", "ensure_open", "freeze_cycle", "get_or_add_cycle", "get_settings", "put_settings"]


async def cycle_row(session: AsyncSession, cycle_id: str) -> GoalsCycle | None:
    return await session.get(GoalsCycle, cycle_id)


async def get_or_add_cycle(session: AsyncSession, cycle_id: str) -> GoalsCycle:
    """The cycle's row, added to the session on first write (a cycle exists here once something is set)."""
    cycle = await cycle_row(session, cycle_id)
    if cycle is None:
        cycle = GoalsCycle(cycle_id=cycle_id)
        session.add(cycle)
    return cycle


async def ensure_open(session: AsyncSession, cycle_id: str) -> None:
    cycle = await cycle_row(session, cycle_id)
    if cycle is not None and cycle.frozen_at is not None:
        raise DomainError(
            f"goal setting of cycle '{cycle_id}' was frozen at {cycle.frozen_at.isoformat()} "
            f"by {cycle.frozen_by}; objectives, KPIs and goals can no longer be changed",
            status_code=409,
        )


def _settings_read(cycle_id: str, cycle: GoalsCycle | None) -> CycleSettingsRead:
    return CycleSettingsRead(
        cycle_id=cycle_id,
        period_start=cycle.period_start if cycle else None,
        period_end=cycle.period_end if cycle else None,
        frozen=bool(cycle and cycle.frozen_at),
        frozen_at=cycle.frozen_at if cycle else None,
        frozen_by=cycle.frozen_by if cycle else None,
        approval_chains=chains_of(cycle),
    )


def chains_of(cycle: GoalsCycle | None) -> ApprovalChains:
    """The cycle's approval chains as pushed with its settings, else the defaults (one step per level)."""
    if cycle is None or cycle.approval_chains is None:
        return DEFAULT_APPROVAL_CHAINS
    return ApprovalChains.model_validate(cycle.approval_chains)


async def get_settings(*, session: AsyncSession, cycle_id: str) -> CycleSettingsRead:
    return _settings_read(cycle_id, await cycle_row(session, cycle_id))


async def put_settings(*, session: AsyncSession, cycle_id: str, data: CycleSettingsUpdate) -> CycleSettingsRead:
    await ensure_open(session, cycle_id)
    cycle = await get_or_add_cycle(session, cycle_id)
    cycle.period_start = data.period_start
    cycle.period_end = data.period_end
    # A goal already submitted keeps the chain it was submitted with; the next submissions use these.
    cycle.approval_chains = data.approval_chains.model_dump(mode="json") if data.approval_chains else None
    await session.commit()
    return _settings_read(cycle_id, cycle)


async def freeze_cycle(*, session: AsyncSession, cycle_id: str, principal: Principal) -> FreezeResult:
    """End goal setting: afterwards every edit is refused with 409. Idempotent."""
    cycle = await get_or_add_cycle(session, cycle_id)
    rows = await session.execute(
        select(GoalsGoal.status, func.count()).where(GoalsGoal.cycle_id == cycle_id).group_by(GoalsGoal.status)
    )
    counts: Counter[str] = Counter({status: count for status, count in rows.all()})
    by_status = {s.value: counts.get(s.value, 0) for s in GoalStatus}
    already = cycle.frozen_at is not None
    if not already:
        cycle.frozen_at = utc_now()
        cycle.frozen_by = principal.sub
        emit_event(
            session,
            type="GoalsFrozen",
            cycle_id=cycle_id,
            subject_id=cycle_id,
            payload=GoalsFrozenPayload(goals_by_status=by_status, frozen_by=principal.sub),
        )
        await session.commit()
    assert cycle.frozen_at is not None
    return FreezeResult(cycle_id=cycle_id, frozen_at=cycle.frozen_at, already_frozen=already, goals_by_status=by_status)
