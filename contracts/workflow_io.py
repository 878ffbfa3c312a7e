"""Inputs and outputs of the review-cycle workflows, signals, updates, queries and activities.

One pydantic model per workflow, signal, update and activity, so fields can be
added without breaking callers. Datetimes must be timezone-aware.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.cycle import STAGE_ORDER, DeadlinePolicy, Stage
from contracts.handoffs import Blocked, Incident
from contracts.ids import Id

__all__ = [
    "SCHEMA_EXPORTS",
    "CancelCycle",
    "CycleStatus",
    "DepartmentCycleInput",
    "DepartmentOutcome",
    "DepartmentProgress",
    "DueItem",
    "DeadlineChanged",
    "ExtendDeadline",
    "ForceStage",
    "NotificationRequest",
    "NotificationResult",
    "PauseState",
    "PendingQuery",
    "PendingSummary",
    "ReviewCycleInput",
    "StageAction",
    "StageActionResult",
    "StageOutcomes",
    "StageSchedule",
    "TaskCompleted",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageSchedule(_Model):
    stage: Stage
    deadline: AwareDatetime
    reminder_days_before: list[float] | None = Field(
        default=None, description="Overrides the cycle's reminder cadence for this stage."
    )


class ReviewCycleInput(_Model):
    """Start input of ``ReviewCycleWorkflow``; also the continue-as-new state."""

    cycle_id: Id
    department_ids: list[Id] = Field(min_length=1, max_length=1000)
    schedule: list[StageSchedule] = Field(description="One deadline per working stage.")
    reminder_days_before: list[float] = Field(default_factory=lambda: [7.0, 1.0])
    escalate_to_hr_after_days: float = Field(default=1.0, ge=0, description="Head first, then HR after this.")
    deadline_policy: DeadlinePolicy = DeadlinePolicy.CLOSE
    extension_days: float = Field(default=3.0, gt=0)
    recheck_hours: float = Field(default=24.0, gt=0, description="Re-read pending items at least this often.")
    max_concurrent_children: int = Field(default=200, ge=1, le=500)
    history_event_limit: int = Field(default=10_000, ge=100, description="Continue as new beyond this.")
    day_seconds: float = Field(
        default=86_400, gt=0, description="Seconds per template day (compressed for demos); scales grace periods."
    )
    # continue-as-new state
    start_stage: Stage = Stage.GOAL_SETTING
    paused: bool = False
    pending_cancel: CancelCycle | None = None
    finished_stages: list[StageOutcomes] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_deadline_per_stage(self) -> ReviewCycleInput:
        stages = [s.stage for s in self.schedule]
        missing = [s.value for s in STAGE_ORDER if s not in stages]
        if missing or len(stages) != len(set(stages)):
            raise ValueError(f"schedule needs exactly one deadline per stage; missing {missing}")
        ordered = [next(s.deadline for s in self.schedule if s.stage == st) for st in STAGE_ORDER]
        if any(b <= a for a, b in zip(ordered, ordered[1:], strict=False)):
            raise ValueError("stage deadlines must increase in stage order")
        return self

    def deadline_of(self, stage: Stage) -> datetime:
        return next(s.deadline for s in self.schedule if s.stage == stage)


class DepartmentCycleInput(_Model):
    """One department's part of one stage (``DepartmentCycleWorkflow``)."""

    cycle_id: Id
    department_id: Id
    stage: Stage
    deadline: AwareDatetime
    reminder_days_before: list[float]
    escalate_to_hr_after_days: float
    deadline_policy: DeadlinePolicy
    extension_days: float
    recheck_hours: float
    parent_workflow_id: str
    history_event_limit: int = 10_000
    # continue-as-new state
    reminders_sent: list[float] = Field(default_factory=list)
    escalated_to_head: bool = False
    escalated_to_hr: bool = False
    extended: bool = False
    paused: bool = False
    item_notices_sent: list[Annotated[str, Field(max_length=300)]] = Field(
        default_factory=list, description="Per-item reminders and escalations already sent (their steps)."
    )


class DepartmentOutcome(_Model):
    department_id: Id
    stage: Stage
    outcome: str = Field(description="completed | forced | closed_at_deadline | cancelled")
    pending_left: int = 0
    reminders: int = 0
    escalations: int = 0


