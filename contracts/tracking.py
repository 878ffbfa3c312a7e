"""What the tracking service exports: current KPI values (for evaluation to score) and
stale KPIs by data-owner department (for the workflow to remind, then escalate)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = [
    "SCHEMA_EXPORTS",
    "KpiActual",
    "LateDataPolicy",
    "ProgressExport",
    "StaleKpi",
    "StaleKpiDepartment",
    "StaleKpiReport",
]


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


class LateDataPolicy(StrEnum):
    """What tracking does with an event whose ``occurred_at`` is outside the cycle period
    (a cycle template's ``late_data_policy``).

    * ``accept``: count it in the cycle anyway (scores may move until evaluation starts).
    * ``reject``: do not count it; dead-letter it with the reason.
    * ``next_period``: do not count it in this cycle; keep it for the cycle whose period covers it.
    """

    ACCEPT = "accept"
    """Count it in the cycle anyway."""
    REJECT = "reject"
    """Do not count it; send it to the DLQ with the reason."""
    NEXT_PERIOD = "next_period"
    """Do not count it in this cycle; keep it for the cycle whose period covers it."""


class StaleKpi(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kpi_id: Id
    name: str = Field(max_length=200)
    metric: str = Field(max_length=128)
    owner_department_id: Id
    update_frequency_hours: float
    last_event_at: datetime | None = Field(description="When the last event arrived; None if none ever did.")
    due_at: datetime = Field(description="The deadline that passed: last arrival + frequency + grace.")


class StaleKpiDepartment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department_id: Id = Field(description="The data-owner department that must supply the data.")
    kpis: list[StaleKpi]


class StaleKpiReport(BaseModel):
    """``GET /v1/cycles/{id}/stale-kpis`` on tracking: stale KPIs grouped by owning department."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    as_of: datetime
    departments: list[StaleKpiDepartment]


SCHEMA_EXPORTS: dict[str, type[BaseModel]] = {
    "progress_export.v1": ProgressExport,
    "stale_kpi_report.v1": StaleKpiReport,
}
