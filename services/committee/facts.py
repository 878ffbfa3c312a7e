"""The data the committee's rules read, as the other services answer it, narrowed to what the rules use.

Where a ``contracts`` model exists for an answer (stale KPIs, the collaboration matrix, the cycle
status, the org snapshot) the rules take it as it is; the answers that are each service's own API
(progress, check-ins, calibration reports, appeals, review summaries) are read into the small
models here, which ignore the fields the rules do not need, so a field added upstream breaks nothing.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contracts.goals import Direction

__all__ = [
    "AppealFact",
    "CheckInFact",
    "CycleFact",
    "DecisionFact",
    "DeviationFact",
    "DistributionFact",
    "GroupDeviationFact",
    "KpiFact",
    "ResultFact",
    "ReviewFact",
    "ScaleFact",
]


class _Fact(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CycleFact(_Fact):
    """``GET /v1/cycles/{id}`` on cycles."""

    cycle_id: str
    name: str
    status: str
    department_ids: list[str]
    period_end: str | None = None


class KpiFact(_Fact):
    """One KPI of tracking's ``GET /v1/cycles/{id}/progress`` (its trend from ``/kpis/{id}/progress``)."""

    kpi_id: str
    name: str
    level: str
    direction: Direction
    target_value: float
    owner_department_id: str
    department_id: str | None = None
    employee_id: str | None = None
    current_value: float | None = None
    attainment_pct: float | None = None
    stale: bool = False
    due_at: datetime
    trend_slope: float | None = None

    @property
    def department(self) -> str:
        """The department a KPI counts for: its own, else its data owner's (as tracking rolls it up)."""
        return self.department_id or self.owner_department_id

    @property
    def trend(self) -> str:
        """``worsening``, ``improving`` or ``flat`` (also when unknown), honouring the KPI's direction."""
        if not self.trend_slope:
            return "flat"
        better = self.trend_slope > 0 if self.direction is Direction.HIGHER_IS_BETTER else self.trend_slope < 0
        return "improving" if better else "worsening"


class CheckInFact(_Fact):
    """Tracking's ``GET /v1/cycles/{id}/kpis/{kpi}/check-ins`` (the cadence part)."""

    kpi_id: str
    cadence_days: int
    last_check_in_at: datetime | None = None
    next_due_at: datetime
    overdue: bool


class GroupDeviationFact(_Fact):
    group_id: str
    count: int
    mean: float
    z_score: float
    flag: str | None = None


class DeviationFact(_Fact):
    """Evaluation's ``GET /v1/cycles/{id}/calibration/deviation``: lenient and strict raters."""

    company_mean: float | None = None
    z_threshold: float
    by_department: list[GroupDeviationFact] = Field(default_factory=list)
    by_manager: list[GroupDeviationFact] = Field(default_factory=list)


class DistributionFact(_Fact):
    """Evaluation's ``GET /v1/cycles/{id}/calibration/distribution``."""

    total: int
    violations: list[str] = Field(default_factory=list)


class AppealFact(_Fact):
    """One appeal of feedback's ``GET /v1/cycles/{id}/appeals``."""

    id: int
    employee_id: str
    department_id: str
    status: str
    hr_due_at: datetime

    @property
    def open(self) -> bool:
        return self.status in ("submitted", "under_review")


class ReviewFact(_Fact):
    """The manager's competency ratings of one person (evaluation's review summary, manager relation)."""

    employee_id: str
    competencies: dict[str, float] = Field(default_factory=dict)


class DecisionFact(_Fact):
    """An open decision of the committee itself (for the agenda's overdue decisions)."""

    decision_id: str
    title: str
    owner_id: str
    due_at: datetime


class ResultFact(_Fact):
    """One released result: feedback's ``GET /v1/cycles/{id}/results/{employee_id}``."""

    employee_id: str
    department_id: str = ""
    final_score: float
    rating: str


class _Competency(_Fact):
    competency_id: str
    name: str


class _Scale(_Fact):
    min: float
    max: float


class ScaleFact(_Fact):
    """The rating scale and the competencies of a cycle: evaluation's ``GET /v1/cycles/{id}/config``."""

    rating_scale: _Scale
    competencies: list[_Competency] = []
