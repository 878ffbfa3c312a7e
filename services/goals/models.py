"""Tables of the goals service (every name prefixed ``goals_``).

One table holds the three goal levels (company KPI, department KPI, individual
goal): they share every field, differ only in who owns them and what they align
to, and the goal tree is a walk over ``parent_id``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.audit import AuditMixin
from services.common.outbox import OutboxMixin
from services.common.participants import DepartmentMixin, ParticipantMixin

__all__ = [
    "Base",
    "GoalsActual",
    "GoalsAudit",
    "GoalsCycle",
    "GoalsDepartment",
    "GoalsGoal",
    "GoalsObjective",
    "GoalsOutbox",
    "GoalsParticipant",
]


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {dict[str, Any]: JSON, list[str]: JSON}


class GoalsParticipant(ParticipantMixin, Base):
    __tablename__ = "goals_participant"
    __table_args__ = (Index("ix_goals_participant_cycle_title", "cycle_id", "job_title"),)


class GoalsDepartment(DepartmentMixin, Base):
    __tablename__ = "goals_department"


class GoalsOutbox(OutboxMixin, Base):
    __tablename__ = "goals_outbox"


class GoalsAudit(AuditMixin, Base):
    """Append-only audit log of this service's changes (services.common.audit)."""

    __tablename__ = "goals_audit"


class GoalsCycle(Base):
    """Per-cycle settings of goal setting: the period (for the KPI catalog), the approval chains and the freeze."""

    __tablename__ = "goals_cycle"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    frozen_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    approval_chains: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """``contracts.goals.ApprovalChains`` as pushed with the settings; none: the default chains."""


class GoalsObjective(Base):
    """A strategy objective with its balanced-scorecard perspective."""

    __tablename__ = "goals_objective"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    objective_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    perspective: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GoalsGoal(Base):
    """A company KPI, department KPI or individual goal."""

    __tablename__ = "goals_goal"
    __table_args__ = (
        # Bulk assignment is idempotent: one goal per (template, employee) and cycle.
        UniqueConstraint("cycle_id", "template_key", "employee_id", name="uq_goals_goal_template_employee"),
        Index("ix_goals_goal_cycle_level", "cycle_id", "level"),
        Index("ix_goals_goal_cycle_employee", "cycle_id", "employee_id"),
        Index("ix_goals_goal_cycle_department", "cycle_id", "department_id"),
        Index("ix_goals_goal_cycle_parent", "cycle_id", "parent_id"),
    )

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    goal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(32))
    aggregation: Mapped[str] = mapped_column(String(16))
    start_value: Mapped[float] = mapped_column(Float)
    target_value: Mapped[float] = mapped_column(Float)
    threshold_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    stretch_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    metric: Mapped[str | None] = mapped_column(String(128), nullable=True)
    data_owner_department_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    update_frequency_hours: Mapped[float] = mapped_column(Float, default=24.0)
    weight: Mapped[float] = mapped_column(Float)
    objective_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    department_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    employee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contributing_department_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    template_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    status_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_changed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """``services.goals.schemas.GoalApproval``: the chain of the current submission, where it stands and
    who approved each step (none: never submitted)."""
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class GoalsActual(Base):
    """The latest actual value of a goal/KPI, pushed by the workflow from tracking."""

    __tablename__ = "goals_actual"
    __table_args__ = (
        ForeignKeyConstraint(
            ["cycle_id", "goal_id"], ["goals_goal.cycle_id", "goals_goal.goal_id"], ondelete="CASCADE"
        ),
    )

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    goal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    actual_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
