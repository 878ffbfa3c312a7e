"""Activities of the review cycle: every side effect, over HTTP to the stage services.

Each side effect carries an idempotency key built from business identity
(cycle, department, stage, step), so a retried or replayed activity never
doubles a notification, an allocation or a publication. 4xx answers are
classified non-retryable (``BadRequest``) except 409 "not ready yet", which the
workflow handles by waiting; 5xx and connection errors are retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import evaluation_config
from contracts.handoffs import CycleRef
from contracts.workflow_io import (
    DueItem,
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
    StageAction,
    StageActionResult,
)
from services.common.client import ServiceName
from workflows.handoffs import HandoffActivities

__all__ = ["LEGACY_STEPS", "STAGE_OWNER", "CycleActivities", "evaluation_config"]

STAGE_OWNER: dict[Stage, ServiceName] = {
    Stage.GOAL_SETTING: "goals",
    Stage.TRACKING: "tracking",
    Stage.EVALUATION: "evaluation",
    Stage.FEEDBACK: "feedback",
    Stage.RESULT_APPLICATION: "results",
}
"""Which service answers "who is still pending" in each stage."""


LEGACY_STEPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("goal_setting", "enter"): ("open_goal_setting",),
    ("goal_setting", "exit"): ("freeze_goals", "hand_catalog_to_tracking"),
    ("tracking", "exit"): ("hand_progress_to_evaluation",),
    ("evaluation", "enter"): ("open_evaluation",),
    ("evaluation", "exit"): ("close_evaluation", "hand_results_to_feedback", "hand_results_to_results"),
    ("feedback", "enter"): ("release_results",),
    ("result_application", "enter"): ("open_result_application",),
    ("result_application", "exit"): ("publish_results",),
    ("closed", "enter"): ("record_closed",),
}
"""What the legacy ``stage_action`` ran for each (stage, action), as typed handoffs."""


class CycleActivities:
    """The department workflows' activities, calling the services through the handoffs' client."""

    def __init__(self, *, handoffs: HandoffActivities) -> None:
        self.handoffs = handoffs

    # -- activities -----------------------------------------------------------------------------
    @activity.defn(name="check_pending")
    async def check_pending(self, query: PendingQuery) -> PendingSummary:
        service: ServiceName = STAGE_OWNER[query.stage]
        data = await self.handoffs.call(
            "GET",
            service,
            f"/v1/cycles/{query.cycle_id}/pending",
            params={"department_id": query.department_id, "stage": query.stage.value},
        )
        report = PendingReport.model_validate(data)
        owners = list(dict.fromkeys(i.owner_id for i in report.pending if i.owner_id))
        return PendingSummary(
            total=report.total,
            done=report.done,
            pending=max(report.total - report.done, len(report.pending)),
            owner_ids=owners[:50],
            due=[
                DueItem(
                    item_id=i.item_id,
                    kind=i.kind,
                    owner_id=i.owner_id,
                    deadline=i.deadline,
                    reminders=i.reminders,
                    escalate_to_id=i.escalate_to_id,
                    escalate_to_hr_at=i.escalate_to_hr_at,
                )
                for i in report.pending
                if i.deadline is not None
            ],
        )

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        data = await self.handoffs.call(
            "POST",
            "cycles",
            "/v1/notifications",
            json=request.model_dump(mode="json"),
            idempotency_key=request.idempotency_key,
        )
        return NotificationResult.model_validate(data)

    @activity.defn(name="stage_action")
    async def stage_action(self, action: StageAction) -> StageActionResult:
        """The string-dispatched handoff of workflows started before the typed handoffs (patch
        ``typed-handoffs``): still registered so those cycles finish; it runs the same handoffs."""
        ref = CycleRef(
            cycle_id=action.cycle_id,
            department_ids=action.department_ids,
            day_seconds=action.day_seconds,
            forced=action.action == "force_exit",
        )
        steps = LEGACY_STEPS.get((action.stage.value, "exit" if ref.forced else action.action))
        if action.action == "compensate":
            steps = ("withdraw_results",)
        if steps is None:
            return StageActionResult(detail=f"nothing to do on {action.action} {action.stage.value}")
        details = []
        for name in steps:
            result = await getattr(self.handoffs, name)(ref)
            if not result.ready:
                return StageActionResult(ready=False, detail=result.detail)
            details.append(result.detail)
        return StageActionResult(detail="; ".join(details))

    def all(self) -> list[Callable[..., Any]]:
        return [self.check_pending, self.send_notification, self.stage_action, *self.handoffs.all()]
