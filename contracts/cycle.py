"""Review-cycle workflow contracts shared by the workflows and the stage services.

``PendingReport`` is what every stage service answers at
``GET /v1/cycles/{cycle_id}/pending?department_id=...&stage=...``: who in that
department still owes something in that stage. Workflows only read counts and
ids from it, in batches; per-employee state stays in the services. An item with its own
``deadline`` (an approval step's) is reminded and escalated on that deadline, to its owner and
then up the owner's line (``contracts.timing.decide_items``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = ["SCHEMA_EXPORTS", "PendingItem", "PendingReport", "Stage"]


class Stage(StrEnum):
    GOAL_SETTING = "goal_setting"
    TRACKING = "tracking"
    EVALUATION = "evaluation"
    FEEDBACK = "feedback"
    RESULT_APPLICATION = "result_application"
    CLOSED = "closed"


class PendingItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Id = Field(description="What is pending: a goal id, review id, KPI id...")
    kind: str = Field(max_length=64, description="e.g. 'goal_approval', 'self_review', 'stale_kpi'.")
    owner_id: Id | None = Field(default=None, description="The employee who must act, if any.")
    deadline: AwareDatetime | None = Field(
        default=None, description="The item's own deadline (an approval step's); none: the stage's only."
    )
    reminders: list[AwareDatetime] = Field(
        default_factory=list, max_length=10, description="When the owner is reminded before ``deadline``."
    )
    escalate_to_id: Id | None = Field(
        default=None, description="Whom a missed ``deadline`` goes to first (the owner's line); none: HR."
    )
    escalate_to_hr_at: AwareDatetime | None = Field(default=None, description="When a missed item reaches HR.")


class PendingReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    stage: Stage
    department_id: Id
    total: int = Field(ge=0, description="Items in scope for this department and stage.")
    done: int = Field(ge=0)
    pending: list[PendingItem] = Field(description="At most 500 items; 'total - done' is the full count.")


SCHEMA_EXPORTS = {"pending_report.v1": PendingReport}


STAGE_ORDER: tuple[Stage, ...] = (
    Stage.GOAL_SETTING,
    Stage.TRACKING,
    Stage.EVALUATION,
    Stage.FEEDBACK,
    Stage.RESULT_APPLICATION,
)
"""The five working stages, in order; ``closed`` follows the last."""


class DeadlinePolicy(StrEnum):
    EXTEND = "extend"
    """At the deadline, after escalating, extend once by ``extension_days``, then close."""
    CLOSE = "close"
    """At the deadline, after escalating, close the stage; missing items are handled by the stage's rule."""


def review_cycle_workflow_id(cycle_id: str) -> str:
    return f"review-cycle-{cycle_id}"


def department_workflow_id(cycle_id: str, stage: Stage | str, department_id: str) -> str:
    return f"review-cycle-{cycle_id}-{Stage(stage).value}-{department_id}"
