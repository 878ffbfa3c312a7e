"""Kafka event contracts.

``MetricEvent`` v1 is what department systems publish on ``metrics.v1``. The
validation here is the contract: the tracking consumer rejects (to the DLQ)
whatever this model rejects.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

_METRIC_KEY = re.compile(METRIC_KEY_PATTERN)

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class MetricEvent(BaseModel):
    """One measurement from a department system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(description="Unique id of this event; the deduplication key.")
    schema_version: Literal[1] = Field(default=1, description="Contract version of this payload.")
    source: Identifier = Field(description="The emitting system, e.g. 'salesforce' or 'mes-line-3'.")
    department_id: Identifier = Field(description="The department that owns this metric.")
    metric: str = Field(
        max_length=128,
        description="Metric key, lower-case dot-separated segments, e.g. 'sales.revenue'.",
    )
    value: float = Field(description="The measured value; must be finite.")
    unit: str = Field(min_length=1, max_length=32, description="Unit of the value, e.g. 'EUR', '%', 'count'.")
    occurred_at: datetime = Field(description="When it happened; must carry a timezone.")
    employee_id: Identifier | None = Field(default=None, description="Set when the metric is per person.")
    dimensions: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=32, description="Free-form labels, e.g. {'region': 'EMEA'}."
    )

    @field_validator("metric")
    @classmethod
    def _metric_key(cls, value: str) -> str:
        if not _METRIC_KEY.match(value):
            raise ValueError(
                f"metric {value!r} is not a valid key: use lower-case dot-separated segments "
                "of letters, digits and '_', e.g. 'sales.revenue'"
            )
        return value

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number (not NaN or infinity)")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("occurred_at must include a timezone, e.g. '2026-01-31T12:00:00Z'")
        return value

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
