"""Tables of the results service (all prefixed ``results_``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.audit import AuditMixin
from services.common.db import UtcDateTime
from services.common.outbox import OutboxMixin
from services.common.participants import DepartmentMixin, ParticipantMixin

__all__ = [
    "Allocation",
    "AllocationLine",
    "AwardFund",
    "AwardRecord",
    "Base",
    "BonusPool",
    "CollaborationCellRow",
    "DevelopmentItem",
    "DevelopmentPlan",
    "EmployeeResultRow",
    "Nomination",
    "Publication",
    "ResultsAppealAdjustment",
    "ResultsAudit",
    "ResultsCycle",
    "ResultsDepartment",
    "ResultsOutbox",
    "ResultsParticipant",
    "SharedGoal",
]


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {datetime: UtcDateTime()}


class ResultsParticipant(ParticipantMixin, Base):
    __tablename__ = "results_participant"


class ResultsDepartment(DepartmentMixin, Base):
    __tablename__ = "results_department"


class ResultsOutbox(OutboxMixin, Base):
    __tablename__ = "results_outbox"


class ResultsAudit(AuditMixin, Base):
    """Append-only audit log of this service's changes (services.common.audit)."""

    __tablename__ = "results_audit"


class ResultsCycle(Base):
    __tablename__ = "results_cycle"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scale_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    scale_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    results_received_at: Mapped[datetime | None] = mapped_column(nullable=True)
    collaboration_received_at: Mapped[datetime | None] = mapped_column(nullable=True)
    goals_received_at: Mapped[datetime | None] = mapped_column(nullable=True)
    previous_cycle_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    rating_labels: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    """The rating scale's band labels, lowest first (from the results push or the template's policy)."""
    # Who set the policy: the template (pushed by the workflow) or HR (kept from then on).
    policy_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    policy_source: Mapped[str] = mapped_column(String(16), default="template", server_default="template")
    policy_changed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    policy_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When HR last ran the rules: an adjusted appeal re-applies them to the person it changes.
    promotions_nominated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    plans_generated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class EmployeeResultRow(Base):
    """A calibrated result as pushed from evaluation."""

    __tablename__ = "results_employee_result"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    manager_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    final_score: Mapped[float] = mapped_column(Float)
    rating: Mapped[str] = mapped_column(String(32))


class CollaborationCellRow(Base):
    __tablename__ = "results_collaboration_cell"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rater_department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rated_department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    responsiveness: Mapped[float] = mapped_column(Float)
    data_quality: Mapped[float] = mapped_column(Float)
    reliability: Mapped[float] = mapped_column(Float)
    overall: Mapped[float] = mapped_column(Float)
    ratings: Mapped[int] = mapped_column(Integer)
    comments: Mapped[list[str]] = mapped_column(JSON, default=list)


class SharedGoal(Base):
    """A goal shared by two or more departments (owner plus contributors)."""

    __tablename__ = "results_shared_goal"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    goal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department_ids: Mapped[list[str]] = mapped_column(JSON)


class BonusPool(Base):
    __tablename__ = "results_bonus_pool"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128), default=None)
    """Finance's sign-off of the current amount and currency (cleared when either changes)."""
    approved_at: Mapped[datetime | None] = mapped_column(default=None)


class Allocation(Base):
    """One allocation of a department's pool; the newest ``current`` one counts."""

    __tablename__ = "results_allocation"
    __table_args__ = (UniqueConstraint("cycle_id", "department_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    department_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    pool_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    allocated_cents: Mapped[int] = mapped_column(BigInteger)
    unallocated_cents: Mapped[int] = mapped_column(BigInteger)
    curve: Mapped[dict[str, Any]] = mapped_column(JSON)
    caps: Mapped[dict[str, Any]] = mapped_column(JSON)
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    lines: Mapped[list[AllocationLine]] = relationship(
        order_by="AllocationLine.employee_id", lazy="selectin", cascade="all, delete-orphan"
    )


class AllocationLine(Base):
    __tablename__ = "results_allocation_line"

    allocation_id: Mapped[int] = mapped_column(
        ForeignKey("results_allocation.id", ondelete="CASCADE"), primary_key=True
    )
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    final_score: Mapped[float] = mapped_column(Float)
    rating: Mapped[str] = mapped_column(String(32))
    weight: Mapped[float] = mapped_column(Float)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    capped: Mapped[bool] = mapped_column(Boolean, default=False)
    fixed: Mapped[bool] = mapped_column(Boolean, default=False)


class Nomination(Base):
    __tablename__ = "results_promotion_nomination"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    grade: Mapped[str] = mapped_column(String(32))
    rating: Mapped[str] = mapped_column(String(32))
    final_score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class DevelopmentPlan(Base):
    __tablename__ = "results_development_plan"
    __table_args__ = (UniqueConstraint("cycle_id", "employee_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    employee_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    owner_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # draft | active | completed
    rating: Mapped[str | None] = mapped_column(String(32), nullable=True)
    final_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    auto_created: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    items: Mapped[list[DevelopmentItem]] = relationship(
        order_by="DevelopmentItem.id", lazy="selectin", cascade="all, delete-orphan"
    )


class DevelopmentItem(Base):
    __tablename__ = "results_development_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("results_development_plan.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(1000))
    owner_id: Mapped[str] = mapped_column(String(64))
    due_date: Mapped[date] = mapped_column(Date)
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class Publication(Base):
    """The one publication of a cycle's results (``ResultsPublished`` events in the outbox)."""

    __tablename__ = "results_publication"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    publication_id: Mapped[str] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event_ids: Mapped[list[str]] = mapped_column(JSON)
    lines: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(128))


class ResultsAppealAdjustment(Base):
    """An appeal HR resolved as adjusted, as applied here (once per appeal): before publication it
    changes the result and what follows from it; after it, also a ``ResultsCorrected`` correction."""

    __tablename__ = "results_appeal_adjustment"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    appeal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), index=True)
    before_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    before_rating: Mapped[str | None] = mapped_column(String(32), nullable=True)
    after_score: Mapped[float] = mapped_column(Float)
    after_rating: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    applied_at: Mapped[datetime]
    reallocated: Mapped[list[str]] = mapped_column(JSON, default=list)
    correction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    correction_sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class AwardFund(Base):
    """Money finance sets aside for the cycle's collaboration award (paid to the winning department)."""

    __tablename__ = "results_award_fund"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))


class AwardRecord(Base):
    """The cycle's collaboration award as announced at publication: the winner, the ranking it won
    over (as computed then) and the fund it received; recorded once, never recomputed."""

    __tablename__ = "results_award"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    award: Mapped[str] = mapped_column(String(100))
    winner_department_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    winner_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    ranking: Mapped[list[Any]] = mapped_column(JSON)
    fund_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    announced_at: Mapped[datetime]
    announced_by: Mapped[str] = mapped_column(String(128))
