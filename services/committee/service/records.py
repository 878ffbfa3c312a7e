"""Rows of the committee service as its modules share them: ids, outbox events, the committee and
who may manage it, and the app's clients as the service functions take them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.committee import COMMITTEE_EVENT_PAYLOADS
from services.committee.models import CommitteeCommittee, CommitteeMember, CommitteeOutbox
from services.committee.sources import CycleData
from services.committee.temporal import CommitteeWorkflows
from services.common.auth import Principal, Role
from services.common.client import Actor, ServiceClient
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event

__all__ = [
    "SERVICE",
    "Clients",
    "actor_of",
    "emit_event",
    "ensure_manager",
    "is_manager",
    "load_committee",
    "members_of",
    "new_id",
]

SERVICE = "committee"


@dataclass(frozen=True)
class Clients:
    """What the service functions reach beyond their session: the other services and Temporal."""

    services: ServiceClient
    workflows: CommitteeWorkflows | None
    """``None`` when workflows are off (API-only tests, ``TANDEM_CYCLE_WORKFLOWS=0``)."""

    def data(self, actor: Actor | None) -> CycleData:
        return CycleData(self.services, actor=actor)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def actor_of(principal: Principal) -> Actor:
    return Actor(sub=principal.sub, employee_id=principal.employee_id)


_EVENT_TYPES = {payload: event_type for event_type, payload in COMMITTEE_EVENT_PAYLOADS.items()}


def emit_event(session: AsyncSession, payload: BaseModel, *, subject_id: str, cycle_id: str | None) -> None:
    """Add the domain event ``payload`` belongs to (``contracts.committee.COMMITTEE_EVENT_PAYLOADS``) to
    the outbox, in the caller's unit of work (published once committed)."""
    event = new_event(
        service=SERVICE, type=_EVENT_TYPES[type(payload)], cycle_id=cycle_id, subject_id=subject_id, payload=payload
    )
    add_event(session, CommitteeOutbox, event)


async def load_committee(session: AsyncSession, committee_id: str) -> CommitteeCommittee:
    committee = await session.get(CommitteeCommittee, committee_id)
    if committee is None:
        raise DomainError(f"committee {committee_id!r} does not exist", status_code=404)
    return committee


async def members_of(session: AsyncSession, committee_id: str) -> list[CommitteeMember]:
    rows = await session.scalars(
        select(CommitteeMember)
        .where(CommitteeMember.committee_id == committee_id)
        .order_by(CommitteeMember.employee_id)
    )
    return list(rows.all())


def is_manager(principal: Principal, members: list[CommitteeMember]) -> bool:
    """hr_admin manages every committee; a department head the committees they sit on."""
    if principal.has(Role.HR_ADMIN):
        return True
    me = principal.employee_id
    return principal.has(Role.DEPT_HEAD) and me is not None and any(m.employee_id == me for m in members)


async def ensure_manager(session: AsyncSession, committee: CommitteeCommittee, principal: Principal) -> None:
    """404 for a department head who does not sit on the committee (it is not theirs to see)."""
    if not is_manager(principal, await members_of(session, committee.committee_id)):
        raise DomainError(f"committee {committee.committee_id!r} does not exist", status_code=404)
