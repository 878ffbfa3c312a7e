"""1:1s between a manager and a report, with their action items; only the two parties change them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.action_items import ActionItemUpdate
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.feedback.models import ActionItem, OneOnOne
from services.feedback.schemas import ActionItemCreate, OneOnOneCreate, OneOnOneUpdate
from services.feedback.service.scope import is_hr, my_employee_id, org_view

__all__ = [
    "add_action_item",
    "create_one_on_one",
    "get_one_on_one",
    "list_one_on_ones",
    "update_action_item",
    "update_one_on_one",
]


async def create_one_on_one(
    *, session: AsyncSession, cycle_id: str, principal: Principal, meeting: OneOnOneCreate, now: datetime
) -> OneOnOne:
    """A manager opens a 1:1 with one of their reports, or an employee with their own manager."""
    me = my_employee_id(principal)
    org = await org_view(session=session, cycle_id=cycle_id)
    employee_id = meeting.employee_id
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
    row = OneOnOne(
        cycle_id=cycle_id,
        manager_id=manager_id,
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
        action_items=[],
        **meeting.model_dump(),
    )
    session.add(row)
    await session.commit()
    return row


async def get_one_on_one(
    *, session: AsyncSession, one_on_one_id: int, principal: Principal, write: bool = False
) -> OneOnOne:
    meeting = await session.get(OneOnOne, one_on_one_id)
    if meeting is not None and principal.acting_employee_id in (meeting.manager_id, meeting.employee_id):
        return meeting
    if meeting is not None and is_hr(principal):
        if not write:
            return meeting
        raise DomainError(
            f"1:1 {one_on_one_id} belongs to its manager and report; HR may read it, not change it", status_code=403
        )
    # One answer for "missing" and "not yours": a 403 would tell that the meeting exists.
    raise DomainError(f"no 1:1 {one_on_one_id} of yours (a 1:1 belongs to its manager and report)", status_code=404)


async def list_one_on_ones(
    *, session: AsyncSession, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[OneOnOne]:
    query = select(OneOnOne).where(OneOnOne.cycle_id == cycle_id)
    if not is_hr(principal):
        me = my_employee_id(principal)
        query = query.where(or_(OneOnOne.manager_id == me, OneOnOne.employee_id == me))
    return (
        await session.scalars(query.order_by(OneOnOne.scheduled_for, OneOnOne.id).limit(limit).offset(offset))
    ).all()


async def update_one_on_one(
    *, session: AsyncSession, one_on_one_id: int, principal: Principal, changes: OneOnOneUpdate, now: datetime
) -> OneOnOne:
    meeting = await get_one_on_one(session=session, one_on_one_id=one_on_one_id, principal=principal, write=True)
    for name, value in changes.model_dump(exclude_none=True).items():
        setattr(meeting, name, value)
    meeting.updated_at = now
    await session.commit()
    return meeting


async def add_action_item(
    *, session: AsyncSession, one_on_one_id: int, principal: Principal, item: ActionItemCreate, now: datetime
) -> ActionItem:
    meeting = await get_one_on_one(session=session, one_on_one_id=one_on_one_id, principal=principal, write=True)
    if item.owner_id not in (meeting.manager_id, meeting.employee_id):
        raise DomainError(
            f"an action item's owner must be the 1:1's manager ({meeting.manager_id}) "
            f"or report ({meeting.employee_id}), not {item.owner_id!r}",
            field="owner_id",
        )
    row = ActionItem(done=False, **item.model_dump())
    meeting.action_items.append(row)
    meeting.updated_at = now
    await session.commit()
    return row


async def update_action_item(
    *,
    session: AsyncSession,
    one_on_one_id: int,
    item_id: int,
    principal: Principal,
    changes: ActionItemUpdate,
    now: datetime,
) -> ActionItem:
    meeting = await get_one_on_one(session=session, one_on_one_id=one_on_one_id, principal=principal, write=True)
    item = next((i for i in meeting.action_items if i.id == item_id), None)
    if item is None:
        raise DomainError(f"action item {item_id} is not part of 1:1 {one_on_one_id}", status_code=404)
    if changes.owner_id is not None and changes.owner_id not in (meeting.manager_id, meeting.employee_id):
        raise DomainError("an action item's owner must be the 1:1's manager or report", field="owner_id")
    for name, value in changes.model_dump(exclude_none=True).items():
        setattr(item, name, value)
    meeting.updated_at = now
    await session.commit()
    return item
