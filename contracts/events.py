"""Kafka event contracts.

``MetricEvent`` v1 is what department systems publish on ``metrics.v1``. The
validation here is the contract: the tracking consumer rejects (to the DLQ)
whatever this model rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

__all__ = [
    "METRIC_KEY_PATTERN",
    "METRIC_EVENT_SCHEMA_VERSION",
    "DeadLetter",
    "DomainEvent",
    "MetricEvent",
    "metric_message_key",
]

METRIC_EVENT_SCHEMA_VERSION: Final = 1

METRIC_KEY_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,4}$"
"""A metric key: lower-case dot-separated segments, e.g. ``sales.revenue`` or ``production.defect_rate``."""



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
    "metric is not a valid key: use lower-case dot-separated segments of letters, digits and '_', "
    "e.g. 'sales.revenue'",
)
_FINITE_CHECK = _Check(
    core_schema.float_schema(allow_inf_nan=False),
    "value_not_finite",
    "value must be a finite number (not NaN or infinity)",
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
    value: Annotated[float, _FINITE_CHECK] = Field(description="The measured value; must be finite.")
    unit: str = Field(min_length=1, max_length=32, description="Unit of the value, e.g. 'EUR', '%', 'count'.")
    occurred_at: Annotated[datetime, _AWARE_CHECK] = Field(description="When it happened; must carry a timezone.")
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
    original_b64: str = Field(description="The original message bytes, base64-encoded.")
    rejected_at: datetime


class DomainEvent(BaseModel):
    """A domain event on ``cycle.events.v1``, written through a service's transactional outbox.

    Consumers (the workflow, payroll, notifications) deduplicate on ``event_id``.
    The message key is ``cycle_id`` when set, so one cycle's events stay ordered.
    """

    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    type: str = Field(max_length=64, description="e.g. 'GoalApproved', 'KpiStale', 'ResultsPublished'.")
    schema_version: int = 1
    service: str = Field(max_length=32, description="The service that emitted it.")
    cycle_id: str | None = None
    subject_id: str | None = Field(default=None, description="The entity it is about (goal id, employee id...).")
    occurred_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)
