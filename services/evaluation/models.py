"""Tables of the evaluation service (every name prefixed ``evaluation_``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.audit import AuditMixin
from services.common.outbox import OutboxMixin
from services.common.participants import DepartmentMixin, ParticipantMixin

__all__ = [
    "Base",
    "EvaluationAdjustment",
    "EvaluationAssignment",
    "EvaluationAudit",
    "EvaluationCollaborationLink",
    "EvaluationCollaborationRating",
    "EvaluationConfigVersion",
    "EvaluationCycleState",
    "EvaluationDepartment",
    "EvaluationInput",
    "EvaluationOutbox",
    "EvaluationParticipant",
    "EvaluationResult",
]


class Base(DeclarativeBase):
    pass


class EvaluationParticipant(ParticipantMixin, Base):
    __tablename__ = "evaluation_participant"


class EvaluationDepartment(DepartmentMixin, Base):
    __tablename__ = "evaluation_department"


class EvaluationOutbox(OutboxMixin, Base):
    __tablename__ = "evaluation_outbox"


class EvaluationAudit(AuditMixin, Base):
    """Append-only audit log of this service's changes (services.common.audit)."""

    __tablename__ = "evaluation_audit"


class EvaluationInput(Base):
    """A pushed input document of a cycle: kind 'goals' (GoalExport), 'actuals' (ProgressExport),
    'goal_keys' (GoalKeys) or 'config' (the current EvaluationConfig, whose history is
    ``EvaluationConfigVersion``), stored as the validated JSON and replaced on every push."""

    __tablename__ = "evaluation_input"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_by: Mapped[str] = mapped_column(String(200))


class EvaluationConfigVersion(Base):
    """Every configuration a cycle has had, append-only: pushed from the template by the workflow
    (``source`` 'template') or changed by HR ('hr'). The newest is also the current ``config`` input."""

    __tablename__ = "evaluation_config_version"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EvaluationCycleState(Base):
    __tablename__ = "evaluation_cycle_state"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    calibration_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class EvaluationAssignment(Base):
    """A review to write: ``rater_id`` rates ``reviewee_id`` in ``relation``; the review lives on the row."""

    __tablename__ = "evaluation_assignment"
    __table_args__ = (UniqueConstraint("cycle_id", "reviewee_id", "rater_id", "relation"),)

    assignment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    reviewee_id: Mapped[str] = mapped_column(String(64), index=True)
    rater_id: Mapped[str] = mapped_column(String(64), index=True)
    relation: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    nominated_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ratings: Mapped[str | None] = mapped_column(Text, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EvaluationCollaborationLink(Base):
    """A declared collaboration between two departments (stored with ``department_a < department_b``).

    Each side confirms it (``confirmed_a_by``, ``confirmed_b_by``: who, for that department: its
    head, or HR for both); until both have, it is a proposal and no rating along it counts."""

    __tablename__ = "evaluation_collaboration_link"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_a: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_b: Mapped[str] = mapped_column(String(64), primary_key=True)
    declared_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_a_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    confirmed_b_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class EvaluationCollaborationRating(Base):
    __tablename__ = "evaluation_collaboration_rating"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rater_department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rated_department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    responsiveness: Mapped[int] = mapped_column(Integer)
    data_quality: Mapped[int] = mapped_column(Integer)
    reliability: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    rated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EvaluationResult(Base):
    """An employee's computed score (``computed_*``) and the effective, possibly calibrated one."""

    __tablename__ = "evaluation_result"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    manager_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    computed_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    computed_rating: Mapped[str | None] = mapped_column(String(32), nullable=True)
    final_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    rating: Mapped[str | None] = mapped_column(String(32), nullable=True)
    calibrated: Mapped[bool] = mapped_column(Boolean, default=False)
    breakdown: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EvaluationAdjustment(Base):
    """The calibration audit trail: append-only, one row per change (calibration or appeal)."""

    __tablename__ = "evaluation_adjustment"
    __table_args__ = (UniqueConstraint("cycle_id", "appeal_id"),)

    adjustment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    employee_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    before_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    before_rating: Mapped[str | None] = mapped_column(String(32), nullable=True)
    after_score: Mapped[float] = mapped_column(Float)
    after_rating: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    appeal_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
