"""Committees: who sits on them (by function and role), their cadence and their thresholds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.committee import (
    CommitteeChangedPayload,
    CommitteeCreatedPayload,
    CommitteeSeat,
    DecisionPolicy,
    MeetingCadence,
)
from services.committee.agenda import AgendaRules
from services.committee.models import CommitteeCommittee, CommitteeMember
from services.committee.rules import Seat, composition_problems
from services.committee.schemas import (
    CadenceUpdate,
    CommitteeCreate,
    CommitteeRead,
    CommitteeUpdate,
    MemberIn,
    MemberRead,
)
from services.committee.service.records import (
    Clients,
    actor_of,
    emit_event,
    ensure_manager,
    is_manager,
    load_committee,
    members_of,
    new_id,
)
from services.common.auth import Principal, Role
from services.common.clock import utc_now
from services.common.errors import DomainError

__all__ = [
    "committee_read",
    "create_committee",
    "get_committee",
    "list_committees",
    "set_cadence",
    "update_committee",
]


def _check_members(members: Sequence[MemberIn], principal: Principal) -> None:
    problems = composition_problems([Seat(m.employee_id, m.function, m.role) for m in members])
    if problems:
        raise DomainError("; ".join(problems), field="members")
    if not principal.has(Role.HR_ADMIN) and principal.employee_id not in {m.employee_id for m in members}:
        raise DomainError(
            "a department head manages only committees they sit on: add yourself to the members", field="members"
        )


def _member_rows(committee_id: str, members: Sequence[MemberIn]) -> list[CommitteeMember]:
    return [CommitteeMember(committee_id=committee_id, **m.model_dump(mode="json")) for m in members]


def committee_read(committee: CommitteeCommittee, members: Sequence[CommitteeMember]) -> CommitteeRead:
    return CommitteeRead(
        committee_id=committee.committee_id,
        name=committee.name,
        cycle_id=committee.cycle_id,
        standing=committee.cycle_id is None,
        members=[MemberRead.model_validate(m) for m in members],
        cadence=MeetingCadence.model_validate(committee.cadence) if committee.cadence else None,
        schedule_state=committee.schedule_state,
        decision_policy=DecisionPolicy.model_validate(committee.decision_policy),
        agenda_rules=AgendaRules.model_validate(committee.agenda_rules),
        created_by=committee.created_by,
        created_at=committee.created_at,
        updated_at=committee.updated_at,
        version=committee.version,
    )


async def _keep_schedule(session: AsyncSession, committee: CommitteeCommittee, clients: Clients) -> None:
    """After the commit, best effort: bring the Temporal Schedule in line with the stored cadence."""
    if clients.workflows is None:
        return
    cadence = MeetingCadence.model_validate(committee.cadence) if committee.cadence else None
    committee.schedule_state = await clients.workflows.keep_schedule(
        committee_id=committee.committee_id, cycle_id=committee.cycle_id, cadence=cadence
    )
    await session.commit()


async def create_committee(
    *, session: AsyncSession, data: CommitteeCreate, principal: Principal, clients: Clients
) -> CommitteeRead:
    _check_members(data.members, principal)
    if data.cycle_id is not None:
        await clients.data(actor_of(principal)).cycle(data.cycle_id)
    committee_id = data.committee_id or new_id("committee")
    if await session.get(CommitteeCommittee, committee_id) is not None:
        raise DomainError(f"committee {committee_id!r} already exists", status_code=409, field="committee_id")
    now = utc_now()
    committee = CommitteeCommittee(
        committee_id=committee_id,
        name=data.name,
        cycle_id=data.cycle_id,
        cadence=data.cadence.model_dump(mode="json") if data.cadence else None,
        decision_policy=data.decision_policy.model_dump(mode="json"),
        agenda_rules=data.agenda_rules.model_dump(mode="json"),
        schedule_state="none",
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
        version=1,
    )
    members = _member_rows(committee_id, data.members)
    session.add(committee)
    session.add_all(members)
    created = CommitteeCreatedPayload(
        committee_id=committee_id,
        name=data.name,
        standing=data.cycle_id is None,
        members=[CommitteeSeat.model_validate(m.model_dump(exclude={"name"})) for m in data.members],
        cadence=data.cadence,
    )
    emit_event(session, created, subject_id=committee_id, cycle_id=data.cycle_id)
    await session.commit()
    await _keep_schedule(session, committee, clients)
    return committee_read(committee, members)


async def list_committees(*, session: AsyncSession, principal: Principal) -> list[CommitteeRead]:
    """hr_admin: every committee; a department head: the committees they sit on."""
    committees = (await session.scalars(select(CommitteeCommittee).order_by(CommitteeCommittee.created_at))).all()
    found = []
    for committee in committees:
        members = await members_of(session, committee.committee_id)
        if is_manager(principal, members):
            found.append(committee_read(committee, members))
    return found


async def get_committee(*, session: AsyncSession, committee_id: str, principal: Principal) -> CommitteeRead:
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    return committee_read(committee, await members_of(session, committee_id))


async def update_committee(
    *, session: AsyncSession, committee_id: str, data: CommitteeUpdate, principal: Principal
) -> CommitteeRead:
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    if data.name is not None:
        committee.name = data.name
    if data.decision_policy is not None:
        committee.decision_policy = data.decision_policy.model_dump(mode="json")
    if data.agenda_rules is not None:
        committee.agenda_rules = data.agenda_rules.model_dump(mode="json")
    if data.members is not None:
        _check_members(data.members, principal)
        await session.execute(delete(CommitteeMember).where(CommitteeMember.committee_id == committee_id))
        session.add_all(_member_rows(committee_id, data.members))
    committee.updated_at = utc_now()
    committee.version += 1
    changed = CommitteeChangedPayload(
        committee_id=committee_id, changed=sorted(data.model_fields_set), by=principal.sub
    )
    emit_event(session, changed, subject_id=committee_id, cycle_id=committee.cycle_id)
    await session.commit()
    return committee_read(committee, await members_of(session, committee_id))


async def set_cadence(
    *, session: AsyncSession, committee_id: str, data: CadenceUpdate, principal: Principal, clients: Clients
) -> CommitteeRead:
    """Store the cadence, then create, update or delete the meeting Schedule (retries a failed one)."""
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    committee.cadence = data.cadence.model_dump(mode="json") if data.cadence else None
    committee.updated_at = utc_now()
    committee.version += 1
    changed = CommitteeChangedPayload(
        committee_id=committee_id, changed=["cadence"], cadence=data.cadence, by=principal.sub
    )
    emit_event(session, changed, subject_id=committee_id, cycle_id=committee.cycle_id)
    await session.commit()
    await _keep_schedule(session, committee, clients)
    return committee_read(committee, await members_of(session, committee_id))
