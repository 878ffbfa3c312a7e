"""Request and response bodies of the goals API (Create / Update / Read per entity)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.events import METRIC_KEY_PATTERN
from contracts.goals import (
    DEFAULT_APPROVAL_CHAINS,
    Aggregation,
    ApprovalChain,
    ApprovalChains,
    ApprovalRole,
    Direction,
    GoalLevel,
)
from services.goals.rules import GoalKind, GoalStatus, Perspective

__all__ = [
    "ApprovalEntry",
    "ApprovalStepState",
    "BulkAssignRequest",
    "BulkAssignResult",
    "BulkSkip",
    "CycleSettingsRead",
    "CycleSettingsUpdate",
    "FreezeResult",
    "GoalApproval",
    "GoalCreate",
    "GoalNode",
    "GoalPage",
    "GoalRead",
    "GoalTemplate",
    "GoalTree",
    "GoalUpdate",
    "Identifier",
    "ObjectiveCreate",
    "ObjectiveNode",
    "ObjectiveRead",
    "ObjectiveUpdate",
    "ProgressAccepted",
    "ReturnRequest",
    "StepState",
    "SubmitRequest",
    "UtcDatetime",
    "WeightReport",
    "WeightSumRead",
]


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A response timestamp: stored in UTC, but SQLite reads it back naive, and RFC 3339 needs the offset."""

_METRIC_KEY = re.compile(METRIC_KEY_PATTERN)

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Weight = Annotated[float, Field(gt=0, le=100, description="Share of the owner's total at this level (0-100].")]


def _check_metric(value: str | None) -> str | None:
    if value is not None and not _METRIC_KEY.match(value):
        raise ValueError(
            f"metric {value!r} is not a valid key: use lower-case dot-separated segments "
            "of letters, digits and '_', e.g. 'sales.revenue'"
        )
    return value


# -- cycle settings ---------------------------------------------------------------------------------
class CycleSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_start: date
    period_end: date
    approval_chains: ApprovalChains | None = Field(
        default=None,
        description="Who approves goals and KPIs, step by step (from the cycle's template); none: one step per "
        "level, as before chains existed (manager; department head; HR).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> CycleSettingsUpdate:
        if self.period_end <= self.period_start:
            raise ValueError(f"period_end {self.period_end} must be after period_start {self.period_start}")
        return self


class CycleSettingsRead(BaseModel):
    cycle_id: str
    period_start: date | None
    period_end: date | None
    frozen: bool
    frozen_at: UtcDatetime | None
    frozen_by: str | None
    approval_chains: ApprovalChains = Field(default_factory=lambda: DEFAULT_APPROVAL_CHAINS)


class FreezeResult(BaseModel):
    cycle_id: str
    frozen_at: UtcDatetime
    already_frozen: bool
    goals_by_status: dict[str, int]


# -- objectives -------------------------------------------------------------------------------------
class ObjectiveCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objective_id: Identifier | None = Field(default=None, description="Optional; generated when absent.")
    name: Name
    description: str = Field(default="", max_length=4000)
    perspective: Perspective


class ObjectiveUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=4000)
    perspective: Perspective | None = None


class ObjectiveRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    objective_id: str
    name: str
    description: str
    perspective: Perspective
    created_at: UtcDatetime


