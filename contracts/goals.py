"""What the goals service exports to other stages.

``KpiCatalog`` tells the tracking service which metric keys feed which KPI or
goal, how to aggregate them and who owns the data (``GET /v1/cycles/{id}/kpi-catalog``
on goals; ``PUT /v1/cycles/{id}/kpis`` on tracking).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = [
    "SCHEMA_EXPORTS",
    "Aggregation",
    "Direction",
    "ExportedGoal",
    "GoalExport",
    "GoalLevel",
    "KpiCatalog",
    "KpiDefinition",
]



class Aggregation(StrEnum):
    SUM = "sum"
    AVG = "avg"
    LAST = "last"
    MIN = "min"
    MAX = "max"
    COUNT = "count"


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class GoalLevel(StrEnum):
    COMPANY = "company"
    DEPARTMENT = "department"
    INDIVIDUAL = "individual"


class KpiDefinition(BaseModel):
    """One KPI or goal tracked by a metric key."""

    model_config = ConfigDict(extra="forbid")

    kpi_id: Id
    level: GoalLevel
    name: str = Field(max_length=200)
    metric: str = Field(max_length=128, description="The MetricEvent.metric key that feeds it.")
    unit: str = Field(max_length=32)
    aggregation: Aggregation
    direction: Direction
    start_value: float
    target_value: float
    owner_department_id: Id = Field(description="The data-owner department that must supply the metric.")
    update_frequency_hours: float = Field(gt=0, description="How often the owner must send data.")
    department_id: Id | None = Field(default=None, description="Department the KPI belongs to (dept level).")
    employee_id: Id | None = Field(default=None, description="Set for individual goals tracked per person.")


class KpiCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    period_start: date
    period_end: date
    kpis: list[KpiDefinition]


class ExportedGoal(BaseModel):
    """An approved goal with everything scoring needs (no actual values: those come from tracking)."""

    model_config = ConfigDict(extra="forbid")

    goal_id: Id
    level: GoalLevel
    name: str = Field(max_length=200)
    employee_id: Id | None = Field(default=None, description="Owner for individual goals.")
    department_id: Id | None = Field(default=None, description="Department for department KPIs.")
    parent_id: Id | None = Field(default=None, description="The goal it is aligned to.")
    kpi_id: Id | None = Field(default=None, description="KPI id in the KpiCatalog that tracks it, if any.")
    weight: float = Field(ge=0, le=100)
    unit: str = Field(max_length=32)
    direction: Direction
    start_value: float
    target_value: float
    threshold_value: float | None = None
    stretch_value: float | None = None
    contributing_department_ids: list[Id] = Field(
        default_factory=list, description="For shared cross-department goals."
    )


class GoalExport(BaseModel):
    """``GET /v1/cycles/{id}/goal-export`` on goals: every approved goal of the cycle."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    goals: list[ExportedGoal]


SCHEMA_EXPORTS = {"kpi_catalog.v1": KpiCatalog, "goal_export.v1": GoalExport}
