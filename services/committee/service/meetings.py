"""Meetings: opened with an agenda generated from the cycle's data, then their minutes.

The agenda is read from the services acting for the committee's secretary, in one concurrent
pass; a source that cannot be read becomes an agenda item saying so rather than failing the
meeting. It is stored as it was when the meeting opened: the minutes refer to what the committee
saw, and the next meeting's collaboration trend compares against it.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.committee import AgendaEntry, MeetingOpenedPayload, MemberRole, MinutesRecordedPayload
from services.committee.agenda import AgendaFacts, AgendaItem, AgendaRules, build_agenda, pair_scores
from services.committee.facts import DecisionFact
from services.committee.models import CommitteeCommittee, CommitteeDecision, CommitteeMeeting
from services.committee.schemas import MeetingOpen, MeetingRead, MinutesUpdate
from services.committee.service.org import org_view
from services.committee.service.records import (
    Clients,
    emit_event,
    ensure_manager,
    load_committee,
    members_of,
    new_id,
)
from services.committee.sources import CycleData, StageWindowFact, attempt
from services.common.auth import Principal
from services.common.client import Actor, ServiceCallError
from services.common.errors import DomainError

__all__ = ["get_meeting", "list_meetings", "load_meeting", "meeting_read", "open_meeting", "record_minutes"]

SOURCES = (
    "cycles.status",
    "tracking.progress",
    "tracking.stale_kpis",
    "evaluation.collaboration_matrix",
    "evaluation.distribution",
    "evaluation.deviation",
    "feedback.appeals",
)
"""What an agenda reads, in the order of ``services.committee.agenda``."""


def meeting_read(meeting: CommitteeMeeting, *, created: bool = True) -> MeetingRead:
    return MeetingRead(
        meeting_id=meeting.meeting_id,
        committee_id=meeting.committee_id,
        cycle_id=meeting.cycle_id,
        stage=meeting.stage,
        held_at=meeting.held_at,
        agenda=[AgendaItem.model_validate(item) for item in meeting.agenda],
        sources=dict(meeting.sources),
        minutes=meeting.minutes,
        attendees=list(meeting.attendees or []),
        minutes_by=meeting.minutes_by,
        minutes_at=meeting.minutes_at,
        created=created,
    )


async def load_meeting(session: AsyncSession, committee_id: str, meeting_id: str) -> CommitteeMeeting:
    meeting = await session.get(CommitteeMeeting, meeting_id)
    if meeting is None or meeting.committee_id != committee_id:
        raise DomainError(f"meeting {meeting_id!r} of committee {committee_id!r} does not exist", status_code=404)
    return meeting


async def _by_key(session: AsyncSession, committee_id: str, key: str) -> CommitteeMeeting | None:
    found: CommitteeMeeting | None = await session.scalar(
        select(CommitteeMeeting).where(
            CommitteeMeeting.committee_id == committee_id, CommitteeMeeting.idempotency_key == key
        )
    )
    return found


def _stage_on(windows: list[StageWindowFact], day: date) -> str | None:
    """The stage whose dates hold ``day`` (when the cycle's workflow cannot say)."""
    for window in windows:
        if window.opens_on <= day < window.closes_on:
            return window.stage
    return windows[-1].stage if windows and day >= windows[-1].closes_on else None


async def _secretary_reader(session: AsyncSession, committee: CommitteeCommittee, clients: Clients) -> CycleData:
    members = await members_of(session, committee.committee_id)
    secretary = next((m for m in members if m.role == MemberRole.SECRETARY.value), None)
    actor = Actor(sub=f"committee:{committee.committee_id}", employee_id=secretary.employee_id) if secretary else None
    return clients.data(actor)


async def _agenda_facts(
    session: AsyncSession,
    data: CycleData,
    *,
    committee: CommitteeCommittee,
    cycle_id: str,
    held_at: datetime,
    rules: AgendaRules,
) -> tuple[AgendaFacts, str | None]:
    """Everything the agenda reads (one concurrent pass), and the cycle's stage."""
    _cycle, windows = await data.cycle(cycle_id)
    unavailable: dict[str, str] = {}
    reads: list[Any] = [
        data.status(cycle_id),
        data.kpis(cycle_id),
        data.stale(cycle_id),
        data.matrix(cycle_id),
        data.distribution(cycle_id),
        data.deviation(cycle_id),
        data.appeals(cycle_id),
    ]
    answers = await asyncio.gather(
        *(attempt(name, read, unavailable) for name, read in zip(SOURCES, reads, strict=True))
    )
    status, kpis, stale, matrix, distribution, deviation, appeals = answers
    if kpis is not None:
        off_track = [k for k in kpis if k.attainment_pct is not None and k.attainment_pct < rules.off_track_pct]
        trends = {k.kpi_id: k for k in await data.with_trends(cycle_id, off_track)}
        kpis = [trends.get(k.kpi_id, k) for k in kpis]
    org = await org_view(session, cycle_id, data)
    previous = await session.scalar(
        select(CommitteeMeeting)
        .where(CommitteeMeeting.committee_id == committee.committee_id, CommitteeMeeting.held_at < held_at)
        .order_by(CommitteeMeeting.held_at.desc())
        .limit(1)
    )
    open_decisions = await session.scalars(
        select(CommitteeDecision).where(
            CommitteeDecision.committee_id == committee.committee_id,
            CommitteeDecision.status.in_(("open", "in_progress")),
        )
    )
    facts = AgendaFacts(
        cycle_id=cycle_id,
        held_at=held_at,
        departments={d.department_id: d.name for d in org.departments.values()},
        status=status,
        kpis=kpis,
        stale=stale,
        matrix=matrix,
        distribution=distribution,
        deviation=deviation,
        appeals=appeals,
        decisions=[DecisionFact.model_validate(d, from_attributes=True) for d in open_decisions.all()],
        previous_pairs=dict(previous.pair_scores) if previous is not None else {},
        unavailable=unavailable,
    )
    stage = str(status.stage) if status is not None else _stage_on(windows, held_at.date())
    return facts, stage


async def open_meeting(
    *,
    session: AsyncSession,
    committee_id: str,
    data: MeetingOpen,
    idempotency_key: str | None,
    principal: Principal,
    clients: Clients,
    now: datetime,
) -> MeetingRead:
    """Open a meeting with its agenda; the same idempotency key returns the meeting it opened."""
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    if idempotency_key and (existing := await _by_key(session, committee_id, idempotency_key)) is not None:
        return meeting_read(existing, created=False)
    reader = await _secretary_reader(session, committee, clients)
    cycle_id = data.cycle_id or committee.cycle_id
    if cycle_id is None:
        try:
            cycle_id = await reader.active_cycle()
        except ServiceCallError as exc:
            raise DomainError(f"the active cycle could not be read: {exc.detail or exc}", status_code=503) from exc
    if cycle_id is None:
        raise DomainError(
            "no cycle is active: a standing committee meets about the active cycle; give cycle_id",
            status_code=409,
            field="cycle_id",
        )
    held_at = data.held_at or now
    rules = AgendaRules.model_validate(committee.agenda_rules)
    facts, stage = await _agenda_facts(
        session, reader, committee=committee, cycle_id=cycle_id, held_at=held_at, rules=rules
    )
    agenda = build_agenda(facts, rules)
    pairs = pair_scores(facts.matrix.cells) if facts.matrix is not None else {}
    meeting = CommitteeMeeting(
        meeting_id=new_id("meeting"),
        committee_id=committee_id,
        idempotency_key=idempotency_key,
        cycle_id=cycle_id,
        stage=stage,
        held_at=held_at,
        agenda=[item.model_dump(mode="json") for item in agenda],
        pair_scores={key: score.overall for key, score in pairs.items()},
        sources={name: facts.unavailable.get(name, "ok") for name in SOURCES},
        attendees=[],
        opened_by=principal.sub,
    )
    session.add(meeting)
    opened = MeetingOpenedPayload(
        committee_id=committee_id,
        meeting_id=meeting.meeting_id,
        held_at=held_at,
        stage=stage,
        agenda=[AgendaEntry(item_id=item.item_id, kind=item.kind.value) for item in agenda],
    )
    emit_event(session, opened, subject_id=meeting.meeting_id, cycle_id=cycle_id)
    try:
        await session.commit()
    except IntegrityError:
        # A retried activity raced the first call with the same key: the first one's meeting stands.
        await session.rollback()
        winner = await _by_key(session, committee_id, idempotency_key or "")
        if winner is None:
            raise
        return meeting_read(winner, created=False)
    return meeting_read(meeting)


async def list_meetings(*, session: AsyncSession, committee_id: str, principal: Principal) -> list[MeetingRead]:
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    rows = await session.scalars(
        select(CommitteeMeeting).where(CommitteeMeeting.committee_id == committee_id).order_by(CommitteeMeeting.held_at)
    )
    return [meeting_read(m) for m in rows.all()]


async def get_meeting(
    *, session: AsyncSession, committee_id: str, meeting_id: str, principal: Principal
) -> MeetingRead:
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    return meeting_read(await load_meeting(session, committee_id, meeting_id))


async def record_minutes(
    *,
    session: AsyncSession,
    committee_id: str,
    meeting_id: str,
    data: MinutesUpdate,
    principal: Principal,
    now: datetime,
) -> MeetingRead:
    """Write (or rewrite) the minutes; every version stays in the audit log."""
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    meeting = await load_meeting(session, committee_id, meeting_id)
    members = {m.employee_id for m in await members_of(session, committee_id)}
    strangers = sorted(set(data.attendees) - members)
    if strangers:
        raise DomainError(f"attendees {strangers} do not sit on committee {committee_id!r}", field="attendees")
    meeting.minutes = data.minutes
    meeting.attendees = list(data.attendees)
    meeting.minutes_by = principal.sub
    meeting.minutes_at = now
    recorded = MinutesRecordedPayload(committee_id=committee_id, meeting_id=meeting_id, attendees=data.attendees)
    emit_event(session, recorded, subject_id=meeting_id, cycle_id=meeting.cycle_id)
    await session.commit()
    return meeting_read(meeting)
