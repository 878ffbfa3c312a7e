"""A service's nudge makes the department workflow re-read pending items at once, on the real server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.worker import Worker

from contracts.cycle import DeadlinePolicy, Stage, department_workflow_id
from contracts.workflow_io import (
    DepartmentCycleInput,
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
)
from services.common.nudge import WorkflowNudger
from workflows.department_cycle import DepartmentCycleWorkflow


async def test_nudge_triggers_an_immediate_recheck(temporal_server: Any, temporal_client: Any) -> None:
    checks: list[datetime] = []
    done = asyncio.Event()

    @activity.defn(name="check_pending")
    async def check_pending(query: PendingQuery) -> PendingSummary:
        checks.append(datetime.now(UTC))
        pending = 0 if done.is_set() else 3
        return PendingSummary(total=3, done=3 - pending, pending=pending)

    @activity.defn(name="send_notification")
    async def send_notification(request: NotificationRequest) -> NotificationResult:
        return NotificationResult(notification_id=request.idempotency_key, created=True)

    cycle_id = f"c-{uuid.uuid4().hex[:8]}"
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[DepartmentCycleWorkflow],
        activities=[check_pending, send_notification],
    ):
        handle = await temporal_client.start_workflow(
            DepartmentCycleWorkflow.run,
            DepartmentCycleInput(
                cycle_id=cycle_id,
                department_id="sales",
                stage=Stage.GOAL_SETTING,
                deadline=datetime.now(UTC) + timedelta(days=30),
                reminder_days_before=[7, 1],
                escalate_to_hr_after_days=1,
                deadline_policy=DeadlinePolicy.CLOSE,
                extension_days=3,
                recheck_hours=24,
                parent_workflow_id=f"missing-parent-{cycle_id}",
            ),
            id=department_workflow_id(cycle_id, Stage.GOAL_SETTING, "sales"),
            task_queue=task_queue,
        )
        for _ in range(100):
            if checks:
                break
            await asyncio.sleep(0.1)
        assert len(checks) == 1  # the first check; the next periodic one is a day away

        nudger = WorkflowNudger(address=temporal_server.address, min_interval=0)
        done.set()  # the people finished: the service's truth changed
        nudger.task_completed(cycle_id=cycle_id, stage=Stage.GOAL_SETTING, department_id="sales")
        outcome = await asyncio.wait_for(handle.result(), timeout=20)
        await nudger.close()
    assert outcome.outcome == "completed"
    assert len(checks) == 2


async def test_nudges_are_coalesced_and_missing_workflows_are_harmless(temporal_server: Any) -> None:
    nudger = WorkflowNudger(address=temporal_server.address, min_interval=60)
    for _ in range(50):
        nudger.task_completed(cycle_id="no-such-cycle", stage=Stage.EVALUATION, department_id="hr")
    assert len(nudger._pending) <= 2  # one signal now and one trailing signal for 50 completions
    await asyncio.sleep(1)
    await nudger.close()