class DepartmentProgress(_Model):
    department_id: Id
    total: int = 0
    done: int = 0
    pending: int = 0
    outcome: str | None = None
    error: str | None = Field(
        default=None, description="Why the owning service refused the last check (the child waits and re-checks)."
    )


class StageOutcomes(_Model):
    """How each department finished one stage (kept after the stage, and after the cycle, closes)."""

    stage: Stage
    departments: list[DepartmentProgress]


class CycleStatus(_Model):
    cycle_id: Id
    stage: Stage | str
    paused: bool
    cancelled: bool
    next_deadline: AwareDatetime | None
    departments: list[DepartmentProgress]
    stages_done: list[Stage]
    blocked: Blocked | None = Field(
        default=None, description="Why the current stage cannot exit yet, and who can unblock it."
    )
    incident: Incident | None = Field(
        default=None, description="A handoff the services refused: the cycle waits for an operator's retry or skip."
    )
    finished_stages: list[StageOutcomes] = Field(default_factory=list)


class TaskCompleted(_Model):
    """Signal: somebody finished something; the workflow re-reads the truth from the service."""

    department_id: Id | None = None


class PauseState(_Model):
    paused: bool


class DeadlineChanged(_Model):
    deadline: AwareDatetime


class CancelCycle(_Model):
    reason: str = Field(min_length=1, max_length=500)


class ExtendDeadline(_Model):
    """Update: move the deadline of the current or a later stage (never earlier)."""

    stage: Stage
    new_deadline: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class ForceStage(_Model):
    """Update: HR completes the current stage now, whatever is still pending."""

    stage: Stage
    reason: str = Field(min_length=1, max_length=500)


# -- activities -------------------------------------------------------------------------------------
class PendingQuery(_Model):
    cycle_id: Id
    department_id: Id
    stage: Stage


class DueItem(_Model):
    """A pending item with its own deadline (an approval step), reminded and escalated on it."""

    item_id: Id
    kind: str = Field(max_length=64)
    owner_id: Id | None = Field(description="Who must act; none: any hr_admin.")
    deadline: AwareDatetime
    reminders: list[AwareDatetime] = Field(default_factory=list, max_length=10)
    escalate_to_id: Id | None = Field(default=None, description="Whom the missed deadline goes to first; none: HR.")
    escalate_to_hr_at: AwareDatetime | None = None


class PendingSummary(_Model):
    total: int
    done: int
    pending: int
    owner_ids: list[Id] = Field(default_factory=list, description="First few people who must act.")
    head_employee_id: Id | None = None
    due: list[DueItem] = Field(
        default_factory=list, max_length=500, description="Items with their own deadlines (approval steps)."
    )


class NotificationRequest(_Model):
    """A batched reminder or escalation for one department; idempotent on ``idempotency_key``."""

    idempotency_key: str = Field(max_length=300, description="(cycle, department, stage, step)")
    cycle_id: Id
    department_id: Id
    stage: Stage
    kind: str = Field(max_length=64, description="reminder | escalation_head | escalation_hr | stale_kpi_reminder ...")
    recipients: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=500, description="Employee ids, 'department_head' or 'hr'."
    )
    pending: int = Field(default=0, ge=0, le=10_000_000)
    deadline: AwareDatetime | None = None
    message: str = Field(max_length=2000)


class NotificationResult(_Model):
    notification_id: str
    created: bool = Field(description="False when the idempotency key was already recorded.")


class StageAction(_Model):
    """Stage entry/exit side effects run by the parent (freeze goals, push catalogs, publish...)."""

    cycle_id: Id
    stage: Stage
    action: str = Field(description="enter | exit | compensate")
    department_ids: list[Id] = Field(default_factory=list)
    day_seconds: float = Field(default=86_400, gt=0, description="Seconds per template day (see ReviewCycleInput).")


class StageActionResult(_Model):
    ok: bool = True
    ready: bool = Field(default=True, description="False: a precondition is not met yet (retry later).")
    detail: str = ""


SCHEMA_EXPORTS = {"review_cycle_input.v1": ReviewCycleInput, "cycle_status.v1": CycleStatus}