# -- goals ------------------------------------------------------------------------------------------
class GoalTemplate(BaseModel):
    """What every KPI or goal carries; also the template of a bulk assignment."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str = Field(default="", max_length=4000)
    kind: GoalKind = GoalKind.KPI
    unit: str = Field(min_length=1, max_length=32, description="e.g. 'EUR', '%', 'units', 'count'.")
    direction: Direction
    aggregation: Aggregation = Aggregation.LAST
    start_value: float
    target_value: float
    threshold_value: float | None = Field(default=None, description="Minimum acceptable, between start and target.")
    stretch_value: float | None = Field(default=None, description="Beyond target, in the goal's direction.")
    metric: str | None = Field(
        default=None,
        max_length=128,
        description="MetricEvent.metric key that tracks it, e.g. 'sales.revenue'. Required for kind=kpi.",
    )
    data_owner_department_id: Identifier | None = Field(
        default=None, description="Department that must supply the metric. Required when metric is set."
    )
    update_frequency_hours: float = Field(default=24.0, gt=0, le=24 * 366, description="Expected data cadence.")
    weight: Weight
    parent_id: Identifier | None = Field(
        default=None, description="Goal it aligns to: a company KPI (department level) or a department KPI."
    )

    _metric = field_validator("metric")(_check_metric)


class GoalCreate(GoalTemplate):
    goal_id: Identifier | None = Field(default=None, description="Optional; generated when absent.")
    level: GoalLevel
    objective_id: Identifier | None = Field(default=None, description="Company KPIs: the strategy objective.")
    department_id: Identifier | None = Field(default=None, description="Department KPIs: the owning department.")
    employee_id: Identifier | None = Field(default=None, description="Individual goals: the employee.")
    contributing_department_ids: list[Identifier] = Field(
        default_factory=list, max_length=50, description="Shared goals: the other departments contributing."
    )


class GoalUpdate(BaseModel):
    """Partial update; allowed only while the goal is draft or returned."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=4000)
    kind: GoalKind | None = None
    unit: str | None = Field(default=None, min_length=1, max_length=32)
    direction: Direction | None = None
    aggregation: Aggregation | None = None
    start_value: float | None = None
    target_value: float | None = None
    threshold_value: float | None = None
    stretch_value: float | None = None
    metric: str | None = Field(default=None, max_length=128)
    data_owner_department_id: Identifier | None = None
    update_frequency_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    weight: Weight | None = None
    parent_id: Identifier | None = None
    objective_id: Identifier | None = None
    contributing_department_ids: list[Identifier] | None = Field(default=None, max_length=50)

    _metric = field_validator("metric")(_check_metric)


# -- approval chain ---------------------------------------------------------------------------------
class StepState(StrEnum):
    NOT_OPEN = "not_open"
    """An earlier step is still waiting."""
    WAITING = "waiting"
    APPROVED = "approved"
    RETURNED = "returned"


class ApprovalStepState(BaseModel):
    """One step of the goal's current submission: who approves it, by when, and what happened."""

    step: int = Field(ge=1)
    approver_role: ApprovalRole
    approver_id: str | None = Field(
        description="The employee who approves it, set when the step opens; none: any hr_admin."
    )
    state: StepState
    opened_at: UtcDatetime | None = None
    deadline: UtcDatetime | None = Field(default=None, description="The step's own deadline, if the chain sets one.")
    reminders: list[UtcDatetime] = Field(default_factory=list)
    escalate_to_id: str | None = Field(default=None, description="Whom a missed deadline goes to first; none: HR.")
    escalate_to_hr_at: UtcDatetime | None = None
    acted_by: str | None = Field(default=None, description="Who approved or returned it (token subject).")
    acted_at: UtcDatetime | None = None
    comment: str | None = None


class ApprovalEntry(BaseModel):
    """One act on the goal in any submission round: submit, approve (a step) or return."""

    round: int = Field(ge=1)
    action: str
    step: int | None = None
    actor: str
    actor_employee_id: str | None = None
    at: UtcDatetime
    comment: str | None = None


class GoalApproval(BaseModel):
    """Where the goal is in its approval chain (``GoalRead.approval``; stored on the goal)."""

    round: int = Field(ge=1, description="Submissions so far; a returned goal starts the chain again.")
    chain: ApprovalChain = Field(description="The chain as it was when the goal was submitted.")
    submitted_by: str
    submitted_by_employee_id: str | None
    submitted_at: UtcDatetime
    current_step: int | None = Field(description="The step waiting for its approver; none once approved or returned.")
    steps: list[ApprovalStepState]
    history: list[ApprovalEntry] = Field(default_factory=list, description="Every submit, approval and return.")


class GoalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    goal_id: str
    level: GoalLevel
    name: str
    description: str
    kind: GoalKind
    unit: str
    direction: Direction
    aggregation: Aggregation
    start_value: float
    target_value: float
    threshold_value: float | None
    stretch_value: float | None
    metric: str | None
    data_owner_department_id: str | None
    update_frequency_hours: float
    weight: float
    objective_id: str | None
    parent_id: str | None
    department_id: str | None
    employee_id: str | None
    contributing_department_ids: list[str]
    template_key: str | None
    status: GoalStatus
    status_comment: str | None
    status_changed_by: str | None
    approval: GoalApproval | None = Field(
        default=None, description="The approval chain: its steps, the current one, and who approved each."
    )
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int


