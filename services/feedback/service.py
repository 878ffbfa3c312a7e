"""Domain rules of the feedback service: release, acknowledgement, appeals, 1:1s, feedback and kudos.

Functions are keyword-only, take the session and the caller's ``now`` (a clock the
app injects, so deadline tests never sleep) and never commit: the route does, so
each change and its outbox event land in one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.evaluation import CycleResults
from contracts.feedback import AppealAdjustment, AppealOutcome, AppealStatus, FeedbackEventType
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.participants import OrgView, load_org
from services.feedback.models import (
    ActionItem,
    Appeal,
    AppealEvent,
    FeedbackCycle,
    FeedbackDepartment,
    FeedbackNote,
    FeedbackOutbox,
    FeedbackParticipant,
    OneOnOne,
    ReleasedResult,
)

__all__ = [
    "OPEN_APPEAL_STATUSES",
    "AdjustmentSender",
    "CycleConfig",
    "PushSummary",
    "ReleaseSummary",
    "WithdrawSummary",
    "acknowledge_result",
    "add_action_item",
    "appeal_deadline",
    "configure_cycle",
    "create_one_on_one",
    "get_appeal",
    "get_cycle",
    "get_one_on_one",
    "get_result",
    "give_feedback",
    "list_appeals",
    "list_feedback",
    "list_one_on_ones",
    "list_results",
    "org_view",
    "overdue_appeals",
    "pending_report",
    "push_results",
    "release_results",
    "resolve_appeal",
    "start_review",
    "submit_appeal",
    "update_action_item",
    "update_one_on_one",
    "withdraw_results",
]

SERVICE = "feedback"
OPEN_APPEAL_STATUSES = (AppealStatus.SUBMITTED.value, AppealStatus.UNDER_REVIEW.value)
AdjustmentSender = Callable[[str, AppealAdjustment], Awaitable[None]]
"""Records an adjusted appeal with evaluation: ``(cycle_id, adjustment)``; raises ``DomainError`` on failure."""


def _emit(session: AsyncSession, *, type: str, cycle_id: str, subject_id: str | None, payload: dict[str, Any]) -> None:
    add_event(
        session,
        FeedbackOutbox,
        new_event(service=SERVICE, type=type, cycle_id=cycle_id, subject_id=subject_id, payload=payload),
    )


def _is_hr(principal: Principal) -> bool:
    return principal.has(Role.HR_ADMIN)


def _me(principal: Principal) -> str:
    if not principal.employee_id:
        raise DomainError(
            "this action needs a token with an employee_id claim (it acts on your own records)",
            status_code=403,
            field="employee_id",
        )
    return principal.employee_id


async def org_view(session: AsyncSession, cycle_id: str) -> OrgView:
    return await load_org(session, FeedbackParticipant, FeedbackDepartment, cycle_id)


# -- cycle state and results ---------------------------------------------------------------------
@dataclass(frozen=True)
class CycleConfig:
    appeal_window_days: int | None = None
    hr_resolution_days: int | None = None
    calibration_closed: bool | None = None


async def get_cycle(session: AsyncSession, *, cycle_id: str, create: bool = False) -> FeedbackCycle:
    cycle = await session.get(FeedbackCycle, cycle_id)
    if cycle is None:
        if not create:
            raise DomainError(f"cycle {cycle_id!r} has no feedback data yet", status_code=404, field="cycle_id")
        cycle = FeedbackCycle(cycle_id=cycle_id, calibration_closed=False, appeal_window_days=14, hr_resolution_days=10)
        session.add(cycle)
    return cycle


async def configure_cycle(session: AsyncSession, *, cycle_id: str, config: CycleConfig) -> FeedbackCycle:
    cycle = await get_cycle(session, cycle_id=cycle_id, create=True)
    if config.appeal_window_days is not None:
        cycle.appeal_window_days = config.appeal_window_days
    if config.hr_resolution_days is not None:
        cycle.hr_resolution_days = config.hr_resolution_days
    if config.calibration_closed is not None:
        cycle.calibration_closed = config.calibration_closed
    return cycle


@dataclass(frozen=True)
class PushSummary:
    cycle_id: str
    received: int
    updated: int
    kept_released: int


async def push_results(
    session: AsyncSession, *, results: CycleResults, calibration_closed: bool, now: datetime
) -> PushSummary:
    """Store (idempotently) the calibrated results; a released result is never changed by a re-push."""
    cycle = await get_cycle(session, cycle_id=results.cycle_id, create=True)
    if cycle.withdrawn_at is not None:
        raise DomainError(
            f"cycle {results.cycle_id!r} results were withdrawn at {cycle.withdrawn_at.isoformat()} "
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
        for row in (
            await session.scalars(select(ReleasedResult).where(ReleasedResult.cycle_id == results.cycle_id))
        ).all()
    }
    updated = kept = 0
    for r in results.results:
        row = existing.get(r.employee_id)
        if row is None:
            row = ReleasedResult(cycle_id=results.cycle_id, employee_id=r.employee_id, status="pending")
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
    return PushSummary(cycle_id=results.cycle_id, received=len(results.results), updated=updated, kept_released=kept)


@dataclass(frozen=True)
class ReleaseSummary:
    cycle_id: str
    released: int
    already_released: int
    released_at: datetime
    appeal_deadline: datetime


async def release_results(session: AsyncSession, *, cycle_id: str, now: datetime) -> ReleaseSummary:
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
    pending = (
        await session.scalars(
            select(ReleasedResult).where(ReleasedResult.cycle_id == cycle_id, ReleasedResult.status == "pending")
        )
    ).all()
    already = await _count(
        session, ReleasedResult, ReleasedResult.cycle_id == cycle_id, ReleasedResult.status == "released"
    )
    for row in pending:
        row.status = "released"
        row.released_at = now
    if cycle.released_at is None:
        cycle.released_at = now
    if pending:
        _emit(
            session,
            type=FeedbackEventType.RESULTS_RELEASED,
            cycle_id=cycle_id,
            subject_id=None,
            payload={
                "released": len(pending),
                "department_ids": sorted({r.department_id for r in pending}),
                "released_at": now.isoformat(),
            },
        )
    return ReleaseSummary(
        cycle_id=cycle_id,
        released=len(pending),
        already_released=already,
        released_at=cycle.released_at,
        appeal_deadline=now + timedelta(days=cycle.appeal_window_days),
    )


@dataclass(frozen=True)
class WithdrawSummary:
    cycle_id: str
    withdrawn: int
    kept_released: int
    released_employee_ids: list[str]


async def withdraw_results(session: AsyncSession, *, cycle_id: str, now: datetime) -> WithdrawSummary:
    """Cancel compensation: unreleased results are withdrawn, released ones stay (and are reported)."""
    cycle = await get_cycle(session, cycle_id=cycle_id, create=True)
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
    return WithdrawSummary(
        cycle_id=cycle_id,
        withdrawn=int(getattr(result, "rowcount", 0) or 0),
        kept_released=len(released),
        released_employee_ids=list(released[:500]),
    )


def appeal_deadline(cycle: FeedbackCycle, result: ReleasedResult) -> datetime | None:
    if result.released_at is None:
        return None
    return result.released_at + timedelta(days=cycle.appeal_window_days)


async def list_results(
    session: AsyncSession, *, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[ReleasedResult]:
    """HR and ops see every result; anyone else only released results in their scope."""
    query = select(ReleasedResult).where(ReleasedResult.cycle_id == cycle_id)
    if not principal.has(Role.HR_ADMIN, Role.OPS):
        org = await org_view(session, cycle_id)
        visible = org.visible_employee_ids(principal) or set()
        query = query.where(ReleasedResult.status == "released", ReleasedResult.employee_id.in_(sorted(visible)))
    return (await session.scalars(query.order_by(ReleasedResult.employee_id).limit(limit).offset(offset))).all()


async def get_result(session: AsyncSession, *, cycle_id: str, employee_id: str, principal: Principal) -> ReleasedResult:
    if not principal.has(Role.HR_ADMIN, Role.OPS):
        org = await org_view(session, cycle_id)
        if not org.can_see(principal, employee_id):
            raise DomainError(
                f"you may read only your own result (or your reports'); {employee_id!r} is not in your scope",
                status_code=403,
                field="employee_id",
            )
    row = await session.get(ReleasedResult, (cycle_id, employee_id))
    if row is None or (row.status != "released" and not principal.has(Role.HR_ADMIN, Role.OPS)):
        raise DomainError(f"no released result for employee {employee_id!r} in cycle {cycle_id!r}", status_code=404)
    return row


async def acknowledge_result(
    session: AsyncSession, *, cycle_id: str, employee_id: str, principal: Principal, now: datetime
) -> ReleasedResult:
    if _me(principal) != employee_id:
        raise DomainError("you can acknowledge only your own result", status_code=403, field="employee_id")
    row = await session.get(ReleasedResult, (cycle_id, employee_id))
    if row is None or row.status != "released":
        raise DomainError(f"you have no released result in cycle {cycle_id!r} to acknowledge", status_code=404)
    if row.acknowledged_at is None:
        row.acknowledged_at = now
        _emit(
            session,
            type=FeedbackEventType.RESULT_ACKNOWLEDGED,
            cycle_id=cycle_id,
            subject_id=employee_id,
            payload={"employee_id": employee_id, "department_id": row.department_id, "at": now.isoformat()},
        )
    return row


# -- appeals -------------------------------------------------------------------------------------
def _step(appeal: Appeal, *, at: datetime, actor: str, action: str, to_status: str, note: str | None) -> None:
    appeal.events.append(
        AppealEvent(at=at, actor=actor, action=action, from_status=appeal.status, to_status=to_status, note=note)
    )
    appeal.status = to_status


async def submit_appeal(
    session: AsyncSession, *, cycle_id: str, principal: Principal, reason: str, now: datetime
) -> Appeal:
    me = _me(principal)
    cycle = await get_cycle(session, cycle_id=cycle_id)
    result = await session.get(ReleasedResult, (cycle_id, me))
    if result is None or result.status != "released":
        raise DomainError(f"you have no released result in cycle {cycle_id!r} to appeal", status_code=404)
    deadline = appeal_deadline(cycle, result)
    assert deadline is not None  # released results always carry released_at
    if now > deadline:
        raise DomainError(
            f"the appeal window closed at {deadline.isoformat()} "
            f"({cycle.appeal_window_days} days after the result was released); appeals are no longer accepted",
            status_code=409,
        )
    open_count = await _count(
        session, Appeal, Appeal.cycle_id == cycle_id, Appeal.employee_id == me, Appeal.status.in_(OPEN_APPEAL_STATUSES)
    )
    if open_count:
        raise DomainError("you already have an open appeal for this cycle", status_code=409)
    appeal = Appeal(
        cycle_id=cycle_id,
        employee_id=me,
        department_id=result.department_id,
        reason=reason,
        status=AppealStatus.SUBMITTED.value,
        submitted_at=now,
        hr_due_at=now + timedelta(days=cycle.hr_resolution_days),
        previous_score=result.final_score,
        previous_rating=result.rating,
        events=[
            AppealEvent(
                at=now, actor=principal.sub, action="submit", from_status=None, to_status="submitted", note=reason
            )
        ],
    )
    session.add(appeal)
    await session.flush()
    _emit(
        session,
        type=FeedbackEventType.APPEAL_SUBMITTED,
        cycle_id=cycle_id,
        subject_id=str(appeal.id),
        payload={
            "appeal_id": appeal.id,
            "employee_id": me,
            "department_id": result.department_id,
            "hr_due_at": appeal.hr_due_at.isoformat(),
        },
    )
    return appeal


async def _appeal_in_scope(session: AsyncSession, *, appeal_id: int, principal: Principal) -> Appeal:
    appeal = await session.get(Appeal, appeal_id)
    if appeal is None:
        raise DomainError(f"appeal {appeal_id} does not exist", status_code=404)
    if not principal.has(Role.HR_ADMIN, Role.OPS):
        org = await org_view(session, appeal.cycle_id)
        if not org.can_see(principal, appeal.employee_id):
            raise DomainError(f"appeal {appeal_id} is not in your scope", status_code=403)
    return appeal


async def get_appeal(session: AsyncSession, *, appeal_id: int, principal: Principal) -> Appeal:
    return await _appeal_in_scope(session, appeal_id=appeal_id, principal=principal)


async def list_appeals(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    status: str | None,
    limit: int,
    offset: int,
) -> Sequence[Appeal]:
    query = select(Appeal).where(Appeal.cycle_id == cycle_id)
    if status:
        query = query.where(Appeal.status == status)
    if not principal.has(Role.HR_ADMIN, Role.OPS):
        visible = (await org_view(session, cycle_id)).visible_employee_ids(principal) or set()
        query = query.where(Appeal.employee_id.in_(sorted(visible)))
    return (await session.scalars(query.order_by(Appeal.id).limit(limit).offset(offset))).all()


async def start_review(session: AsyncSession, *, appeal_id: int, principal: Principal, now: datetime) -> Appeal:
    appeal = await _appeal_in_scope(session, appeal_id=appeal_id, principal=principal)
    if appeal.status == AppealStatus.UNDER_REVIEW:
        return appeal
    if appeal.status != AppealStatus.SUBMITTED:
        raise DomainError(f"appeal {appeal_id} is already resolved ({appeal.status})", status_code=409)
    _step(appeal, at=now, actor=principal.sub, action="start_review", to_status="under_review", note=None)
    return appeal


async def resolve_appeal(
    session: AsyncSession,
    *,
    appeal_id: int,
    principal: Principal,
    outcome: AppealOutcome,
    note: str,
    new_score: float | None,
    new_rating: str | None,
    now: datetime,
    send_adjustment: AdjustmentSender,
) -> Appeal:
    """HR closes an appeal; *adjusted* records the new score through evaluation first, then locally."""
    appeal = await _appeal_in_scope(session, appeal_id=appeal_id, principal=principal)
    if appeal.status not in OPEN_APPEAL_STATUSES:
        raise DomainError(
            f"appeal {appeal_id} was already resolved ({appeal.status}) at "
            f"{appeal.resolved_at.isoformat() if appeal.resolved_at else '?'}",
            status_code=409,
        )
    result = await session.get(ReleasedResult, (appeal.cycle_id, appeal.employee_id))
    if result is None:
        raise DomainError(f"the appealed result of {appeal.employee_id!r} no longer exists", status_code=409)
    if outcome == AppealOutcome.ADJUSTED:
        if new_score is None or not new_rating:
            raise DomainError("an adjusted appeal needs new_score and new_rating", field="new_score")
        cycle = await get_cycle(session, cycle_id=appeal.cycle_id)
        lo, hi = cycle.scale_min, cycle.scale_max
        if lo is not None and hi is not None and not lo <= new_score <= hi:
            raise DomainError(f"new_score {new_score} is outside the cycle's scale [{lo}, {hi}]", field="new_score")
        # Evaluation owns calibration: record there first, so a failure leaves this appeal open for a retry
        # (evaluation may deduplicate on appeal_id).
        await send_adjustment(
            appeal.cycle_id,
            AppealAdjustment(
                employee_id=appeal.employee_id,
                new_score=new_score,
                new_rating=new_rating,
                reason=note,
                appeal_id=str(appeal.id),
            ),
        )
        result.final_score = new_score
        result.rating = new_rating
        result.adjusted_by_appeal_id = appeal.id
        appeal.new_score = new_score
        appeal.new_rating = new_rating
    elif new_score is not None or new_rating is not None:
        raise DomainError(
            f"new_score/new_rating are only allowed when the outcome is 'adjusted', not {outcome.value!r}",
            field="outcome",
        )
    if appeal.status == AppealStatus.SUBMITTED:
        _step(appeal, at=now, actor=principal.sub, action="start_review", to_status="under_review", note=None)
    _step(appeal, at=now, actor=principal.sub, action="resolve", to_status=outcome.value, note=note)
    appeal.resolved_at = now
    appeal.resolved_by = principal.sub
    appeal.resolution_note = note
    _emit(
        session,
        type=FeedbackEventType.APPEAL_RESOLVED,
        cycle_id=appeal.cycle_id,
        subject_id=str(appeal.id),
        payload={
            "appeal_id": appeal.id,
            "employee_id": appeal.employee_id,
            "outcome": outcome.value,
            "new_score": appeal.new_score,
            "new_rating": appeal.new_rating,
            "late": now > appeal.hr_due_at,
        },
    )
    return appeal


async def overdue_appeals(
    session: AsyncSession, *, now: datetime, cycle_id: str | None, limit: int, offset: int
) -> Sequence[Appeal]:
    """Open appeals whose HR resolution deadline has passed (for ops)."""
    query = select(Appeal).where(Appeal.status.in_(OPEN_APPEAL_STATUSES), Appeal.hr_due_at < now)
    if cycle_id:
        query = query.where(Appeal.cycle_id == cycle_id)
    return (await session.scalars(query.order_by(Appeal.hr_due_at, Appeal.id).limit(limit).offset(offset))).all()


# -- 1:1s ----------------------------------------------------------------------------------------
async def create_one_on_one(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    employee_id: str,
    scheduled_for: datetime,
    agenda: list[str],
    notes: str,
    now: datetime,
) -> OneOnOne:
    """A manager opens a 1:1 with one of their reports, or an employee with their own manager."""
    me = _me(principal)
    org = await org_view(session, cycle_id)
    employee = org.participants.get(employee_id)
    if employee is None:
        raise DomainError(f"{employee_id!r} is not a participant of cycle {cycle_id!r}", field="employee_id")
    if employee_id == me:
        if not employee.manager_id:
            raise DomainError("you have no manager in this cycle to hold a 1:1 with", field="employee_id")
        manager_id = employee.manager_id
    elif principal.has(Role.MANAGER) and employee_id in org.reports_of(me):
        manager_id = me
    else:
        raise DomainError(
            f"a 1:1 is between a manager and their report; {employee_id!r} does not report to you",
            status_code=403,
            field="employee_id",
        )
    meeting = OneOnOne(
        cycle_id=cycle_id,
        manager_id=manager_id,
        employee_id=employee_id,
        scheduled_for=scheduled_for,
        agenda=agenda,
        notes=notes,
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
        action_items=[],
    )
    session.add(meeting)
    await session.flush()
    return meeting


def _party(meeting: OneOnOne, principal: Principal) -> bool:
    return principal.employee_id in (meeting.manager_id, meeting.employee_id)


async def get_one_on_one(
    session: AsyncSession, *, one_on_one_id: int, principal: Principal, write: bool = False
) -> OneOnOne:
    meeting = await session.get(OneOnOne, one_on_one_id)
    if meeting is None:
        raise DomainError(f"1:1 {one_on_one_id} does not exist", status_code=404)
    if _party(meeting, principal):
        return meeting
    if not write and _is_hr(principal):
        return meeting
    raise DomainError(
        f"1:1 {one_on_one_id} belongs to its manager and report"
        + (" (HR may read it, not change it)" if write and _is_hr(principal) else ""),
        status_code=403,
    )


async def list_one_on_ones(
    session: AsyncSession, *, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[OneOnOne]:
    query = select(OneOnOne).where(OneOnOne.cycle_id == cycle_id)
    if not _is_hr(principal):
        me = _me(principal)
        query = query.where(or_(OneOnOne.manager_id == me, OneOnOne.employee_id == me))
    return (
        await session.scalars(query.order_by(OneOnOne.scheduled_for, OneOnOne.id).limit(limit).offset(offset))
    ).all()


async def update_one_on_one(
    session: AsyncSession,
    *,
    one_on_one_id: int,
    principal: Principal,
    changes: dict[str, Any],
    now: datetime,
) -> OneOnOne:
    meeting = await get_one_on_one(session, one_on_one_id=one_on_one_id, principal=principal, write=True)
    for name in ("scheduled_for", "agenda", "notes"):
        if name in changes and changes[name] is not None:
            setattr(meeting, name, changes[name])
    meeting.updated_at = now
    return meeting


async def add_action_item(
    session: AsyncSession,
    *,
    one_on_one_id: int,
    principal: Principal,
    description: str,
    owner_id: str,
    due_date: date,
    now: datetime,
) -> ActionItem:
    meeting = await get_one_on_one(session, one_on_one_id=one_on_one_id, principal=principal, write=True)
    if owner_id not in (meeting.manager_id, meeting.employee_id):
        raise DomainError(
            f"an action item's owner must be the 1:1's manager ({meeting.manager_id}) "
            f"or report ({meeting.employee_id}), not {owner_id!r}",
            field="owner_id",
        )
    item = ActionItem(description=description, owner_id=owner_id, due_date=due_date, done=False)
    meeting.action_items.append(item)
    meeting.updated_at = now
    await session.flush()
    return item


async def update_action_item(
    session: AsyncSession,
    *,
    one_on_one_id: int,
    item_id: int,
    principal: Principal,
    changes: dict[str, Any],
    now: datetime,
) -> ActionItem:
    meeting = await get_one_on_one(session, one_on_one_id=one_on_one_id, principal=principal, write=True)
    item = next((i for i in meeting.action_items if i.id == item_id), None)
    if item is None:
        raise DomainError(f"action item {item_id} is not part of 1:1 {one_on_one_id}", status_code=404)
    owner = changes.get("owner_id")
    if owner is not None and owner not in (meeting.manager_id, meeting.employee_id):
        raise DomainError("an action item's owner must be the 1:1's manager or report", field="owner_id")
    for name in ("description", "owner_id", "due_date", "done"):
        if name in changes and changes[name] is not None:
            setattr(item, name, changes[name])
    meeting.updated_at = now
    return item


# -- continuous feedback and kudos ---------------------------------------------------------------
async def give_feedback(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    recipient_id: str,
    kind: str,
    message: str,
    now: datetime,
) -> FeedbackNote:
    """Any employee may send feedback or kudos to any participant, across departments; it is attributed."""
    me = _me(principal)
    if recipient_id == me:
        raise DomainError("you cannot send feedback or kudos to yourself", field="recipient_id")
    org = await org_view(session, cycle_id)
    if recipient_id not in org.participants:
        raise DomainError(f"{recipient_id!r} is not a participant of cycle {cycle_id!r}", field="recipient_id")
    note = FeedbackNote(
        cycle_id=cycle_id, author_id=me, recipient_id=recipient_id, kind=kind, message=message, created_at=now
    )
    session.add(note)
    await session.flush()
    return note


async def list_feedback(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    recipient_id: str | None,
    limit: int,
    offset: int,
) -> Sequence[FeedbackNote]:
    """Visible to the author, the recipient and the recipient's managers (and HR)."""
    query = select(FeedbackNote).where(FeedbackNote.cycle_id == cycle_id)
    if recipient_id:
        query = query.where(FeedbackNote.recipient_id == recipient_id)
    if not _is_hr(principal):
        me = _me(principal)
        recipients = {me}
        if principal.has(Role.MANAGER):
            recipients |= (await org_view(session, cycle_id)).reports_of(me)
        query = query.where(or_(FeedbackNote.author_id == me, FeedbackNote.recipient_id.in_(sorted(recipients))))
    return (await session.scalars(query.order_by(FeedbackNote.id).limit(limit).offset(offset))).all()


