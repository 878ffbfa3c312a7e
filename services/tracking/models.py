"""Tables of the tracking service (all prefixed ``tracking_``).

* ``tracking_catalog`` / ``tracking_kpi``: the cycle's KPI catalog as pushed by
  the workflow, plus the running aggregate of each KPI (count, sum, min, max and
  the latest value with its ``occurred_at``), so every aggregation is exact and
  independent of the order events arrive in.
* ``tracking_kpi_bucket``: the same aggregate per time bucket, for trends.
* ``tracking_metric_event``: every accepted raw event once (primary key ``event_id``),
  with what happened to it (``applied``, ``unmapped``, ``deferred``, ``rejected``).
* ``tracking_dead_letter``: what went to the DLQ, one row per source offset.
* ``tracking_catalog_version``: one row, bumped by every catalog PUT; the consumer's writes check
  it under a shared lock, so events are always routed with the catalog current at commit.
* ``tracking_check_in``: comments with a confidence level on a KPI or goal, and the current value of
  a key result without a metric.
* ``tracking_data_owners``: per cycle, who answers for each department's data (its data steward,
  else its head) and the departments the cycle runs, as the cycles service froze them.
* ``tracking_api_key``: department systems' API keys for the HTTP ingest, as salted hashes
  (``services.common.api_keys``; the plaintext is shown once, never stored).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.audit import AuditMixin
from services.common.db import UtcDateTime
from services.common.outbox import OutboxMixin
from services.common.participants import DepartmentMixin, ParticipantMixin

__all__ = [
    "Base",
    "TrackingApiKey",
    "TrackingAudit",
    "TrackingCatalog",
    "TrackingCatalogVersion",
    "TrackingCheckIn",
    "TrackingDataOwners",
    "TrackingDeadLetter",
    "TrackingDepartment",
    "TrackingKpi",
    "TrackingKpiBucket",
    "TrackingMetricEvent",
    "TrackingOutbox",
    "TrackingParticipant",
]


class Base(DeclarativeBase):
    pass


class TrackingParticipant(ParticipantMixin, Base):
    __tablename__ = "tracking_participant"


class TrackingDepartment(DepartmentMixin, Base):
    __tablename__ = "tracking_department"


class TrackingOutbox(OutboxMixin, Base):
    __tablename__ = "tracking_outbox"


class TrackingAudit(AuditMixin, Base):
    """Append-only audit log of this service's changes (services.common.audit)."""

    __tablename__ = "tracking_audit"
    # Ingestion is machine data, not a human change: raw events, aggregate buckets and dead letters
    # are not audited (the KPI catalog, its progress rows and check-ins are).
    __audit_exclude__ = frozenset(
        {"tracking_metric_event", "tracking_kpi_bucket", "tracking_dead_letter", "tracking_catalog_version"}
    )


class TrackingCatalog(Base):
    """One cycle's KPI catalog settings (the KPIs themselves are ``TrackingKpi`` rows)."""

    __tablename__ = "tracking_catalog"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    late_data_policy: Mapped[str] = mapped_column(String(16))
    grace_hours: Mapped[float] = mapped_column(Float)
    check_in_cadence_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrackingCatalogVersion(Base):
    """The version of the KPI catalog as a whole (one row, ``id`` 1).

    A catalog PUT bumps it first (its row lock is held until the PUT commits); every ingestion
    write reads it under a shared row lock (``FOR SHARE``) and re-routes its batch if the catalog
    changed since the batch was routed. So no event is stored with an outdated routing after the
    PUT's back-fill has read the stored events: catalog and events may arrive in any order.
    """

    __tablename__ = "tracking_catalog_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class TrackingKpi(Base):
    __tablename__ = "tracking_kpi"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kpi_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(128), index=True)
    unit: Mapped[str] = mapped_column(String(32))
    aggregation: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(20))
    start_value: Mapped[float] = mapped_column(Float)
    target_value: Mapped[float] = mapped_column(Float)
    owner_department_id: Mapped[str] = mapped_column(String(64), index=True)
    update_frequency_hours: Mapped[float] = mapped_column(Float)
    department_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    employee_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # running aggregate
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    value_sum: Mapped[float] = mapped_column(Float, default=0.0)
    value_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # data-owner SLA
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    stale_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TrackingKpiBucket(Base):
    """The aggregate of one KPI within one time bucket (bucket length = the KPI's update frequency)."""

    __tablename__ = "tracking_kpi_bucket"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kpi_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger)
    value_sum: Mapped[float] = mapped_column(Float)
    value_min: Mapped[float] = mapped_column(Float)
    value_max: Mapped[float] = mapped_column(Float)
    last_value: Mapped[float] = mapped_column(Float)
    last_occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_id: Mapped[str] = mapped_column(String(36))


class TrackingMetricEvent(Base):
    """Every accepted raw event once. The hot table of ingestion, so it carries as few indexes as
    its readers need: the primary key ``event_id`` (a native ``uuid`` on PostgreSQL: 16-byte keys,
    no collation) deduplicates, and the events not applied to a KPI (unmapped, deferred, rejected:
    what the ops page counts) have a partial index that applied events never touch."""

    __tablename__ = "tracking_metric_event"
    __table_args__ = (
        Index(
            "ix_tracking_metric_event_unapplied",
            "status",
            "metric",
            postgresql_where=text("status <> 'applied'"),
            sqlite_where=text("status <> 'applied'"),
        ),
    )

    event_id: Mapped[str] = mapped_column(
        String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(128))
    employee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    dimensions: Mapped[str | None] = mapped_column(Text, nullable=True)


class TrackingDeadLetter(Base):
    __tablename__ = "tracking_dead_letter"
    __table_args__ = (UniqueConstraint("topic", "partition", "offset", name="uq_tracking_dead_letter_source"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(128))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class TrackingCheckIn(Base):
    __tablename__ = "tracking_check_in"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    kpi_id: Mapped[str] = mapped_column(String(64))
    author_sub: Mapped[str] = mapped_column(String(200))
    author_employee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    author_role: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    confidence: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The current value, for a KPI without a metric (``rules.CHECK_IN_METRIC``); none otherwise."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrackingDataOwners(Base):
    """``contracts.org.DataOwnerDirectory`` of one cycle, as the cycles service sent it (read whole)."""

    __tablename__ = "tracking_data_owners"

    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    directory: Mapped[dict[str, object]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TrackingApiKey(Base):
    """A department system's API key for ``POST /v1/ingest/metrics``: never the secret, only its salted hash.

    ``secret_hash`` is ``sha256$<salt>$<digest>`` (the salt travels inside it). A rotated key keeps
    working until ``expires_at`` (the overlap); its successor names it in ``replaces``.
    """

    __tablename__ = "tracking_api_key"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # unique: a key has at most one successor, even when two rotations race
    replaces: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True, unique=True)
