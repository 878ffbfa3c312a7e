"""Appeals reach pay: an appeal HR resolved as adjusted (``POST /v1/cycles/{id}/appeal-adjustments``,
sent by the feedback service after evaluation recorded it) changes the employee's result here, then
what follows from it: the department's pool is allocated again the way it was, the promotion and
development rules are applied again to the person (when HR has run them). Before publication that
is all (the publication carries the new values); after it, every line that changed goes to payroll
as ``ResultsCorrected`` through the outbox, in the same transaction. Applied once per appeal.

The person the call acts for (the HR person who resolved the appeal, the ``act`` claim of the
feedback service's token) may not be the employee appealing: nobody raises their own pay."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.feedback import AppealAdjustment
from contracts.results import (
    RESULTS_CORRECTED,
    CorrectedResultLine,
    DepartmentBonusTotal,
    PublishedResultLine,
    ResultsCorrectedPayload,
)
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.results.models import EmployeeResultRow, Publication, ResultsAppealAdjustment, ResultsCycle, ResultsOutbox
from services.results.schemas import AppealApplied
from services.results.service.plans import replan
from services.results.service.pools import reallocate
from services.results.service.promotions import renominate
from services.results.service.publishing import parts, result_lines
from services.results.service.records import SERVICE, commit_once, get_cycle, rating_labels
from services.results.service.scope import acting_sub

__all__ = ["apply_appeal", "follow_results"]


async def follow_results(
    session: AsyncSession, *, cycle: ResultsCycle, employee_ids: list[str], actor: str, now: datetime, note: str
) -> list[str]:
    """After the results of ``employee_ids`` changed: allocate their departments' pools again, and
    re-apply the promotion and development rules to them. Returns the re-allocated departments."""
    rows = (
        await session.scalars(
            select(EmployeeResultRow).where(
                EmployeeResultRow.cycle_id == cycle.cycle_id, EmployeeResultRow.employee_id.in_(employee_ids)
            )
        )
    ).all()
    reallocated = []
    for department_id in sorted({r.department_id for r in rows}):
        if await reallocate(session, cycle=cycle, department_id=department_id, actor=actor, now=now, note=note):
            reallocated.append(department_id)
    await renominate(session, cycle, rows, now)
    await replan(session, cycle, rows, now)
    return reallocated


def _read(row: ResultsAppealAdjustment, *, replayed: bool) -> AppealApplied:
    return AppealApplied.model_validate(row).model_copy(update={"replayed": replayed})


async def apply_appeal(
    *, session: AsyncSession, cycle_id: str, adjustment: AppealAdjustment, principal: Principal, now: datetime
) -> AppealApplied:
    """Apply an adjusted appeal once (a retry with the same ``appeal_id`` answers the recorded one)."""
    if principal.acting_employee_id == adjustment.employee_id:
        raise DomainError(
            f"you cannot resolve an appeal about your own result ({adjustment.employee_id!r} is the person this "
            "call acts for); another HR person must resolve it",
            status_code=403,
            field="employee_id",
        )

    async def attempt() -> tuple[ResultsAppealAdjustment, bool]:
        previous = await session.get(ResultsAppealAdjustment, (cycle_id, adjustment.appeal_id))
        if previous is not None:
            if previous.employee_id != adjustment.employee_id:
                raise DomainError(
                    f"appeal {adjustment.appeal_id!r} was already applied to another employee",
                    status_code=409,
                    field="appeal_id",
                )
            return previous, True
        return await _apply(session, cycle_id, adjustment, actor=acting_sub(principal), now=now), False

    row, replayed = await commit_once(session, attempt)
    return _read(row, replayed=replayed)


async def _apply(
    session: AsyncSession, cycle_id: str, adjustment: AppealAdjustment, *, actor: str, now: datetime
) -> ResultsAppealAdjustment:
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    labels = rating_labels(cycle)
    if labels and adjustment.new_rating not in labels:
        raise DomainError(
            f"new_rating {adjustment.new_rating!r} is not a rating band of this cycle; bands are {labels}",
            field="new_rating",
        )
    result = await session.get(EmployeeResultRow, (cycle_id, adjustment.employee_id))
    record = ResultsAppealAdjustment(
        cycle_id=cycle_id,
        appeal_id=adjustment.appeal_id,
        employee_id=adjustment.employee_id,
        before_score=result.final_score if result else None,
        before_rating=result.rating if result else None,
        after_score=adjustment.new_score,
        after_rating=adjustment.new_rating,
        reason=adjustment.reason,
        actor=actor,
        applied_at=now,
        reallocated=[],
        event_ids=[],
    )
    session.add(record)
    if result is None:  # no results here yet: the final results the workflow pushes already carry it
        return record
    published = await session.get(Publication, cycle_id)
    department = {result.department_id}
    before = await result_lines(session, cycle_id, department) if published else None
    result.final_score, result.rating = adjustment.new_score, adjustment.new_rating
    note = f"allocated again after appeal {adjustment.appeal_id} ({adjustment.employee_id}: {adjustment.new_rating})"
    record.reallocated = await follow_results(
        session, cycle=cycle, employee_ids=[adjustment.employee_id], actor=actor, now=now, note=note
    )
    if published is not None and before is not None:
        await session.flush()
        after = await result_lines(session, cycle_id, department)
        await _correct(session, record, published, before=before[0], after=after)
    return record


async def _correct(
    session: AsyncSession,
    record: ResultsAppealAdjustment,
    published: Publication,
    *,
    before: list[PublishedResultLine],
    after: tuple[list[PublishedResultLine], list[DepartmentBonusTotal]],
) -> None:
    """Publish what changed since the publication (or the last correction) as ``ResultsCorrected``."""
    previous = {line.employee_id: line for line in before}
    lines = [
        CorrectedResultLine(
            **line.model_dump(),
            previous_final_score=previous[line.employee_id].final_score,
            previous_rating=previous[line.employee_id].rating,
            previous_bonus_cents=previous[line.employee_id].bonus_cents,
            previous_promotion_nominated=previous[line.employee_id].promotion_nominated,
        )
        for line in after[0]
        if line.employee_id in previous and line != previous[line.employee_id]
    ]
    if not lines:
        return
    last = await session.scalar(
        select(func.max(ResultsAppealAdjustment.correction_sequence)).where(
            ResultsAppealAdjustment.cycle_id == record.cycle_id
        )
    )
    record.correction_id, record.correction_sequence = str(uuid.uuid4()), (last or 0) + 1
    chunks = parts(lines)
    for part, chunk in enumerate(chunks, start=1):
        payload = ResultsCorrectedPayload(
            cycle_id=record.cycle_id,
            publication_id=published.publication_id,
            correction_id=record.correction_id,
            sequence=record.correction_sequence,
            part=part,
            parts=len(chunks),
            reason=f"appeal {record.appeal_id} adjusted: {record.reason}"[:2000],
            appeal_id=record.appeal_id,
            departments=after[1],
            lines=list(chunk),
        )
        event = new_event(
            service=SERVICE,
            type=RESULTS_CORRECTED,
            cycle_id=record.cycle_id,
            subject_id=record.correction_id,
            payload=payload,
        )
        add_event(session, ResultsOutbox, event)
        record.event_ids = [*record.event_ids, str(event.event_id)]
