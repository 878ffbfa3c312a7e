"""Decisions: each with an owner and a due date, tracked to done by a workflow.

Who sees a decision: its owner, hr_admin and ops, and the department heads who sit on its
committee; to anyone else it does not exist (404). Its owner may move it to in progress or done;
the committee (hr_admin, member department heads) may also change its owner, due date or text,
or cancel it. Every change commits, then nudges the decision's workflow, which re-reads it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.committee import (
    DecisionChangedPayload,
    DecisionPolicy,
    DecisionRecordedPayload,
    DecisionSnapshot,
    DecisionStatus,
    DecisionStatusChangedPayload,
    MemberRole,
)
from contracts.cycle import Stage
from services.committee.models import CommitteeCommittee, CommitteeDecision, CommitteeMeeting
from services.committee.rules import TransitionError, next_decision_status
from services.committee.schemas import DecisionCreate, DecisionRead, DecisionStatusChange, DecisionUpdate
from services.committee.service.meetings import load_meeting
from services.committee.service.org import org_view
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
from services.common.errors import DomainError
from services.common.participants import OrgView

__all__ = [
    "change_status",
    "committee_decisions",
    "decision_read",
    "decision_snapshot",
    "get_decision",
    "my_decisions",
    "record_decision",
    "track_decision",
    "update_decision",
]


def decision_read(row: CommitteeDecision, now: datetime) -> DecisionRead:
    read = DecisionRead.model_validate(row)
    read.overdue = not read.status.finished and row.due_at <= now
    return read


def _owner_department(org: OrgView, owner_id: str, cycle_id: str) -> str:
    person = org.participants.get(owner_id)
    if person is None:
        raise DomainError(
            f"owner {owner_id!r} does not take part in cycle {cycle_id!r}; a decision's owner must", field="owner_id"
        )
    return person.department_id


def _due_after_meeting(due_at: datetime, meeting: CommitteeMeeting) -> None:
    if due_at <= meeting.held_at:
        raise DomainError(
            f"due_at {due_at.isoformat()} is not after the meeting ({meeting.held_at.isoformat()})", field="due_at"
        )


def _filing_stage(meeting: CommitteeMeeting) -> str:
    """The stage the decision's notifications are filed under (the cycles service files every
    notification under a stage): the meeting's, else the first."""
    known = {s.value for s in Stage}
    return meeting.stage if meeting.stage in known else Stage.GOAL_SETTING.value


async def _track(
    session: AsyncSession, row: CommitteeDecision, committee: CommitteeCommittee, clients: Clients
) -> None:
    """After the commit, best effort: start the decision's workflow and record whether it runs."""
    if clients.workflows is None:
        return
    policy = DecisionPolicy.model_validate(committee.decision_policy)
    row.tracking = await clients.workflows.track(decision_id=row.decision_id, policy=policy)
    await session.commit()


async def _nudge(row: CommitteeDecision, clients: Clients, reason: str) -> None:
    if clients.workflows is not None:
        await clients.workflows.changed(decision_id=row.decision_id, reason=reason)