# -- workflow view -------------------------------------------------------------------------------
async def _count(session: AsyncSession, model: Any, *conditions: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)


async def pending_report(session: AsyncSession, *, cycle_id: str, department_id: str) -> PendingReport:
    """Feedback stage: released results not yet acknowledged, and appeals HR has not resolved."""
    released = ReleasedResult.status == "released"
    in_dept = ReleasedResult.department_id == department_id
    results_total = await _count(session, ReleasedResult, ReleasedResult.cycle_id == cycle_id, in_dept, released)
    acknowledged = await _count(
        session,
        ReleasedResult,
        ReleasedResult.cycle_id == cycle_id,
        in_dept,
        released,
        ReleasedResult.acknowledged_at.is_not(None),
    )
    appeals_total = await _count(session, Appeal, Appeal.cycle_id == cycle_id, Appeal.department_id == department_id)
    open_appeals = (
        await session.scalars(
            select(Appeal)
            .where(
                Appeal.cycle_id == cycle_id,
                Appeal.department_id == department_id,
                Appeal.status.in_(OPEN_APPEAL_STATUSES),
            )
            .order_by(Appeal.id)
            .limit(500)
        )
    ).all()
    unacknowledged = (
        await session.scalars(
            select(ReleasedResult.employee_id)
            .where(ReleasedResult.cycle_id == cycle_id, in_dept, released, ReleasedResult.acknowledged_at.is_(None))
            .order_by(ReleasedResult.employee_id)
            .limit(500)
        )
    ).all()
    items = [PendingItem(item_id=f"appeal-{a.id}", kind="appeal_resolution", owner_id=None) for a in open_appeals]
    items += [PendingItem(item_id=e, kind="result_acknowledgement", owner_id=e) for e in unacknowledged]
    open_count = await _count(
        session,
        Appeal,
        Appeal.cycle_id == cycle_id,
        Appeal.department_id == department_id,
        Appeal.status.in_(OPEN_APPEAL_STATUSES),
    )
    return PendingReport(
        cycle_id=cycle_id,
        stage=Stage.FEEDBACK,
        department_id=department_id,
        total=results_total + appeals_total,
        done=acknowledged + (appeals_total - open_count),
        pending=items[:500],
    )
