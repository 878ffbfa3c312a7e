"""Cycle state and results: the calibrated results pushed by the workflow, their release,
withdrawal and acknowledgement, and scoped reads.

A result is its employee's to read once released, whatever their roles: HR and ops read every
other result before release, not their own."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import ResultAcknowledgedPayload, ResultsReleasedPayload
from contracts.evaluation import CycleResults
from contracts.feedback import FeedbackEventType
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.scoping import in_scope, sees_all
from services.feedback.models import FeedbackCycle, ReleasedResult
from services.feedback.schemas import PushAccepted, ReleaseRead, ResultRead, WithdrawRead
from services.feedback.service.records import count, emit
from services.feedback.service.scope import my_employee_id, org_view

__all__ = [
    "acknowledge_result",
    "appeal_deadline",
    "get_cycle",
    "get_result",
    "list_results",
    "push_results",
    "release_results",
    "withdraw_results",
]


async def get_cycle(*, session: AsyncSession, cycle_id: str, create: bool = False) -> FeedbackCycle:
    cycle = await session.get(FeedbackCycle, cycle_id)
    if cycle is None:
        if not create:
            raise DomainError(f"cycle {cycle_id!r} has no feedback data yet", status_code=404, field="cycle_id")
        cycle = FeedbackCycle(cycle_id=cycle_id, calibration_closed=False, appeal_window_days=14, hr_resolution_days=10)
        session.add(cycle)
    return cycle


async def push_results(
    *, session: AsyncSession, cycle_id: str, results: CycleResults, calibration_closed: bool, now: datetime
) -> PushAccepted:
    """Store (idempotently) the calibrated results; a released result is never changed by a re-push."""
    if results.cycle_id != cycle_id:
        raise DomainError(
            f"results are for cycle {results.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id"
        )
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    if cycle.withdrawn_at is not None:
        raise DomainError(
            f"cycle {cycle_id!r} results were withdrawn at {cycle.withdrawn_at.isoformat()} "
            "(the cycle was cancelled); results can no longer be pushed",
            status_code=409,
        )
    seen: set[str] = set()
    for r in results.results:
        if r.employee_id in seen:
            raise DomainError(f"employee {r.employee_id!r} appears twice in results", field="results")
        seen.add(r.employee_id)
        if not results.scale_min <= r.final_score <= results.scale_max:
            raise DomainError(
                f"final_score {r.final_score} of {r.employee_id!r} is outside the scale "
                f"[{results.scale_min}, {results.scale_max}]",
                field="results.final_score",
            )
    existing = {
        row.employee_id: row
        for row in (await session.scalars(select(ReleasedResult).where(ReleasedResult.cycle_id == cycle_id))).all()
    }
    updated = kept = 0
    for r in results.results:
        row = existing.get(r.employee_id)
        if row is None:
            row = ReleasedResult(cycle_id=cycle_id, employee_id=r.employee_id, status="pending")
            session.add(row)
        elif row.status == "released":
            kept += 1
            continue
        row.department_id = r.department_id
        row.manager_id = r.manager_id
        row.final_score = r.final_score
        row.rating = r.rating
        row.pre_calibration_score = r.pre_calibration_score
        row.calibrated = r.calibrated
        updated += 1
    cycle.scale_min = results.scale_min
    cycle.scale_max = results.scale_max
    cycle.results_received_at = now
    cycle.calibration_closed = calibration_closed
    await session.commit()
    return PushAccepted(
        cycle_id=cycle_id,
        received=len(results.results),
        updated=updated,
        kept_released=kept,
        calibration_closed=calibration_closed,
    )


async def release_results(
    *, session: AsyncSession, cycle_id: str, now: datetime, day_seconds: float | None = None
) -> ReleaseRead:
    """Release the pushed results; ``day_seconds`` (the workflow's, for a compressed cycle) sets the length
    of the cycle's days for its appeal window and HR's resolution time. Idempotent. Commits."""
    cycle = await session.get(FeedbackCycle, cycle_id)
    if cycle is None or cycle.results_received_at is None:
        raise DomainError(
            f"cannot release cycle {cycle_id!r}: no calibrated results have been pushed yet "
            "(evaluation pushes them once calibration is closed)",
            status_code=409,
        )
    if not cycle.calibration_closed:
        raise DomainError(
            f"cannot release cycle {cycle_id!r}: calibration is not closed "
            "(push results with calibration_closed=true, or set it in the cycle config)",
            status_code=409,
        )
    if cycle.withdrawn_at is not None:
        raise DomainError(f"cannot release cycle {cycle_id!r}: its results were withdrawn", status_code=409)
    if day_seconds is not None and cycle.released_at is None:
        cycle.day_seconds = day_seconds
    pending = (
        await session.scalars(
            select(ReleasedResult).where(ReleasedResult.cycle_id == cycle_id, ReleasedResult.status == "pending")
        )
    ).all()
    already = await count(
        session, ReleasedResult, ReleasedResult.cycle_id == cycle_id, ReleasedResult.status == "released"
    )
    for row in pending:
        row.status = "released"
        row.released_at = now
    if cycle.released_at is None:
        cycle.released_at = now
    if pending:
        emit(
            session,
            type=FeedbackEventType.RESULTS_RELEASED,
            cycle_id=cycle_id,
            subject_id=None,
            payload=ResultsReleasedPayload(
                released=len(pending), department_ids=sorted({r.department_id for r in pending}), released_at=now
            ),
        )
    await session.commit()
    return ReleaseRead(
        cycle_id=cycle_id,
        released=len(pending),
        already_released=already,
        released_at=cycle.released_at,
        appeal_deadline=now + cycle.days(cycle.appeal_window_days),
    )


async def withdraw_results(*, session: AsyncSession, cycle_id: str, now: datetime) -> WithdrawRead:
    """Cancel compensation: unreleased results are withdrawn, released ones stay (and are reported)."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    if cycle.withdrawn_at is None:
        cycle.withdrawn_at = now
    result = await session.execute(
        update(ReleasedResult)
        .where(ReleasedResult.cycle_id == cycle_id, ReleasedResult.status == "pending")
        .values(status="withdrawn")
    )
    released = (
        await session.scalars(
            select(ReleasedResult.employee_id)
            .where(ReleasedResult.cycle_id == cycle_id, ReleasedResult.status == "released")
            .order_by(ReleasedResult.employee_id)
        )
    ).all()
    await session.commit()
    return WithdrawRead(
        cycle_id=cycle_id,
        withdrawn=int(getattr(result, "rowcount", 0) or 0),
        kept_released=len(released),
        released_employee_ids=list(released[:500]),
    )


def appeal_deadline(*, cycle: FeedbackCycle, result: ReleasedResult) -> datetime | None:
    if result.released_at is None:
        return None
    return result.released_at + cycle.days(cycle.appeal_window_days)


def _result_read(row: ReleasedResult, cycle: FeedbackCycle) -> ResultRead:
    return ResultRead(
        cycle_id=row.cycle_id,
        employee_id=row.employee_id,
        department_id=row.department_id,
        manager_id=row.manager_id,
        final_score=row.final_score,
        rating=row.rating,
        calibrated=row.calibrated,
        status=row.status,
        released_at=row.released_at,
        appeal_deadline=appeal_deadline(cycle=cycle, result=row),
        acknowledged_at=row.acknowledged_at,
        adjusted_by_appeal_id=row.adjusted_by_appeal_id,
    )


async def list_results(
    *, session: AsyncSession, cycle_id: str, principal: Principal, limit: int, offset: int
) -> list[ResultRead]:
    """HR and ops see every result but their own before it is released; anyone else only released
    results in their scope."""
    query = select(ReleasedResult).where(ReleasedResult.cycle_id == cycle_id)
    me = principal.acting_employee_id
    if not sees_all(principal):
        query = query.where(ReleasedResult.status == "released")
    elif me:
        query = query.where(or_(ReleasedResult.status == "released", ReleasedResult.employee_id != me))
    org = partial(org_view, session=session, cycle_id=cycle_id)
    query = await in_scope(query, ReleasedResult.employee_id, principal=principal, org=org)
    rows = (await session.scalars(query.order_by(ReleasedResult.employee_id).limit(limit).offset(offset))).all()
    if not rows:  # before the cycle lookup: a cycle without data lists nothing rather than 404
        return []
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    return [_result_read(r, cycle) for r in rows]


async def get_result(*, session: AsyncSession, cycle_id: str, employee_id: str, principal: Principal) -> ResultRead:
    # One answer for "no result" and "not yours to read" (your own, your reports'): a 403 would
    # tell that the employee has a result in this cycle.
    not_found = DomainError(
        f"no released result for employee {employee_id!r} in cycle {cycle_id!r} within your scope",
        status_code=404,
        field="employee_id",
    )
    if not sees_all(principal):
        org = await org_view(session=session, cycle_id=cycle_id)
        if not org.can_see(principal, employee_id):
            raise not_found
    row = await session.get(ReleasedResult, (cycle_id, employee_id))
    early = row is not None and row.status != "released"
    if row is None or (early and (not sees_all(principal) or principal.acting_employee_id == employee_id)):
        raise not_found
    return _result_read(row, await get_cycle(session=session, cycle_id=cycle_id))


async def acknowledge_result(
    *, session: AsyncSession, cycle_id: str, employee_id: str, principal: Principal, now: datetime
) -> ResultRead:
    if my_employee_id(principal) != employee_id:
        raise DomainError("you can acknowledge only your own result", status_code=403, field="employee_id")
    row = await session.get(ReleasedResult, (cycle_id, employee_id))
    if row is None or row.status != "released":
        raise DomainError(f"you have no released result in cycle {cycle_id!r} to acknowledge", status_code=404)
    if row.acknowledged_at is None:
        row.acknowledged_at = now
        emit(
            session,
            type=FeedbackEventType.RESULT_ACKNOWLEDGED,
            cycle_id=cycle_id,
            subject_id=employee_id,
            payload=ResultAcknowledgedPayload(employee_id=employee_id, department_id=row.department_id, at=now),
        )
        await session.commit()
    return _result_read(row, await get_cycle(session=session, cycle_id=cycle_id))