async def record_decision(
    *,
    session: AsyncSession,
    committee_id: str,
    meeting_id: str,
    data: DecisionCreate,
    principal: Principal,
    clients: Clients,
    now: datetime,
) -> DecisionRead:
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    meeting = await load_meeting(session, committee_id, meeting_id)
    if meeting.cycle_id is None:
        raise DomainError(f"meeting {meeting_id!r} covers no cycle; decisions are filed under a cycle", status_code=409)
    _due_after_meeting(data.due_at, meeting)
    if data.agenda_item_id is not None and data.agenda_item_id not in {i["item_id"] for i in meeting.agenda}:
        raise DomainError(f"meeting {meeting_id!r} has no agenda item {data.agenda_item_id!r}", field="agenda_item_id")
    org = await org_view(session, meeting.cycle_id, clients.data(actor_of(principal)))
    row = CommitteeDecision(
        decision_id=new_id("decision"),
        committee_id=committee_id,
        meeting_id=meeting_id,
        cycle_id=meeting.cycle_id,
        stage=_filing_stage(meeting),
        agenda_item_id=data.agenda_item_id,
        title=data.title,
        description=data.description,
        owner_id=data.owner_id,
        owner_department_id=_owner_department(org, data.owner_id, meeting.cycle_id),
        due_at=data.due_at,
        status=DecisionStatus.OPEN.value,
        tracking="untracked" if clients.workflows is None else "starting",
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(row)
    recorded = DecisionRecordedPayload(
        committee_id=committee_id,
        meeting_id=meeting_id,
        decision_id=row.decision_id,
        title=row.title,
        owner_id=row.owner_id,
        due_at=row.due_at,
        agenda_item_id=row.agenda_item_id,
    )
    emit_event(session, recorded, subject_id=row.decision_id, cycle_id=row.cycle_id)
    await session.commit()
    await _track(session, row, committee, clients)
    return decision_read(row, now)


async def _visible(session: AsyncSession, decision_id: str, principal: Principal) -> tuple[CommitteeDecision, bool]:
    """The decision and whether the caller manages it; 404 unless they own it, manage it or are ops."""
    row = await session.get(CommitteeDecision, decision_id)
    if row is not None:
        manager = is_manager(principal, await members_of(session, row.committee_id))
        owner = principal.employee_id is not None and principal.employee_id == row.owner_id
        if manager or owner or principal.has(Role.OPS):
            return row, manager
    raise DomainError(f"decision {decision_id!r} does not exist", status_code=404)


async def get_decision(*, session: AsyncSession, decision_id: str, principal: Principal, now: datetime) -> DecisionRead:
    row, _ = await _visible(session, decision_id, principal)
    return decision_read(row, now)


async def my_decisions(
    *,
    session: AsyncSession,
    principal: Principal,
    status: DecisionStatus | None,
    limit: int,
    offset: int,
    now: datetime,
) -> list[DecisionRead]:
    """The decisions the caller owns (every person in the organisation may read theirs)."""
    if principal.employee_id is None:
        return []
    query = select(CommitteeDecision).where(CommitteeDecision.owner_id == principal.employee_id)
    if status is not None:
        query = query.where(CommitteeDecision.status == status.value)
    rows = await session.scalars(query.order_by(CommitteeDecision.due_at).limit(limit).offset(offset))
    return [decision_read(r, now) for r in rows.all()]


async def committee_decisions(
    *,
    session: AsyncSession,
    committee_id: str,
    principal: Principal,
    status: DecisionStatus | None,
    overdue: bool | None,
    now: datetime,
) -> list[DecisionRead]:
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    query = select(CommitteeDecision).where(CommitteeDecision.committee_id == committee_id)
    if status is not None:
        query = query.where(CommitteeDecision.status == status.value)
    rows = [decision_read(r, now) for r in (await session.scalars(query.order_by(CommitteeDecision.due_at))).all()]
    return [r for r in rows if overdue is None or r.overdue == overdue]


async def change_status(
    *,
    session: AsyncSession,
    decision_id: str,
    data: DecisionStatusChange,
    principal: Principal,
    clients: Clients,
    now: datetime,
) -> DecisionRead:
    row, manager = await _visible(session, decision_id, principal)
    if not manager and principal.employee_id != row.owner_id:
        raise DomainError(f"only the owner or the committee changes decision {decision_id!r}", status_code=403)
    previous = DecisionStatus(row.status)
    try:
        status = next_decision_status(previous, data.status, by_owner_only=not manager)
    except TransitionError as exc:
        raise DomainError(f"decision {decision_id!r}: {exc}", status_code=409, field="status") from exc
    row.status = status.value
    row.status_note = data.note
    row.done_at = now if status is DecisionStatus.DONE else None
    row.updated_at = now
    row.version += 1
    moved = DecisionStatusChangedPayload(
        decision_id=decision_id, from_status=previous, to_status=status, note=data.note, by=principal.sub
    )
    emit_event(session, moved, subject_id=decision_id, cycle_id=row.cycle_id)
    await session.commit()
    await _nudge(row, clients, f"status {status.value}")
    return decision_read(row, now)


async def update_decision(
    *,
    session: AsyncSession,
    decision_id: str,
    data: DecisionUpdate,
    principal: Principal,
    clients: Clients,
    now: datetime,
) -> DecisionRead:
    """The committee changes a decision's text, owner or due date (a new due date restarts its reminders)."""
    row, manager = await _visible(session, decision_id, principal)
    if not manager:
        raise DomainError(f"only the committee changes decision {decision_id!r}", status_code=403)
    if DecisionStatus(row.status).finished:
        raise DomainError(f"decision {decision_id!r} is {row.status}; it can no longer change", status_code=409)
    meeting = await load_meeting(session, row.committee_id, row.meeting_id)
    if data.due_at is not None:
        _due_after_meeting(data.due_at, meeting)
        row.due_at = data.due_at
    if data.owner_id is not None:
        org = await org_view(session, row.cycle_id, clients.data(actor_of(principal)))
        row.owner_department_id = _owner_department(org, data.owner_id, row.cycle_id)
        row.owner_id = data.owner_id
    if data.title is not None:
        row.title = data.title
    if data.description is not None:
        row.description = data.description
    row.updated_at = now
    row.version += 1
    changed = DecisionChangedPayload(
        decision_id=decision_id,
        changed=sorted(data.model_fields_set),
        owner_id=row.owner_id,
        due_at=row.due_at,
        by=principal.sub,
    )
    emit_event(session, changed, subject_id=decision_id, cycle_id=row.cycle_id)
    await session.commit()
    await _nudge(row, clients, "changed: " + ", ".join(sorted(data.model_fields_set)))
    return decision_read(row, now)


async def track_decision(
    *, session: AsyncSession, decision_id: str, principal: Principal, clients: Clients, now: datetime
) -> DecisionRead:
    """Start the decision's workflow again if it did not start (idempotent: a running one is kept)."""
    row, _ = await _visible(session, decision_id, principal)
    if clients.workflows is None:
        raise DomainError("workflows are off in this deployment (TANDEM_CYCLE_WORKFLOWS=0)", status_code=409)
    await _track(session, row, await load_committee(session, row.committee_id), clients)
    return decision_read(row, now)


async def decision_snapshot(*, session: AsyncSession, decision_id: str) -> DecisionSnapshot:
    """What the decision's workflow reads at every check."""
    row = await session.get(CommitteeDecision, decision_id)
    if row is None:
        raise DomainError(f"decision {decision_id!r} does not exist", status_code=404)
    chair = next((m for m in await members_of(session, row.committee_id) if m.role == MemberRole.CHAIR.value), None)
    return DecisionSnapshot(
        decision_id=row.decision_id,
        committee_id=row.committee_id,
        cycle_id=row.cycle_id,
        stage=Stage(row.stage),
        title=row.title,
        status=DecisionStatus(row.status),
        owner_id=row.owner_id,
        owner_department_id=row.owner_department_id,
        chair_id=chair.employee_id if chair else None,
        due_at=row.due_at,
    )
