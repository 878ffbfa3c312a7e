"""Tables of the committee service (every name prefixed ``committee_``).

A committee is per cycle (``cycle_id`` set) or standing (``cycle_id`` null: each meeting covers
the cycle active when it is held). Meetings keep their generated agenda as it was when the
meeting opened (the data moves on; the minutes refer to what the committee saw). Decisions carry
their owner and due date and are tracked by a workflow. Calibration adjustments made in a
committee session are linked here, because evaluation's adjustment has no field for a session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.audit import AuditMixin
from services.common.db import UtcDateTime
from services.common.outbox import OutboxMixin
from services.common.participants import DepartmentMixin, ParticipantMixin

__all__ = [
    "Base",
    "CommitteeAudit",
    "CommitteeCalibrationLink",
    "CommitteeCalibrationSession",
    "CommitteeCareerFramework",
    "CommitteeCommittee",
    "CommitteeDecision",
    "CommitteeDepartment",
    "CommitteeMeeting",
    "CommitteeMember",
    "CommitteeOutbox",
    "CommitteeParticipant",
    "CommitteePotential",
]


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {dict[str, Any]: JSON, list[Any]: JSON}


class CommitteeParticipant(ParticipantMixin, Base):
    """The cycle's org snapshot (pushed by the cycles service, or pulled from it on first use)."""

    __tablename__ = "committee_participant"


class CommitteeDepartment(DepartmentMixin, Base):
    __tablename__ = "committee_department"


class CommitteeOutbox(OutboxMixin, Base):
    __tablename__ = "committee_outbox"


class CommitteeAudit(AuditMixin, Base):
    """Append-only audit log of this service's changes (services.common.audit)."""

    __tablename__ = "committee_audit"


class CommitteeCommittee(Base):
    __tablename__ = "committee_committee"

    committee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    cycle_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    cadence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """``contracts.committee.MeetingCadence`` as JSON; null: meetings are opened by hand."""
    decision_policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    agenda_rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    schedule_state: Mapped[str] = mapped_column(String(500), default="none")
    """``none``, ``active`` or why the Schedule could not be kept (Temporal unreachable...)."""
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class CommitteeMember(Base):
    __tablename__ = "committee_member"
    __table_args__ = (
        ForeignKeyConstraint(["committee_id"], ["committee_committee.committee_id"], ondelete="CASCADE"),
        Index("ix_committee_member_employee", "employee_id"),
    )

    committee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    department_id: Mapped[str] = mapped_column(String(64))
    function: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))


class CommitteeMeeting(Base):
    __tablename__ = "committee_meeting"
    __table_args__ = (
        UniqueConstraint("committee_id", "idempotency_key", name="uq_committee_meeting_key"),
        Index("ix_committee_meeting_committee_held", "committee_id", "held_at"),
    )

    meeting_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    committee_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    cycle_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    held_at: Mapped[datetime] = mapped_column(UtcDateTime())
    agenda: Mapped[list[Any]] = mapped_column(JSON)
    """The generated agenda items (``services.committee.agenda.AgendaItem`` as JSON)."""
    pair_scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Collaboration pair -> overall score at this meeting (the next meeting's trend reads it)."""
    sources: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Source -> 'ok' or why it could not be read."""
    minutes: Mapped[str | None] = mapped_column(Text, nullable=True)
    attendees: Mapped[list[Any]] = mapped_column(JSON, default=list)
    minutes_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    minutes_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    opened_by: Mapped[str] = mapped_column(String(200))


class CommitteeDecision(Base):
    __tablename__ = "committee_decision"
    __table_args__ = (
        Index("ix_committee_decision_owner", "owner_id", "status"),
        Index("ix_committee_decision_committee", "committee_id", "status"),
    )

    decision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    committee_id: Mapped[str] = mapped_column(String(64))
    meeting_id: Mapped[str] = mapped_column(String(64))
    cycle_id: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32))
    agenda_item_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[str] = mapped_column(String(64))
    owner_department_id: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), default="open")
    status_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    tracking: Mapped[str] = mapped_column(String(500), default="untracked")
    """``workflow`` once its tracking workflow runs, else why it does not (yet)."""
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class CommitteeCalibrationSession(Base):
    """A calibration held by the committee: its adjustments are linked to it (and to a decision)."""

    __tablename__ = "committee_calibration_session"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    committee_id: Mapped[str] = mapped_column(String(64))
    meeting_id: Mapped[str] = mapped_column(String(64), index=True)
    cycle_id: Mapped[str] = mapped_column(String(64))
    decision_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CommitteeCalibrationLink(Base):
    """One evaluation calibration adjustment made in a committee session."""

    __tablename__ = "committee_calibration_link"
    __table_args__ = (
        ForeignKeyConstraint(["session_id"], ["committee_calibration_session.session_id"], ondelete="CASCADE"),
        UniqueConstraint("cycle_id", "adjustment_id", name="uq_committee_calibration_adjustment"),
    )

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    adjustment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[str] = mapped_column(String(64))
    decision_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    employee_id: Mapped[str] = mapped_column(String(64))
    before_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    after_score: Mapped[float] = mapped_column(Float)
    before_rating: Mapped[str | None] = mapped_column(String(32), nullable=True)
    after_rating: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CommitteeCareerFramework(Base):
    """A job family's career ladder: its job titles and levels (grade, title, expected competencies)."""

    __tablename__ = "committee_career_framework"

    job_family: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    job_titles: Mapped[list[Any]] = mapped_column(JSON)
    levels: Mapped[list[Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CommitteePotential(Base):
    """A person's potential in one cycle: the manager's rating, and the committee's calibration of it."""

    __tablename__ = "committee_potential"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rated: Mapped[str | None] = mapped_column(String(8), nullable=True)
    rated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    calibrated: Mapped[str | None] = mapped_column(String(8), nullable=True)
    calibrated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    calibrated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    calibration_reason: Mapped[str] = mapped_column(Text, default="")
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The committee calibration session the calibration was made in, if any."""
