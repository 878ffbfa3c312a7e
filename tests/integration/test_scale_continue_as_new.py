"""Continue-as-new of the review cycle keeps what HR asked for, on the time-skipping test server.

At 1,000 departments the cycle workflow's history passes its limit between two stages and it
continues as new (``history_event_limit``). A cancel or a pause that arrives while the last handoff
of the stage is in flight is recorded by a signal handler in the old run; the new run must honour
it. Here 40 departments against a limit of 100 events make the workflow continue as new after goal
setting, and the signal is sent from inside the handoff that runs just before it
(``hand_catalog_to_tracking``), so it is in the old run's history before the handoff completes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from contracts.cycle import STAGE_ORDER, Stage, review_cycle_workflow_id
from contracts.handoffs import HANDOFF_RESULTS, CycleRef, Handoff
from contracts.workflow_io import (
    CancelCycle,
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
    ReviewCycleInput,
    StageSchedule,
)
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.review_cycle import ReviewCycleWorkflow

DAY = timedelta(days=1)
DEPARTMENTS = [f"dept-{n:02d}" for n in range(40)]
LAST_HANDOFF_BEFORE_CONTINUE = "hand_catalog_to_tracking"

Hook = Callable[[Client, str], Awaitable[None]]


class InstantServices:
    """Every department is done at its first check; each handoff is recorded and may run a hook first."""

    def __init__(self, client: Client, hooks: dict[str, Hook]) -> None:
        self.client = client
        self.hooks = hooks
        self.handoffs: list[str] = []

    @activity.defn(name="check_pending")
    async def check_pending(self, _query: PendingQuery) -> PendingSummary:
        return PendingSummary(total=3, done=3, pending=0)

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        return NotificationResult(notification_id=request.idempotency_key, created=True)

    def handoff(self, name: str, result_type: type[Handoff]) -> Any:
        @activity.defn(name=name)
        async def run(ref: CycleRef) -> Handoff:
            self.handoffs.append(name)
            hook = self.hooks.pop(name, None)  # once: a retry of the handoff does not signal again
            if hook is not None:
                await hook(self.client, review_cycle_workflow_id(ref.cycle_id))
            return result_type()

        return run

    def activities(self) -> list[Any]:
        handoffs = [self.handoff(name, result_type) for name, result_type in HANDOFF_RESULTS.items()]
        return [self.check_pending, self.send_notification, *handoffs]


def cycle_input(start: Any) -> ReviewCycleInput:
    return ReviewCycleInput(
        cycle_id=f"can-{uuid.uuid4().hex[:8]}",
        department_ids=DEPARTMENTS,
        schedule=[StageSchedule(stage=s, deadline=start + (i + 1) * 10 * DAY) for i, s in enumerate(STAGE_ORDER)],
        reminder_days_before=[3],
        escalate_to_hr_after_days=1,
        recheck_hours=24,
        history_event_limit=100,
        max_concurrent_children=len(DEPARTMENTS),
    )


async def run_cycle(
    env: Any, hooks: dict[str, Hook], drive: Callable[[WorkflowHandle[Any, Any]], Awaitable[None]]
) -> tuple[Any, InstantServices, list[str]]:
    """Start the cycle, let ``drive`` act on it; return the final status, the services, and how the first run
    ended: its last activity and its last event."""
    start = (await env.get_current_time()).astimezone(UTC)
    services = InstantServices(env.client, hooks)
    inp = cycle_input(start)
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ReviewCycleWorkflow, DepartmentCycleWorkflow],
        activities=services.activities(),
    ):
        handle = await env.client.start_workflow(
            ReviewCycleWorkflow.run, inp, id=review_cycle_workflow_id(inp.cycle_id), task_queue=task_queue
        )
        await drive(handle)
        final = await handle.result()
    first_run = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    events = [e async for e in first_run.fetch_history_events()]
    handoffs = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    return final, services, [handoffs[-1], events[-1].WhichOneof("attributes")]


async def nothing(_handle: WorkflowHandle[Any, Any]) -> None:
    return None


async def cancel(client: Client, workflow_id: str) -> None:
    await client.get_workflow_handle(workflow_id).signal(ReviewCycleWorkflow.cancel, CancelCycle(reason="merger"))


async def pause(client: Client, workflow_id: str) -> None:
    await client.get_workflow_handle(workflow_id).signal(ReviewCycleWorkflow.pause)


async def test_the_cycle_continues_as_new_between_stages_and_still_closes(time_skipping_env: Any) -> None:
    final, services, closes = await run_cycle(time_skipping_env, {}, nothing)
    assert closes == [LAST_HANDOFF_BEFORE_CONTINUE, "workflow_execution_continued_as_new_event_attributes"]
    assert final.stage == Stage.CLOSED and final.stages_done == list(STAGE_ORDER)
    assert [s.stage for s in final.finished_stages] == list(STAGE_ORDER)  # carried across every new run
    assert services.handoffs.count("freeze_goals") == 1 and services.handoffs.count("publish_results") == 1


async def test_a_cancel_sent_during_the_last_handoff_survives_continue_as_new(time_skipping_env: Any) -> None:
    final, services, closes = await run_cycle(time_skipping_env, {LAST_HANDOFF_BEFORE_CONTINUE: cancel}, nothing)
    assert closes == [LAST_HANDOFF_BEFORE_CONTINUE, "workflow_execution_continued_as_new_event_attributes"]
    assert final.stage == "cancelled" and final.cancelled
    assert services.handoffs[-1] == "withdraw_results" and services.handoffs.count("withdraw_results") == 1
    assert "hand_progress_to_evaluation" not in services.handoffs  # tracking never ran to its end


async def test_a_pause_sent_during_the_last_handoff_survives_continue_as_new(time_skipping_env: Any) -> None:
    async def resume_after_a_look(handle: WorkflowHandle[Any, Any]) -> None:
        await time_skipping_env.sleep(30 * DAY)  # past the tracking deadline: a running tracking stage would be over
        status = await handle.query(ReviewCycleWorkflow.status)
        assert status.paused and status.stage == Stage.TRACKING
        assert status.stages_done == [Stage.GOAL_SETTING]
        await handle.signal(ReviewCycleWorkflow.resume)

    final, services, closes = await run_cycle(
        time_skipping_env, {LAST_HANDOFF_BEFORE_CONTINUE: pause}, resume_after_a_look
    )
    assert closes == [LAST_HANDOFF_BEFORE_CONTINUE, "workflow_execution_continued_as_new_event_attributes"]
    assert final.stage == Stage.CLOSED and not final.paused
    assert services.handoffs.count("hand_progress_to_evaluation") == 1