class GoalPage(BaseModel):
    items: list[GoalRead]
    total: int
    limit: int
    offset: int


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=2000)


class ReturnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(min_length=1, max_length=2000, description="Why it is returned; shown to the owner.")


# -- bulk assignment --------------------------------------------------------------------------------
class BulkAssignRequest(BaseModel):
    """Assign one goal template to everyone in a department and/or with a job title."""

    model_config = ConfigDict(extra="forbid")

    template_key: Identifier = Field(
        description="Stable key of this template; re-running with the same key skips who already has it."
    )
    template: GoalTemplate
    department_id: Identifier | None = Field(default=None, description="Everyone in this department.")
    include_subdepartments: bool = Field(
        default=False, description="With department_id: also everyone in its sub-departments (the whole tree)."
    )
    job_title: str | None = Field(default=None, min_length=1, max_length=200, description="Everyone with this title.")

    @model_validator(mode="after")
    def _target(self) -> BulkAssignRequest:
        if self.department_id is None and self.job_title is None:
            raise ValueError("name department_id or job_title (or both, meaning people matching both)")
        if self.template.parent_id is None:
            raise ValueError("template.parent_id is required: individual goals align to a department KPI")
        return self


class BulkSkip(BaseModel):
    employee_id: str
    reason: str


class BulkAssignResult(BaseModel):
    cycle_id: str
    template_key: str
    matched: int = Field(description="People matching the department/job title in the caller's scope.")
    created: int
    created_goal_ids: list[str]
    skipped: int
    skipped_items: list[BulkSkip]


# -- weights ----------------------------------------------------------------------------------------
class WeightSumRead(BaseModel):
    level: GoalLevel
    owner: str
    total: float
    goal_count: int
    ok: bool
    message: str | None


class WeightReport(BaseModel):
    cycle_id: str
    valid: bool
    problems: list[str]
    sums: list[WeightSumRead]


# -- progress and tree ------------------------------------------------------------------------------
class ProgressAccepted(BaseModel):
    cycle_id: str
    updated: int
    unknown_kpi_ids: list[str]
    superseded_kpi_ids: list[str] = Field(
        default_factory=list,
        description="KPIs whose stored actual is newer (a later as_of) than this export's: kept as they are.",
    )


class GoalNode(BaseModel):
    goal_id: str
    level: GoalLevel
    name: str
    status: GoalStatus
    weight: float
    parent_id: str | None
    department_id: str | None
    employee_id: str | None
    contributing_department_ids: list[str]
    metric: str | None
    unit: str
    direction: Direction
    start_value: float
    target_value: float
    actual_value: float | None = Field(description="Latest actual pushed from tracking.")
    attainment: float | None = Field(description="Own attainment from actual_value, clamped 0..1.5.")
    progress: float | None = Field(description="Weighted mean of children's progress, else own attainment.")
    children: list[GoalNode]


class ObjectiveNode(BaseModel):
    objective_id: str
    name: str
    perspective: Perspective
    progress: float | None
    kpis: list[GoalNode]


class ScorecardObjective(BaseModel):
    objective_id: str
    name: str
    weight: float = Field(description="Weight of its KPIs in the perspective (company KPIs, or the department's).")
    progress: float | None


class ScorecardPerspective(BaseModel):
    perspective: Perspective
    weight: float = Field(description="Share of the company's (or the department's) KPI weight, in percent.")
    progress: float | None = Field(description="Weighted mean of its KPIs' progress; none without data.")
    objectives: list[ScorecardObjective]


class Scorecard(BaseModel):
    """The balanced scorecard: the goal tree rolled up per perspective, for the company or one department."""

    cycle_id: str
    department_id: str | None
    progress: float | None
    perspectives: list[ScorecardPerspective] = Field(description="All four perspectives, in the classic order.")


class GoalTree(BaseModel):
    cycle_id: str
    progress: float | None = Field(description="Weighted mean of the company KPIs' progress.")
    objectives: list[ObjectiveNode]
