"""What the goals service exports to other stages, and the approval chains it runs.

``KpiCatalog`` tells the tracking service which metric keys feed which KPI or
goal, how to aggregate them and who owns the data (``GET /v1/cycles/{id}/kpi-catalog``
on goals; ``PUT /v1/cycles/{id}/kpis`` on tracking).

``ApprovalChains`` is who approves a goal, step by step, per goal level (optionally per
department): the cycle pushes it with the goal-setting settings (``PUT /v1/cycles/{id}/settings``
on goals). Each step has its deadline, reminders and escalation in the grammar of
``contracts.timing`` (``deadline_days``, ``reminder_days_before``, ``escalate_days_after_deadline``).
Nobody approves a step of a goal they submitted or already approved at another step.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.ids import Id
from contracts.timing import ReminderDays, unique_reminders

__all__ = [
    "DEFAULT_APPROVAL_CHAINS",
    "SCHEMA_EXPORTS",
    "Aggregation",
    "ApprovalChain",
    "ApprovalChainOverride",
    "ApprovalChains",
    "ApprovalQueue",
    "ApprovalQueueItem",
    "ApprovalRole",
    "ApprovalStep",
    "Direction",
    "ExportedGoal",
    "GoalExport",
    "GoalLevel",
    "GoalStatus",
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


class GoalStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    """Waiting in its approval chain (at the step ``approval_step``)."""
    APPROVED = "approved"
    RETURNED = "returned"


# -- approval chains ----------------------------------------------------------------------------------
class ApprovalRole(StrEnum):
    """Who approves a step, resolved against the cycle's org snapshot when the step opens."""

    MANAGER = "manager"
    """The goal owner's direct manager."""
    DEPARTMENT_HEAD = "department_head"
    """The head of the goal's department."""
    HR = "hr"
    """Any hr_admin."""


class ApprovalStep(BaseModel):
    """One step: who approves, by when, when they are reminded and when it escalates.

    A step *opens* when the goal is submitted (the first) or the step before is approved. When the
    person the role names may not approve (they submitted the goal, own it or approved an earlier
    step), the step goes up: to the head of the parent department, and at the top to HR.
    """

    model_config = ConfigDict(extra="forbid")

    approver: ApprovalRole
    deadline_days: int | None = Field(
        default=None, ge=1, le=365, description="Days after the step opens (none: the stage deadline only)."
    )
    reminder_days_before: ReminderDays = Field(
        default_factory=lambda: [1], description="Reminders this many days before the step's deadline."
    )
    escalate_days_after_deadline: int = Field(
        default=1,
        ge=1,
        le=365,
        description="A missed step goes up the approver's line at once and to HR this many days later.",
    )

    @model_validator(mode="after")
    def _reminders(self) -> ApprovalStep:
        self.reminder_days_before = unique_reminders(self.reminder_days_before, "reminder_days_before")
        early = [d for d in self.reminder_days_before if self.deadline_days and d > self.deadline_days]
        if early:
            raise ValueError(
                f"reminder(s) {early} days before the deadline would go out before the step opens "
                f"(deadline_days is {self.deadline_days})"
            )
        return self


class ApprovalChain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[ApprovalStep] = Field(min_length=1, max_length=5)

    @model_validator(mode="after")
    def _distinct(self) -> ApprovalChain:
        roles = [s.approver for s in self.steps]
        repeated = sorted({r.value for r in roles if roles.count(r) > 1})
        if repeated:
            raise ValueError(f"approver role(s) {repeated} appear twice; each step needs a different approver")
        return self


class ApprovalChainOverride(BaseModel):
    """A department's own chains (for its sub-departments too); a level left out keeps the cycle's."""

    model_config = ConfigDict(extra="forbid")

    individual: ApprovalChain | None = None
    department: ApprovalChain | None = None


def _chain(*roles: ApprovalRole) -> ApprovalChain:
    return ApprovalChain(steps=[ApprovalStep(approver=role) for role in roles])


class ApprovalChains(BaseModel):
    """The approval chain per goal level; the default is one step each, as before chains existed."""

    model_config = ConfigDict(extra="forbid")

    individual: ApprovalChain = Field(
        default_factory=lambda: _chain(ApprovalRole.MANAGER), description="Individual goals, e.g. manager -> head."
    )
    department: ApprovalChain = Field(
        default_factory=lambda: _chain(ApprovalRole.DEPARTMENT_HEAD), description="Department KPIs, e.g. head -> HR."
    )
    company: ApprovalChain = Field(default_factory=lambda: _chain(ApprovalRole.HR), description="Company KPIs.")
    departments: dict[Id, ApprovalChainOverride] = Field(
        default_factory=dict, max_length=500, description="Per-department chains, by department id."
    )

    def for_goal(self, level: GoalLevel, department_ids: list[str]) -> ApprovalChain:
        """The chain of a goal at ``level`` in the first of ``department_ids`` (its department, then its
        ancestors) that overrides it; else the cycle's."""
        if level is not GoalLevel.COMPANY:
            for department_id in department_ids:
                override = self.departments.get(department_id)
                if override is None:
                    continue
                chain = override.department if level is GoalLevel.DEPARTMENT else override.individual
                if chain is not None:
                    return chain
        return {GoalLevel.COMPANY: self.company, GoalLevel.DEPARTMENT: self.department}.get(level, self.individual)


DEFAULT_APPROVAL_CHAINS: Final = ApprovalChains()


class ApprovalQueueItem(BaseModel):
    """One goal waiting at one step, with the step's approver and timing (for reminders and escalation)."""

    model_config = ConfigDict(extra="forbid")

    goal_id: Id
    level: GoalLevel
    employee_id: Id | None
    department_id: Id | None
    step: int = Field(ge=1, description="The open step (1-based).")
    steps: int = Field(ge=1)
    approver_role: ApprovalRole
    approver_id: Id | None = Field(description="The employee who approves; none: any hr_admin.")
    opened_at: AwareDatetime
    deadline: AwareDatetime | None = Field(description="The step's own deadline; none: the stage deadline only.")
    reminders: list[AwareDatetime] = Field(description="When reminders go out, earliest first.")
    escalate_to_id: Id | None = Field(description="Whom a missed deadline goes to first; none: HR.")
    escalate_to_hr_at: AwareDatetime | None


class ApprovalQueue(BaseModel):
    """``GET /v1/cycles/{id}/approvals?department_id=`` on goals: every open approval step there."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    department_id: Id
    as_of: AwareDatetime
    items: list[ApprovalQueueItem]


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


SCHEMA_EXPORTS = {
    "kpi_catalog.v1": KpiCatalog,
    "goal_export.v1": GoalExport,
    "approval_chains.v1": ApprovalChains,
    "approval_queue.v1": ApprovalQueue,
}
