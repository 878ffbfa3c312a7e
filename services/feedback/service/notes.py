"""Continuous feedback and kudos: from any employee to any participant, across departments, attributed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.feedback.models import FeedbackNote
from services.feedback.schemas import FeedbackCreate
from services.feedback.service.scope import is_hr, my_employee_id, org_view

__all__ = ["give_feedback", "list_feedback"]


async def give_feedback(
    *, session: AsyncSession, cycle_id: str, principal: Principal, note: FeedbackCreate, now: datetime
) -> FeedbackNote:
    """Any employee may send feedback or kudos to any participant, across departments; it is attributed."""
    me = my_employee_id(principal)
    if note.recipient_id == me:
        raise DomainError("you cannot send feedback or kudos to yourself", field="recipient_id")
    org = await org_view(session=session, cycle_id=cycle_id)
    if note.recipient_id not in org.participants:
        raise DomainError(f"{note.recipient_id!r} is not a participant of cycle {cycle_id!r}", field="recipient_id")
    row = FeedbackNote(cycle_id=cycle_id, author_id=me, created_at=now, **note.model_dump())
    session.add(row)
    await session.commit()
    return row


async def list_feedback(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    recipient_id: str | None,
    limit: int,
    offset: int,
) -> Sequence[FeedbackNote]:
    """Visible to the author, the recipient and the recipient's managers (unless it answers a request its
    recipient kept from them), and HR."""
    query = select(FeedbackNote).where(FeedbackNote.cycle_id == cycle_id)
    if recipient_id:
        query = query.where(FeedbackNote.recipient_id == recipient_id)
    if not is_hr(principal):
        me = my_employee_id(principal)
        mine = or_(FeedbackNote.author_id == me, FeedbackNote.recipient_id == me)
        if principal.has(Role.MANAGER):
            reports = (await org_view(session=session, cycle_id=cycle_id)).reports_of(me)
            shared = FeedbackNote.shared_with_manager.is_(True) & FeedbackNote.recipient_id.in_(sorted(reports))
            mine = or_(mine, shared)
        query = query.where(mine)
    return (await session.scalars(query.order_by(FeedbackNote.id).limit(limit).offset(offset))).all()
