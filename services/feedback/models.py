"""Tables of the feedback service (all prefixed ``feedback_``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy import true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.audit import AuditMixin
from services.common.db import UtcDateTime
from services.common.outbox import OutboxMixin
from services.common.participants import DepartmentMixin, ParticipantMixin

__all__ = [
    "ActionItem",
    "Appeal",
    "AppealEvent",
    "Base",
    "FeedbackAudit",
    "FeedbackCycle",
    "FeedbackDepartment",
    "FeedbackNote",
    "FeedbackOutbox",
    "FeedbackParticipant",
    "OneOnOne",
    "ReleasedResult",
    "UtcDateTime",
]


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {datetime: UtcDateTime()}


def _owned_rows(child: str, *, back: str) -> Any:
    """A parent's rows (1:1 action items, appeal steps): loaded with it, in order, deleted with it."""
    return relationship(back_populates=back, order_by=f"{child}.id", lazy="selectin", cascade="all, delete-orphan")


def _parent_id(table: str) -> Any:
    return mapped_column(ForeignKey(f"{table}.id", ondelete="CASCADE"), index=True)


class FeedbackParticipant(ParticipantMixin, Base):
    __tablename__ = "feedback_participant"


class FeedbackDepartment(DepartmentMixin, Base):
    __tablename__ = "feedback_department"


class FeedbackOutbox(OutboxMixin, Base):
    __tablename__ = "feedback_outbox"


class FeedbackAudit(AuditMixin, Base):
    """Append-only audit log of this service's changes (services.common.audit)."""

    __tablename__ = "feedback_audit"


class FeedbackCycle(Base):
    """Per-cycle state: whether results arrived, calibration closed, release and appeal settings (with
    the version and source of those settings)."""

    __tablename__ = "feedback_cycle"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scale_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    scale_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    results_received_at: Mapped[datetime | None] = mapped_column(nullable=True)
    calibration_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    appeal_window_days: Mapped[int] = mapped_column(Integer, default=14)
    hr_resolution_days: Mapped[int] = mapped_column(Integer, default=10)
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Who set the appeal window and HR deadline: the template (pushed by the workflow) or HR (kept).
    settings_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    settings_source: Mapped[str] = mapped_column(String(16), default="template", server_default="template")
    settings_changed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    settings_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    day_seconds: Mapped[float] = mapped_column(Float, default=86_400.0, server_default="86400")
    """Seconds per template day: a compressed cycle (demo, benchmark) counts its appeal window and HR's
    resolution time in its own days, as the workflow counts its stages. Set by the release."""

    def days(self, count: float) -> timedelta:
        """``count`` of this cycle's days."""
        return timedelta(seconds=count * self.day_seconds)


class ReleasedResult(Base):
    """One employee's calibrated result; visible to them (and their managers) once released."""

    __tablename__ = "feedback_result"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    manager_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    final_score: Mapped[float] = mapped_column(Float)
    rating: Mapped[str] = mapped_column(String(32))
    pre_calibration_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    calibrated: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending|released|withdrawn
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    adjusted_by_appeal_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OneOnOne(Base):
    __tablename__ = "feedback_one_on_one"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    manager_id: Mapped[str] = mapped_column(String(64), index=True)
    employee_id: Mapped[str] = mapped_column(String(64), index=True)
    scheduled_for: Mapped[datetime]
    agenda: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    action_items: Mapped[list[ActionItem]] = _owned_rows("ActionItem", back="one_on_one")


class ActionItem(Base):
    __tablename__ = "feedback_action_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    one_on_one_id: Mapped[int] = _parent_id("feedback_one_on_one")
    description: Mapped[str] = mapped_column(String(1000))
    owner_id: Mapped[str] = mapped_column(String(64))
    due_date: Mapped[date] = mapped_column(Date)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    one_on_one: Mapped[OneOnOne] = relationship(back_populates="action_items")


class FeedbackNote(Base):
    """Continuous feedback or kudos; attributed (never anonymous)."""

    __tablename__ = "feedback_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    author_id: Mapped[str] = mapped_column(String(64), index=True)
    recipient_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # feedback | kudos
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    shared_with_manager: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    """False for an answer to a request its requester kept from their manager: only the two people and HR."""


class FeedbackRequest(Base):
    """Somebody asks a colleague (any department) for feedback; the answer becomes a ``FeedbackNote``."""

    __tablename__ = "feedback_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    requester_id: Mapped[str] = mapped_column(String(64), index=True)
    giver_id: Mapped[str] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | answered | declined
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_note.id"), nullable=True)
    """The answer."""
    decline_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    share_with_manager: Mapped[bool] = mapped_column(Boolean, default=True)
    """The requester's choice: may their managers read the request and its answer."""


class Appeal(Base):
    __tablename__ = "feedback_appeal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    employee_id: Mapped[str] = mapped_column(String(64), index=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    submitted_at: Mapped[datetime]
    hr_due_at: Mapped[datetime] = mapped_column(index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_score: Mapped[float] = mapped_column(Float)
    previous_rating: Mapped[str] = mapped_column(String(32))
    new_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    new_rating: Mapped[str | None] = mapped_column(String(32), nullable=True)
    events: Mapped[list[AppealEvent]] = _owned_rows("AppealEvent", back="appeal")


class AppealEvent(Base):
    """Every step of an appeal, append-only."""

    __tablename__ = "feedback_appeal_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appeal_id: Mapped[int] = _parent_id("feedback_appeal")
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    appeal: Mapped[Appeal] = relationship(back_populates="events")
