"""Benchmarks; each prints its ratio against a raw baseline (``python -m bench.cycle --help``).

The bare baseline workflow of ``bench.cycle`` lives here, in a module as small
as ``workflows/department_cycle.py``: the workflow sandbox re-imports a
workflow's module on every run, and doing that with the whole benchmark module
measured ~10 ms more per run, which would have flattered our workflows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.handoffs import HANDOFF_RESULTS, CycleRef
    from contracts.workflow_io import (
        NotificationRequest,
        PendingQuery,
        PendingSummary,
        StageAction,
        StageActionResult,
    )
    from workflows.department_cycle import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.review_cycle import HANDOFF_HEARTBEAT, STAGE_ACTION_TIMEOUT

__all__ = ["BaselineScript", "BaselineScriptWorkflow", "BaselineStep"]


@dataclass
class BaselineStep:
    """One activity call, with the exact input the cycle used, or one timer."""

    activity: str = ""
    sleep_seconds: float = 0.0
    query: PendingQuery | None = None
    notification: NotificationRequest | None = None
    action: StageAction | None = None
    ref: CycleRef | None = None
    """The input of a typed handoff (``activity`` names it)."""


@dataclass
class BaselineScript:
    stage: str
    department_id: str
    steps: list[BaselineStep] = field(default_factory=list)


@workflow.defn
class BaselineScriptWorkflow:
    """No parent, no children, no signals, no search attributes, no queries: the same calls and timers."""

    @workflow.run
    async def run(self, script: BaselineScript) -> int:
        for step in script.steps:
            if step.query is not None:
                await workflow.execute_activity(
                    "check_pending",
                    step.query,
                    result_type=PendingSummary,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
            elif step.notification is not None:
                await workflow.execute_activity(
                    "send_notification",
                    step.notification,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
            elif step.action is not None:
                await workflow.execute_activity(
                    "stage_action",
                    step.action,
                    result_type=StageActionResult,
                    start_to_close_timeout=STAGE_ACTION_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
            elif step.ref is not None:
                await workflow.execute_activity(
                    step.activity,
                    step.ref,
                    result_type=HANDOFF_RESULTS[step.activity],
                    start_to_close_timeout=STAGE_ACTION_TIMEOUT,
                    heartbeat_timeout=HANDOFF_HEARTBEAT,
                    retry_policy=ACTIVITY_RETRY,
                )
            else:
                await workflow.sleep(step.sleep_seconds)
        return len(script.steps)
