"""Calibration as a committee session: adjustments made in it are linked to the session and a decision.

Evaluation's calibration adjustment has a ``reason`` but no field for a session or a decision,
so the link is kept here (``committee_calibration_link``, one row per adjustment id) and the
reason sent to evaluation names the session and the decision, so evaluation's own audit trail
says where the change was decided too. The adjustment is recorded by evaluation acting for the
person who made it (the ``act`` claim), not as the committee service.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.committee import CalibrationAdjustmentLinkedPayload, CalibrationSessionOpenedPayload
from services.committee.models import CommitteeCalibrationLink, CommitteeCalibrationSession, CommitteeDecision
from services.committee.schemas import (
    AdjustmentLinkRead,
    CalibrationSessionCreate,
    CalibrationSessionRead,
    SessionAdjustmentCreate,
)
from services.committee.service.meetings import load_meeting
from services.committee.service.records import (
    Clients,
    actor_of,
    emit_event,
    ensure_manager,
    load_committee,
    new_id,
)
from services.common.auth import Principal
from services.common.errors import DomainError

__all__ = ["adjust_in_session", "get_session", "meeting_sessions", "open_session", "session_reason"]


def session_reason(reason: str, *, committee_id: str, session_id: str, decision_id: str | None) -> str:
    """The reason evaluation records: the person's words, then where the change was decided."""
    where = f"committee {committee_id}, calibration session {session_id}"
    if decision_id:
        where += f", decision {decision_id}"
    return f"{reason} [{where}]"


_LINKED = {
    "adjustment_id",
    "cycle_id",
    "employee_id",
    "before_score",
    "after_score",
    "before_rating",
    "after_rating",
    "reason",
    "actor",
}
"""What the link keeps of evaluation's adjustment (as evaluation recorded it)."""


def _aware(moment: datetime) -> datetime:
    """Evaluation's timestamps are UTC; one read back naive from SQLite is made explicit."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _decision_of(session: AsyncSession, committee_id: str, decision_id: str | None) -> str | None:
    if decision_id is None:
        return None
    decision = await session.get(CommitteeDecision, decision_id)
    if decision is None or decision.committee_id != committee_id:
        raise DomainError(f"committee {committee_id!r} has no decision {decision_id!r}", field="decision_id")
    return decision_id


async def _session_read(session: AsyncSession, row: CommitteeCalibrationSession) -> CalibrationSessionRead:
    links = await session.scalars(
        select(CommitteeCalibrationLink)
        .where(CommitteeCalibrationLink.session_id == row.session_id)
        .order_by(CommitteeCalibrationLink.adjustment_id)
    )
    return CalibrationSessionRead(
        session_id=row.session_id,
        committee_id=row.committee_id,
        meeting_id=row.meeting_id,
        cycle_id=row.cycle_id,
        decision_id=row.decision_id,
        note=row.note,
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        adjustments=[AdjustmentLinkRead.model_validate(link) for link in links.all()],
    )


async def open_session(
    *,
    session: AsyncSession,
    committee_id: str,
    meeting_id: str,
    data: CalibrationSessionCreate,
    principal: Principal,
    now: datetime,
) -> CalibrationSessionRead:
    committee = await load_committee(session, committee_id)
    await ensure_manager(session, committee, principal)
    meeting = await load_meeting(session, committee_id, meeting_id)
    if meeting.cycle_id is None:
        raise DomainError(f"meeting {meeting_id!r} covers no cycle to calibrate", status_code=409)
    row = CommitteeCalibrationSession(
        session_id=new_id("calibration"),
        committee_id=committee_id,
        meeting_id=meeting_id,
        cycle_id=meeting.cycle_id,
        decision_id=await _decision_of(session, committee_id, data.decision_id),
        note=data.note,
        opened_by=principal.sub,
        opened_at=now,
    )
    session.add(row)
    opened = CalibrationSessionOpenedPayload(
        committee_id=committee_id, meeting_id=meeting_id, session_id=row.session_id, decision_id=row.decision_id
    )
    emit_event(session, opened, subject_id=row.session_id, cycle_id=row.cycle_id)
    await session.commit()
    return await _session_read(session, row)


async def _load_session(session: AsyncSession, session_id: str, principal: Principal) -> CommitteeCalibrationSession:
    row = await session.get(CommitteeCalibrationSession, session_id)
    if row is None:
        raise DomainError(f"calibration session {session_id!r} does not exist", status_code=404)
    await ensure_manager(session, await load_committee(session, row.committee_id), principal)
    return row


async def get_session(*, session: AsyncSession, session_id: str, principal: Principal) -> CalibrationSessionRead:
    return await _session_read(session, await _load_session(session, session_id, principal))


async def meeting_sessions(
    *, session: AsyncSession, committee_id: str, meeting_id: str, principal: Principal
) -> list[CalibrationSessionRead]:
    """The calibration sessions opened in a meeting, oldest first, with their adjustments (who may
    open one may list them)."""
    await ensure_manager(session, await load_committee(session, committee_id), principal)
    await load_meeting(session, committee_id, meeting_id)
    rows = await session.scalars(
        select(CommitteeCalibrationSession)
        .where(
            CommitteeCalibrationSession.committee_id == committee_id,
            CommitteeCalibrationSession.meeting_id == meeting_id,
        )
        .order_by(CommitteeCalibrationSession.opened_at, CommitteeCalibrationSession.session_id)
    )
    return [await _session_read(session, row) for row in rows.all()]


async def adjust_in_session(
    *,
    session: AsyncSession,
    session_id: str,
    data: SessionAdjustmentCreate,
    principal: Principal,
    clients: Clients,
) -> AdjustmentLinkRead:
    """Record the adjustment in evaluation (for the caller), then link it to the session and decision."""
    row = await _load_session(session, session_id, principal)
    decision_id = await _decision_of(session, row.committee_id, data.decision_id) or row.decision_id
    reason = session_reason(data.reason, committee_id=row.committee_id, session_id=session_id, decision_id=decision_id)
    body = {"employee_id": data.employee_id, "new_score": data.new_score, "new_rating": data.new_rating}
    adjustment = await clients.data(actor_of(principal)).adjust(row.cycle_id, body | {"reason": reason})
    link = CommitteeCalibrationLink(
        session_id=session_id,
        decision_id=decision_id,
        created_at=_aware(adjustment.created_at),
        **adjustment.model_dump(include=_LINKED),
    )
    session.add(link)
    linked = CalibrationAdjustmentLinkedPayload(
        session_id=session_id,
        decision_id=decision_id,
        adjustment_id=adjustment.adjustment_id,
        employee_id=adjustment.employee_id,
    )
    emit_event(session, linked, subject_id=session_id, cycle_id=row.cycle_id)
    await session.commit()
    return AdjustmentLinkRead.model_validate(link)
