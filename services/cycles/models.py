"""Tables of the cycles service: the live org directory, templates, cycles and their frozen snapshots."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.audit import AuditMixin
from services.common.outbox import OutboxMixin
from services.common.participants import DepartmentMixin, ParticipantMixin

__all__ = [
    "Base",
    "CyclesAudit",
    "CyclesCycle",
    "CyclesDepartment",
    "CyclesDistribution",
    "CyclesEmployee",
    "CyclesOrgImport",
    "CyclesOutbox",
    "CyclesSnapshotDataOwner",
    "CyclesSnapshotDepartment",
    "CyclesSnapshotParticipant",
    "CyclesTemplate",
]


class Base(DeclarativeBase):
    pass


class CyclesDepartment(Base):
    """A department of the live directory. Tree links are validated by the import, not by FKs,
    so one import can insert a whole tree in any order."""

    __tablename__ = "cycles_department"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    head_employee_id: Mapped[str] = mapped_column(String(64))
    data_steward_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Who answers for the department's data (stale-data reminders); none: the head."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CyclesEmployee(Base):
    """An employee of the live directory; ``active=False`` once an import no longer lists them."""

    __tablename__ = "cycles_employee"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    manager_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    job_title: Mapped[str] = mapped_column(String(200), index=True)
    grade: Mapped[str] = mapped_column(String(32))
    salary_band: Mapped[str | None] = mapped_column(String(32), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CyclesOrgImport(Base):
    """One applied org import (no-op imports leave no row)."""

    __tablename__ = "cycles_org_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(16))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CyclesTemplate(Base):
    __tablename__ = "cycles_template"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CyclesCycle(Base):
    """A review cycle. ``template_spec`` is a copy taken at creation: template edits never move a cycle."""

    __tablename__ = "cycles_cycle"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    template_id: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[int] = mapped_column(Integer)
    template_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    department_ids: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    snapshot_participants: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CyclesSnapshotParticipant(ParticipantMixin, Base):
    """Who takes part in a cycle, frozen when it starts; and, in departments outside the cycle, the
    data stewards and heads its stale-data reminders may go to (``department_id`` outside the
    snapshot's departments). Those are notification recipients only: the snapshot the stage
    services receive (``service.load_snapshot``) leaves them out."""

    __tablename__ = "cycles_snapshot_participant"


class CyclesSnapshotDepartment(DepartmentMixin, Base):
    """The cycle's departments (participating ones and their sub-departments), frozen when it starts."""

    __tablename__ = "cycles_snapshot_department"


class CyclesSnapshotDataOwner(Base):
    """Every department of the directory with who answers for its data, frozen when the cycle starts
    (``contracts.org.DataOwnerDirectory``, sent to tracking with the snapshot)."""

    __tablename__ = "cycles_snapshot_data_owner"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data_steward_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    head_employee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CyclesDistribution(Base):
    """Whether a stage service has received the cycle's snapshot."""

    __tablename__ = "cycles_distribution"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CyclesOutbox(OutboxMixin, Base):
    __tablename__ = "cycles_outbox"


class CyclesAudit(AuditMixin, Base):
    """Append-only audit log of this service's changes (services.common.audit)."""

    __tablename__ = "cycles_audit"


class CyclesNotification(Base):
    __tablename__ = "cycles_notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(36), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    recipients: Mapped[str] = mapped_column(Text, doc="JSON list of resolved recipients")
    pending: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivery: Mapped[str] = mapped_column(Text, default="{}", doc="JSON: sender name -> 'sent' or error")
