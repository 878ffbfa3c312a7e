"""Kafka event contracts.

``MetricEvent`` v1 is what department systems publish on ``metrics.v1``. The
validation here is the contract: the tracking consumer rejects (to the DLQ)
whatever this model rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, Strict
from pydantic_core import CoreSchema, core_schema

__all__ = [
    "MAX_ABS_VALUE",
    "METRIC_KEY_PATTERN",
    "METRIC_EVENT_SCHEMA_VERSION",
    "OCCURRED_AT_RANGE",
    "DeadLetter",
    "DomainEvent",
    "EventEnvelope",
    "MetricEvent",
    "metric_message_key",
]

METRIC_EVENT_SCHEMA_VERSION: Final = 1

METRIC_KEY_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,4}$"
"""A metric key: lower-case dot-separated segments, e.g. ``sales.revenue`` or ``production.defect_rate``."""

MAX_ABS_VALUE: Final = 1e15
"""Largest magnitude of a value. Sums of any realistic number of events (below 10**290) then stay
finite: two events of 1e308 overflowed the KPI's float sum (in Python and in PostgreSQL)."""

OCCURRED_AT_RANGE: Final = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
"""``[earliest, latest)`` instant of ``occurred_at``. Far from the ends of Python's and PostgreSQL's
date ranges, so converting to UTC, to epoch seconds and to trend buckets never overflows
(``0001-01-01T00:30:00+01:00`` is before year 1 in UTC)."""


@dataclass(frozen=True)
class _Check:
    """``Annotated`` marker: one more constraint, checked by pydantic-core (in Rust, no Python call per
    event) after the field's own validation, failing with ``message`` as a readable error.

    The field validates first (type, length...), so those errors keep their own messages; the
    JSON Schema is the field's own (the first step of the chain).
    """

    check: CoreSchema
    error_type: str
    message: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        refined = core_schema.custom_error_schema(
            self.check, custom_error_type=self.error_type, custom_error_message=self.message
        )
        return core_schema.chain_schema([handler(source), refined])


_METRIC_KEY_CHECK = _Check(
    core_schema.str_schema(pattern=METRIC_KEY_PATTERN),
    "metric_key",
    "metric is not a valid key: use lower-case dot-separated segments of letters, digits and '_', e.g. 'sales.revenue'",
)
_FINITE_CHECK = _Check(
    core_schema.float_schema(allow_inf_nan=False),
    "value_not_finite",
    "value must be a finite number (not NaN or infinity)",
)
_MAGNITUDE_CHECK = _Check(
    core_schema.float_schema(ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE),
    "value_too_large",
    "value must be between -1e15 and 1e15, so that sums over the KPI's events stay finite",
)
_RANGE_CHECK = _Check(
    core_schema.datetime_schema(ge=OCCURRED_AT_RANGE[0], lt=OCCURRED_AT_RANGE[1]),
    "occurred_at_out_of_range",
    "occurred_at must be from 1900-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z",
)
_AWARE_CHECK = _Check(
    core_schema.datetime_schema(tz_constraint="aware"),
    "timezone_missing",
    "occurred_at must include a timezone, e.g. '2026-01-31T12:00:00Z'",
)

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class MetricEvent(BaseModel):
    """One measurement from a department system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(description="Unique id of this event; the deduplication key.")
    schema_version: Literal[1] = Field(default=1, description="Contract version of this payload.")
    source: Identifier = Field(description="The emitting system, e.g. 'salesforce' or 'mes-line-3'.")
    department_id: Identifier = Field(description="The department that owns this metric.")
    metric: Annotated[str, _METRIC_KEY_CHECK] = Field(
        max_length=128,
        description="Metric key, lower-case dot-separated segments, e.g. 'sales.revenue'.",
    )
    # Strict: a JSON number only (an integer or a decimal), as the JSON Schema says; true/false and
    # numeric strings are refused instead of silently read as 1.0 / 0.0 / the number.
    value: Annotated[float, Strict(), _FINITE_CHECK, _MAGNITUDE_CHECK] = Field(
        description="The measured value, a JSON number; finite, at most 1e15 in magnitude."
    )
    unit: str = Field(min_length=1, max_length=32, description="Unit of the value, e.g. 'EUR', '%', 'count'.")
    occurred_at: Annotated[datetime, _AWARE_CHECK, _RANGE_CHECK] = Field(
        description="When it happened; must carry a timezone; from 1900 up to 2200 (UTC)."
    )
    employee_id: Identifier | None = Field(default=None, description="Set when the metric is per person.")
    dimensions: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=32, description="Free-form labels, e.g. {'region': 'EMEA'}."
    )

    @property
    def message_key(self) -> str:
        return metric_message_key(self.department_id, self.metric)


def metric_message_key(department_id: str, metric: str) -> str:
    """Kafka message key: ``department_id:metric``, so one series stays on one partition."""
    return f"{department_id}:{metric}"


class DeadLetter(BaseModel):
    """A message the tracking consumer rejected, as published on ``metrics.dlq.v1``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="Why it was rejected, readable by a person.")
    topic: str
    partition: int
    offset: int
    key: str | None = None
    original_b64: str = Field(
        description="The original message bytes, base64-encoded (only the first bytes when truncated)."
    )
    rejected_at: datetime
    original_size: int | None = Field(default=None, description="Size in bytes of the original message.")
    original_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the whole original message.")
    truncated: bool = Field(
        default=False,
        description="The original (or its key) was too large for the DLQ and was cut; size and hash are of the whole.",
    )


class EventEnvelope(BaseModel):
    """What every domain event on ``cycle.events.v1`` carries besides its ``type``, version and payload.

    ``DomainEvent`` (below) reads any event by this envelope; the typed events in
    ``contracts.domain_events`` add a fixed ``type``, a fixed ``schema_version`` and a typed payload.
    """

    model_config = ConfigDict(extra="forbid")

    event_id: UUID = Field(
        description="Unique id of this event; consumers deduplicate on it (delivery is at-least-once)."
    )
    service: str = Field(max_length=32, description="The service that emitted it.")
    cycle_id: str | None = Field(default=None, description="The cycle it belongs to; also the Kafka message key.")
    subject_id: str | None = Field(default=None, description="The entity it is about (goal id, employee id...).")
    occurred_at: datetime = Field(description="When the change happened (UTC).")


class DomainEvent(EventEnvelope):
    """A domain event on ``cycle.events.v1``, written through a service's transactional outbox.

    Consumers (the workflow, payroll, notifications) deduplicate on ``event_id``.
    The message key is ``cycle_id`` when set, so one cycle's events stay ordered. This envelope
    reads every event; ``contracts.domain_events`` has one model per ``type`` and ``schema_version``
    for the payload, and the outbox refuses an event its model does not accept.
    """

    type: str = Field(max_length=64, description="e.g. 'GoalApproved', 'KpiStale', 'ResultsPublished'.")
    schema_version: int = Field(default=1, description="Version of this type's payload contract.")
    payload: dict[str, Any] = Field(default_factory=dict)
