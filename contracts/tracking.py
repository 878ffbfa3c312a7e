"""What the tracking service exports: current KPI values, for evaluation to score."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SCHEMA_EXPORTS", "KpiActual", "ProgressExport"]

Id = Annotated[str, Field(min_length=1, max_length=64)]


class KpiActual(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kpi_id: Id
    actual_value: float | None = Field(description="Aggregated value so far; None when no data arrived.")
    event_count: int = Field(ge=0)
    last_event_at: datetime | None = None
    stale: bool = False


class ProgressExport(BaseModel):
    """``GET /v1/cycles/{id}/progress-export`` on tracking."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    as_of: datetime
    actuals: list[KpiActual]


SCHEMA_EXPORTS = {"progress_export.v1": ProgressExport}
