"""What the sections of the feedback service layer share: its outbox, row counts, open appeal states."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.feedback import AppealStatus
from services.common.outbox import add_event, new_event
from services.feedback.models import FeedbackOutbox

__all__ = ["OPEN_APPEAL_STATUSES", "SERVICE", "count", "emit"]

SERVICE = "feedback"
OPEN_APPEAL_STATUSES = (AppealStatus.SUBMITTED.value, AppealStatus.UNDER_REVIEW.value)


def emit(session: AsyncSession, *, type: str, cycle_id: str, subject_id: str | None, payload: BaseModel) -> None:
    """Write a domain event to the outbox, in the transaction of the change it reports (``payload``: the
    type's model in ``contracts.domain_events``, checked before it is written)."""
    add_event(
        session,
        FeedbackOutbox,
        new_event(service=SERVICE, type=type, cycle_id=cycle_id, subject_id=subject_id, payload=payload),
    )


async def count(session: AsyncSession, model: Any, *conditions: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)
