"""Feedback on request: anybody asks a colleague, in any department, for feedback on something; the
colleague answers once (the answer is an attributed feedback note from them) or declines.

Seen by the two people and HR, and by the requester's managers when the requester shares it with
them (their choice, ``share_with_manager``; the answer note follows it). An open request
is a task for the person asked (the console's "my tasks"), with its due date when one was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.feedback.models import FeedbackNote, FeedbackRequest
from services.feedback.schemas import (
    FeedbackRequestAnswer,
    FeedbackRequestCreate,
    FeedbackRequestDecline,
    FeedbackRequestRead,
)
from services.feedback.service.scope import is_hr, my_employee_id, org_view

__all__ = ["answer_request", "decline_request", "list_requests", "request_feedback"]

STATUSES = ("open", "answered", "declined")


async def request_feedback(
    *, session: AsyncSession, cycle_id: str, principal: Principal, body: FeedbackRequestCreate, now: datetime
) -> FeedbackRequestRead:
    me = my_employee_id(principal)
    if body.giver_id == me:
        raise DomainError("you cannot ask yourself for feedback; ask a colleague", field="giver_id")
    org = await org_view(session=session, cycle_id=cycle_id)
    if body.giver_id not in org.participants:
        raise DomainError(f"{body.giver_id!r} is not a participant of cycle {cycle_id!r}", field="giver_id")
    if body.due_date is not None and body.due_date < now.date():
        raise DomainError(f"due_date {body.due_date.isoformat()} is in the past", field="due_date")
    waiting = await session.scalar(
        select(FeedbackRequest.id).where(
            FeedbackRequest.cycle_id == cycle_id,
            FeedbackRequest.requester_id == me,
            FeedbackRequest.giver_id == body.giver_id,
            FeedbackRequest.status == "open",
        )
    )
    if waiting is not None:
        raise DomainError(
            f"you already asked {body.giver_id!r} for feedback (request {waiting}); it is still open",
            status_code=409,
            field="giver_id",
        )
    row = FeedbackRequest(
        cycle_id=cycle_id,
        requester_id=me,
        giver_id=body.giver_id,
        question=body.question,
        status="open",
        due_date=body.due_date,
        share_with_manager=body.share_with_manager,
        created_at=now,
    )
    session.add(row)
    await session.commit()
    return _read(row, None, {p: org.participants[p].name for p in (me, body.giver_id) if p in org.participants})


async def list_requests(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    status: str | None,
    limit: int,
    offset: int,
) -> list[FeedbackRequestRead]:
    """The requests you made or were asked, and your reports' (HR: all); ``status`` filters."""
    query = select(FeedbackRequest).where(FeedbackRequest.cycle_id == cycle_id)
    if status is not None:
        if status not in STATUSES:
            raise DomainError(f"status must be one of {list(STATUSES)}, not {status!r}", field="status")
        query = query.where(FeedbackRequest.status == status)
    if not is_hr(principal):
        me = my_employee_id(principal)
        mine = or_(FeedbackRequest.giver_id == me, FeedbackRequest.requester_id == me)
        if principal.has(Role.MANAGER):
            reports = (await org_view(session=session, cycle_id=cycle_id)).reports_of(me)
            shared = FeedbackRequest.share_with_manager.is_(True) & FeedbackRequest.requester_id.in_(sorted(reports))
            mine = or_(mine, shared)
        query = query.where(mine)
    rows = (await session.scalars(query.order_by(FeedbackRequest.id).limit(limit).offset(offset))).all()
    return await _reads(session, rows)


async def answer_request(
    *, session: AsyncSession, request_id: int, principal: Principal, body: FeedbackRequestAnswer, now: datetime
) -> FeedbackRequestRead:
    row = await _open_request_of_mine(session, request_id, principal, "answer")
    note = FeedbackNote(
        cycle_id=row.cycle_id,
        author_id=row.giver_id,
        recipient_id=row.requester_id,
        kind="feedback",
        message=body.message,
        created_at=now,
        shared_with_manager=row.share_with_manager,
    )
    session.add(note)
    await session.flush()
    row.note_id, row.status, row.closed_at = note.id, "answered", now
    await session.commit()
    return _read(row, note.message, await _names(session, row.cycle_id))


async def decline_request(
    *, session: AsyncSession, request_id: int, principal: Principal, body: FeedbackRequestDecline, now: datetime
) -> FeedbackRequestRead:
    row = await _open_request_of_mine(session, request_id, principal, "decline")
    row.status, row.closed_at, row.decline_reason = "declined", now, body.reason
    await session.commit()
    return _read(row, None, await _names(session, row.cycle_id))


async def _open_request_of_mine(
    session: AsyncSession, request_id: int, principal: Principal, action: str
) -> FeedbackRequest:
    """The request, if the caller is the person asked and it is still open (404 to anyone not part of it)."""
    row = await session.get(FeedbackRequest, request_id)
    me = principal.acting_employee_id
    if row is None or (me not in (row.giver_id, row.requester_id) and not is_hr(principal)):
        raise DomainError(f"no feedback request {request_id}", status_code=404)
    if me != row.giver_id:
        who = f"only {row.giver_id!r}, who was asked,"
        raise DomainError(f"{who} can {action} feedback request {request_id}", status_code=403)
    if row.status != "open":
        raise DomainError(f"feedback request {request_id} was already {row.status}", status_code=409)
    return row


async def _names(session: AsyncSession, cycle_id: str) -> dict[str, str]:
    org = await org_view(session=session, cycle_id=cycle_id)
    return {employee_id: person.name for employee_id, person in org.participants.items()}


async def _reads(session: AsyncSession, rows: Sequence[FeedbackRequest]) -> list[FeedbackRequestRead]:
    names = await _names(session, rows[0].cycle_id) if rows else {}
    note_ids = [r.note_id for r in rows if r.note_id is not None]
    answers: dict[int, str] = {}
    if note_ids:
        query = select(FeedbackNote.id, FeedbackNote.message).where(FeedbackNote.id.in_(note_ids))
        notes = await session.execute(query)
        answers = {int(i): str(m) for i, m in notes.all()}
    return [_read(r, answers.get(r.note_id) if r.note_id is not None else None, names) for r in rows]


def _read(row: FeedbackRequest, answer: str | None, names: dict[str, str]) -> FeedbackRequestRead:
    return FeedbackRequestRead(
        id=row.id,
        cycle_id=row.cycle_id,
        requester_id=row.requester_id,
        requester_name=names.get(row.requester_id, ""),
        giver_id=row.giver_id,
        giver_name=names.get(row.giver_id, ""),
        question=row.question,
        status=row.status,
        due_date=row.due_date,
        share_with_manager=row.share_with_manager,
        created_at=row.created_at,
        closed_at=row.closed_at,
        answer=answer,
        decline_reason=row.decline_reason,
    )
