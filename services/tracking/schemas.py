"""Request and response bodies of the tracking API (the cross-service ones live in ``contracts``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.tracking import LateDataPolicy
from services.common.api_keys import DEFAULT_OVERLAP

__all__ = [
    "API_KEY_HEADER",
    "MAX_EXPIRES_IN_DAYS",
    "MAX_INGEST_BATCH",
    "MAX_OVERLAP_HOURS",
    "ApiKeyCreate",
    "ApiKeyIssued",
    "ApiKeyPage",
    "ApiKeyRead",
    "ApiKeyRotate",
    "ApiKeyStatus",
    "CatalogAccepted",
    "CheckInCreate",
    "CheckInList",
    "CheckInRead",
    "DataOwnersAccepted",
    "DeadLetterRead",
    "DepartmentProgress",
    "IngestError",
    "IngestRejected",
    "IngestRequest",
    "IngestResult",
    "KpiProgressRead",
    "OpsIngestion",
    "PartitionLagRead",
    "ProgressPage",
    "StalenessEvaluation",
    "TrendPoint",
    "UnmappedMetric",
]

MAX_INGEST_BATCH = 1000
"""Most events one ``POST /v1/ingest/metrics`` call may carry."""

API_KEY_HEADER = "X-API-Key"
"""The header a department system sends its API key in."""
MAX_EXPIRES_IN_DAYS = 3650
MAX_OVERLAP_HOURS = 24 * 30

_DEPARTMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"  # contracts.events.Identifier


class CatalogAccepted(BaseModel):
    cycle_id: str
    kpis: int
    late_data_policy: LateDataPolicy
    grace_hours: float
    check_in_cadence_days: int
    backfilled_events: int = Field(description="Stored events counted into KPIs that were new or re-mapped.")


class TrendPoint(BaseModel):
    bucket_start: datetime
    value: float | None = Field(description="The KPI's aggregation applied to this bucket's events.")
    event_count: int


class KpiProgressRead(BaseModel):
    cycle_id: str
    kpi_id: str
    name: str
    level: str
    metric: str
    unit: str
    aggregation: str
    direction: str
    start_value: float
    target_value: float
    owner_department_id: str
    department_id: str | None
    employee_id: str | None
    current_value: float | None
    attainment_pct: float | None = Field(description="100 = target reached; honours the KPI's direction.")
    event_count: int
    last_occurred_at: datetime | None
    last_event_at: datetime | None = Field(description="When the latest event arrived.")
    stale: bool
    due_at: datetime = Field(description="When the data owner's next event is due (frequency + grace).")
    trend: list[TrendPoint] | None = Field(default=None, description="Last buckets, oldest first.")
    trend_slope: float | None = Field(default=None, description="Least-squares change per bucket.")


class ProgressPage(BaseModel):
    cycle_id: str
    as_of: datetime
    total: int
    items: list[KpiProgressRead]


class DepartmentProgress(BaseModel):
    department_id: str
    kpi_count: int
    with_data: int
    stale_count: int
    avg_attainment_pct: float | None = Field(description="Mean attainment of the KPIs with data.")


class CheckInCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kpi_id: Annotated[str, Field(min_length=1, max_length=64, description="The KPI or goal checked in on.")]
    comment: Annotated[str, Field(min_length=1, max_length=4000)]
    confidence: Annotated[int, Field(ge=1, le=5, description="1 = off track, 5 = certain to hit the target.")]
    value: Annotated[
        float | None,
        Field(
            allow_inf_nan=False,
            description="The current value of a KPI without a metric (an OKR key result): it counts like a "
            "metric event, with the KPI's aggregation. Refused for a KPI fed by a metric.",
        ),
    ] = None


class CheckInRead(BaseModel):
    id: int
    cycle_id: str
    kpi_id: str
    author_sub: str
    author_employee_id: str | None
    author_role: str
    comment: str
    confidence: int
    value: float | None = None
    created_at: datetime


class CheckInList(BaseModel):
    cycle_id: str
    kpi_id: str
    cadence_days: int
    last_check_in_at: datetime | None
    next_due_at: datetime = Field(description="Last check-in (or KPI registration) plus the cadence.")
    overdue: bool
    items: list[CheckInRead]


class DataOwnersAccepted(BaseModel):
    cycle_id: str
    departments: int = Field(description="Departments with who answers for their data.")
    cycle_department_ids: list[str]


class StalenessEvaluation(BaseModel):
    evaluated: int
    became_stale: list[str]
    became_fresh: list[str]


class PartitionLagRead(BaseModel):
    partition: int
    end_offset: int
    committed: int | None
    lag: int


class DeadLetterRead(BaseModel):
    topic: str
    partition: int
    offset: int
    reason: str
    rejected_at: datetime


class UnmappedMetric(BaseModel):
    metric: str
    department_id: str
    events: int


class OpsIngestion(BaseModel):
    consumer_group: str
    topic: str
    partitions: list[PartitionLagRead]
    total_lag: int | None
    lag_error: str | None = Field(default=None, description="Why the lag could not be read, if it could not.")
    events_stored: int
    dead_letters: int
    latest_dead_letters: list[DeadLetterRead]
    unmapped_events: int
    unmapped_metrics: list[UnmappedMetric]
    conflicting_duplicates: int = Field(
        default=0,
        description="Events whose event_id was stored before with other content (the first is kept; DLQ reason "
        "'conflicting duplicate').",
    )
    ingestion_state: str = Field(
        default="unknown",
        description="running, paused (retrying after an error), stalled (lag without committed progress), "
        "stopped, or unknown (no consumer in this process and the lag could not be read).",
    )
    ingestion_status: str = Field(
        default="", description="One line for people, e.g. 'ingestion stalled since ... on partition 2 (lag 120)'."
    )
    stalled_since: datetime | None = None
    stalled_partition: int | None = None
    last_error: str | None = Field(default=None, description="The consumer's last error, if any.")


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_INGEST_BATCH,
        description=f"1 to {MAX_INGEST_BATCH} MetricEvent objects; each is validated on its own.",
    )


class IngestError(BaseModel):
    field: str
    message: str


class IngestRejected(BaseModel):
    index: int
    event_id: str | None
    errors: list[IngestError]


class IngestResult(BaseModel):
    accepted: int
    rejected: list[IngestRejected]


# -- API keys --------------------------------------------------------------------------------------
ExpiresInDays = Annotated[int | None, Field(ge=1, le=MAX_EXPIRES_IN_DAYS)]


class ApiKeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ApiKeyCreate(BaseModel):
    department_id: str = Field(
        min_length=1, max_length=64, pattern=_DEPARTMENT_ID, description="The department the system publishes for."
    )
    name: str = Field(min_length=1, max_length=200, description="What uses the key, e.g. 'salesforce-prod'.")
    expires_in_days: ExpiresInDays = Field(
        default=None, description="Lifetime in days; omitted: valid until rotated or revoked."
    )


class ApiKeyRotate(BaseModel):
    overlap_hours: float = Field(
        default=DEFAULT_OVERLAP.total_seconds() / 3600,
        ge=0,
        le=MAX_OVERLAP_HOURS,
        description="How long the old key keeps working (0 ends it now).",
    )
    expires_in_days: ExpiresInDays = Field(
        default=None,
        description="Lifetime of the new key; omitted: the old key's original lifetime (none if it had none).",
    )


class ApiKeyRead(BaseModel):
    """A key as listed: never its secret or hash."""

    key_id: str
    department_id: str
    name: str
    status: ApiKeyStatus
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaces: str | None = Field(description="The key this one was rotated from.")


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(
        description=f"The API key, shown this once: send it as the {API_KEY_HEADER} header. Only its hash is stored."
    )


class ApiKeyPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ApiKeyRead]
