"""A whole 120-day cycle on the time-skipping test server.

The activities here are test doubles with the real activity names: they answer
"who is pending" from the simulated clock and record every notification with
its simulated time, so the test can check that reminders and escalations fire
at the right moments and that a deadline extension moves them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from contracts.cycle import STAGE_ORDER, Stage, department_workflow_id
from contracts.handoffs import HANDOFF_RESULTS, Blocked, CycleRef, FinalResults, Handoff, IncidentResolution
from contracts.workflow_io import (
    CancelCycle,
    ExtendDeadline,
    ForceStage,
    NotificationRequest,
    NotificationResult,
    PendingQuery,
    PendingSummary,
    ReviewCycleInput,
    StageAction,
    StageActionResult,
    StageSchedule,
)
from services.common.nudge import WorkflowNudger
from tests.support import handoff_fakes
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.review_cycle import ReviewCycleWorkflow

DAY = timedelta(days=1)
HISTORY_DIR = Path(__file__).resolve().parent.parent / "histories"


async def record_histories(client: Any, parent_id: str, cycle_id: str) -> None:
    """Save the parent's and three children's histories for the replayer test (run by hand).

    ``TANDEM_HISTORY_VERSION=v2`` writes ``v2_*.json`` next to the older ones, so histories recorded
    before a ``workflow.patched`` change keep being replayed too.
    """
    HISTORY_DIR.mkdir(exist_ok=True)
    version = os.environ.get("TANDEM_HISTORY_VERSION", "v1")
    ids = {
        "review_cycle": parent_id,
        "department_goal_setting_production": department_workflow_id(cycle_id, Stage.GOAL_SETTING, "production"),
        "department_tracking_production": department_workflow_id(cycle_id, Stage.TRACKING, "production"),
        "department_evaluation_production": department_workflow_id(cycle_id, Stage.EVALUATION, "production"),
    }
    for name, workflow_id in ids.items():
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        stem = name if version == "v1" else f"{version}_{name}"
        (HISTORY_DIR / f"{stem}.json").write_text(history.to_json())


class ScriptedServices:
    """Sales finishes every stage within 5 days; production never finishes anything."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.stage_starts: dict[Stage, datetime] = {}
        self.notifications: list[tuple[str, str, str, datetime]] = []
        self.keys: set[str] = set()
        self.actions: list[tuple[str, str, datetime]] = []
        self.handoffs: list[str] = []
        self.answers: dict[str, Handoff] = {}
        self.refusals: dict[str, int] = {}

    @activity.defn(name="check_pending")
    async def check_pending(self, query: PendingQuery) -> PendingSummary:
        if self.refusals.get("check_pending", 0) > 0:
            self.refusals["check_pending"] -= 1
            raise ApplicationError("no org snapshot for this cycle", type="BadRequest", non_retryable=True)
        now = activity.info().scheduled_time
        if query.stage == Stage.TRACKING:
            # production's KPIs go stale between day 30 and day 40
            stale = query.department_id == "production" and self.start + 30 * DAY <= now < self.start + 40 * DAY
            return PendingSummary(total=3, done=3 - int(stale), pending=int(stale), owner_ids=["p-1"])
        began = self.stage_starts.setdefault(query.stage, now)
        finished = query.department_id == "sales" and now >= began + 5 * DAY
        pending = 0 if finished else 4
        return PendingSummary(total=4, done=4 - pending, pending=pending, owner_ids=["e-1", "e-2"])

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        created = request.idempotency_key not in self.keys
        self.keys.add(request.idempotency_key)
        if created:
            self.notifications.append(
                (request.department_id, request.stage.value, request.kind, activity.info().scheduled_time)
            )
        return NotificationResult(notification_id=request.idempotency_key, created=created)

    @activity.defn(name="stage_action")
    async def stage_action(self, action: StageAction) -> StageActionResult:
        self.actions.append((action.stage.value, action.action, activity.info().scheduled_time))
        return StageActionResult()

    def handoff(self, name: str, _ref: CycleRef) -> Handoff | None:
        self.handoffs.append(name)
        if self.refusals.get(name, 0) > 0:
            self.refusals[name] -= 1
            raise ApplicationError(f"{name} refused: no such cycle", type="BadRequest", non_retryable=True)
        return self.answers.get(name)

    def activities(self) -> list[Any]:
        return [
            self.check_pending,
            self.send_notification,
            self.stage_action,
            *handoff_fakes(lambda _name, _ref: None, self.handoff),
        ]

    def kinds(self, department: str, stage: Stage) -> list[tuple[str, float]]:
        """(kind, day since start) for one department and stage."""
        return [
            (kind, round((at - self.start) / DAY, 2))
            for dep, st, kind, at in self.notifications
            if dep == department and st == stage.value
        ]


async def test_120_day_cycle_reminds_escalates_and_honours_an_extension(time_skipping_env: Any) -> None:
    client = time_skipping_env.client
    start = await time_skipping_env.get_current_time()
    start = start.astimezone(UTC)
    days = {
        Stage.GOAL_SETTING: 20,
        Stage.TRACKING: 80,
        Stage.EVALUATION: 100,
        Stage.FEEDBACK: 110,
        Stage.RESULT_APPLICATION: 120,
    }
    cycle_input = ReviewCycleInput(
        cycle_id=f"c-{uuid.uuid4().hex[:8]}",
        department_ids=["sales", "production"],
        schedule=[StageSchedule(stage=s, deadline=start + d * DAY) for s, d in days.items()],
        reminder_days_before=[7, 1],
        escalate_to_hr_after_days=1,
        recheck_hours=24,
    )
    services = ScriptedServices(start)
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ReviewCycleWorkflow, DepartmentCycleWorkflow],
        activities=services.activities(),
    ):
        handle = await client.start_workflow(
            ReviewCycleWorkflow.run, cycle_input, id=f"review-cycle-{cycle_input.cycle_id}", task_queue=task_queue
        )
        await time_skipping_env.sleep(85 * DAY)
        status = await handle.query(ReviewCycleWorkflow.status)
        assert status.stage == Stage.EVALUATION
        # An invalid extension is rejected by the validator, before anything is written.
        try:
            await handle.execute_update(
                ReviewCycleWorkflow.extend_deadline,
                ExtendDeadline(stage=Stage.EVALUATION, new_deadline=start + 115 * DAY, reason="too far"),
            )
            raise AssertionError("an extension past the next stage's deadline must be rejected")
        except WorkflowUpdateFailedError as exc:
            assert "before the feedback deadline" in str(exc.cause)
        extended = await handle.execute_update(
            ReviewCycleWorkflow.extend_deadline,
            ExtendDeadline(stage=Stage.EVALUATION, new_deadline=start + 105 * DAY, reason="works council"),
        )
        assert extended.next_deadline == start + 105 * DAY
        final = await handle.result()
        if os.environ.get("TANDEM_RECORD_HISTORIES") == "1":
            await record_histories(client, handle.id, cycle_input.cycle_id)

    assert final.stage == Stage.CLOSED
    assert final.stages_done == list(STAGE_ORDER)

    # Goal setting: production is reminded 7 and 1 days before day 20, then escalated to its
    # head at the deadline and to HR one day later (policy: close).
    assert services.kinds("production", Stage.GOAL_SETTING) == [
        ("reminder", 13.0),
        ("reminder", 19.0),
        ("escalation_head", 20.0),
        ("escalation_hr", 21.0),
    ]
    # Sales finished on day 5: never reminded.
    assert services.kinds("sales", Stage.GOAL_SETTING) == []
    # Tracking: production's KPIs went stale on day 30 -> reminder; still stale a day later -> escalation.
    tracking = services.kinds("production", Stage.TRACKING)
    assert [k for k, _ in tracking] == ["stale_kpi_reminder", "stale_kpi_escalation"]
    assert 30 <= tracking[0][1] <= 31 and 31 <= tracking[1][1] <= 32
    # Evaluation: the deadline moved from day 100 to day 105; the reminders before the update
    # (day 93) were for the old deadline, everything after follows the new one.
    evaluation = services.kinds("production", Stage.EVALUATION)
    assert ("escalation_head", 105.0) in evaluation
    assert ("escalation_hr", 106.0) in evaluation
    assert all(day != 100.0 for kind, day in evaluation if kind.startswith("escalation"))
    assert ("reminder", 98.0) in evaluation and ("reminder", 104.0) in evaluation
    # Each handoff ran exactly once, in order (and the legacy string-dispatched action never).
    assert services.handoffs == [name for name in HANDOFF_RESULTS if name != "withdraw_results"]
    assert services.actions == []
    # Each finished stage keeps how every department finished it, after the cycle closed.
    assert [o.stage for o in final.finished_stages] == list(STAGE_ORDER)
    goal_setting = {d.department_id: d.outcome for d in final.finished_stages[0].departments}
    assert goal_setting == {"sales": "completed", "production": "closed_at_deadline"}


def short_cycle(start: datetime, departments: list[str]) -> ReviewCycleInput:
    return ReviewCycleInput(
        cycle_id=f"c-{uuid.uuid4().hex[:8]}",
        department_ids=departments,
        schedule=[StageSchedule(stage=s, deadline=start + (i + 1) * 10 * DAY) for i, s in enumerate(STAGE_ORDER)],
        reminder_days_before=[3],
        escalate_to_hr_after_days=1,
        recheck_hours=24,
    )


@asynccontextmanager
async def short_cycle_running(
    env: Any, services: ScriptedServices, cycle_input: ReviewCycleInput
) -> AsyncIterator[Any]:
    """A worker with the scripted services, and the started cycle's handle."""
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ReviewCycleWorkflow, DepartmentCycleWorkflow],
        activities=services.activities(),
    ):
        yield await env.client.start_workflow(
            ReviewCycleWorkflow.run, cycle_input, id=f"review-cycle-{cycle_input.cycle_id}", task_queue=task_queue
        )


async def test_pause_holds_reminders_and_cancel_runs_compensation(time_skipping_env: Any) -> None:
    start = (await time_skipping_env.get_current_time()).astimezone(UTC)
    services = ScriptedServices(start)
    async with short_cycle_running(time_skipping_env, services, short_cycle(start, ["production"])) as handle:
        await time_skipping_env.sleep(2 * DAY)
        await handle.signal(ReviewCycleWorkflow.pause)
        await time_skipping_env.sleep(9 * DAY)  # the day-7 reminder and the day-10 deadline pass while paused
        paused = await handle.query(ReviewCycleWorkflow.status)
        assert paused.paused and paused.stage == Stage.GOAL_SETTING
        assert services.kinds("production", Stage.GOAL_SETTING) == []
        await handle.signal(ReviewCycleWorkflow.resume)
        await time_skipping_env.sleep(DAY)
        after_resume = services.kinds("production", Stage.GOAL_SETTING)
        # The deadline passed during the pause: no stale reminders, straight to the escalations.
        assert [k for k, _ in after_resume] == ["escalation_head", "escalation_hr"]
        assert all(day >= 11 for _, day in after_resume)
        await handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason="reorganisation"))
        final = await handle.result()
    assert final.stage == "cancelled" and final.cancelled
    # Goal setting closed at its deadline (policy: close) and tracking had begun when HR cancelled:
    # the compensation ran once, as the last action, and no later stage was entered.
    assert services.handoffs[-1] == "withdraw_results"
    assert services.handoffs.count("withdraw_results") == 1
    assert "open_evaluation" not in services.handoffs
    assert final.stages_done == [Stage.GOAL_SETTING]


async def test_hr_can_force_only_the_current_stage(time_skipping_env: Any) -> None:
    start = (await time_skipping_env.get_current_time()).astimezone(UTC)
    services = ScriptedServices(start)
    async with short_cycle_running(time_skipping_env, services, short_cycle(start, ["production"])) as handle:
        await time_skipping_env.sleep(DAY)
        try:
            await handle.execute_update(
                ReviewCycleWorkflow.force_stage, ForceStage(stage=Stage.EVALUATION, reason="too early")
            )
            raise AssertionError("forcing a later stage must be rejected")
        except WorkflowUpdateFailedError as exc:
            assert "only the current stage" in str(exc.cause)
        status = await handle.execute_update(
            ReviewCycleWorkflow.force_stage, ForceStage(stage=Stage.GOAL_SETTING, reason="board decision")
        )
        assert Stage.GOAL_SETTING in status.stages_done or status.stage == Stage.GOAL_SETTING
        await time_skipping_env.sleep(DAY)
        moved = await handle.query(ReviewCycleWorkflow.status)
        assert moved.stage == Stage.TRACKING
        await handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason="test over"))
        await handle.result()
    # Forced on day 1: production was never reminded or escalated in goal setting.
    assert services.kinds("production", Stage.GOAL_SETTING) == []


async def test_a_blocked_exit_says_why_and_who_can_unblock_it(time_skipping_env: Any) -> None:
    start = (await time_skipping_env.get_current_time()).astimezone(UTC)
    services = ScriptedServices(start)
    blocked = Blocked(
        reason="calibration is still open", service="evaluation", unblock_by="hr_admin", action="close calibration"
    )
    services.answers["close_evaluation"] = FinalResults(ready=False, blocked=blocked, detail="calibration open")
    cycle = short_cycle(start, ["sales"])
    async with short_cycle_running(time_skipping_env, services, cycle) as handle:
        await time_skipping_env.sleep(32 * DAY)  # past the evaluation deadline (day 30)
        waiting = await handle.query(ReviewCycleWorkflow.status)
        assert waiting.stage == Stage.EVALUATION
        assert waiting.blocked == blocked
        del services.answers["close_evaluation"]  # HR closes calibration; the next re-check moves on
        await time_skipping_env.sleep(2 * DAY)
        moved = await handle.query(ReviewCycleWorkflow.status)
        assert moved.stage == Stage.FEEDBACK and moved.blocked is None
        await handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason="test over"))
        await handle.result()
    assert services.handoffs.count("close_evaluation") >= 2


async def test_a_service_nudge_retries_a_blocked_handoff_at_once(time_skipping_env: Any) -> None:
    """HR resolves the last open appeal (or allocates a pool): the service wakes the cycle's workflow, which
    retries the waiting handoff now rather than at its re-check a day later."""
    start = (await time_skipping_env.get_current_time()).astimezone(UTC)
    services = ScriptedServices(start)
    blocked = Blocked(reason="1 appeal is open", service="feedback", unblock_by="hr_admin", action="resolve appeals")
    services.answers["close_evaluation"] = FinalResults(ready=False, blocked=blocked, detail="appeal open")
    cycle = short_cycle(start, ["sales"])
    async with short_cycle_running(time_skipping_env, services, cycle) as handle:
        await time_skipping_env.sleep(32 * DAY)  # past the evaluation deadline: the exit waits
        assert (await handle.query(ReviewCycleWorkflow.status)).blocked == blocked
        tries = services.handoffs.count("close_evaluation")
        del services.answers["close_evaluation"]  # resolved; the service nudges the cycle
        nudger = WorkflowNudger(address=time_skipping_env.client.service_client.config.target_host, min_interval=0)
        nudger.cycle_changed(cycle_id=cycle.cycle_id)
        for _ in range(100):  # wall-clock: no time is skipped, the re-check is a day away
            if services.handoffs.count("close_evaluation") > tries:
                break
            await asyncio.sleep(0.1)
        await nudger.close()
        assert services.handoffs.count("close_evaluation") == tries + 1
        for _ in range(100):
            if (await handle.query(ReviewCycleWorkflow.status)).stage == Stage.FEEDBACK:
                break
            await asyncio.sleep(0.1)
        assert (await handle.query(ReviewCycleWorkflow.status)).blocked is None
        await handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason="test over"))
        await handle.result()


async def test_a_refused_handoff_opens_an_incident_instead_of_failing_the_cycle(time_skipping_env: Any) -> None:
    start = (await time_skipping_env.get_current_time()).astimezone(UTC)
    services = ScriptedServices(start)
    services.refusals["freeze_goals"] = 1
    async with short_cycle_running(time_skipping_env, services, short_cycle(start, ["sales"])) as handle:
        await time_skipping_env.sleep(11 * DAY)
        stuck = await handle.query(ReviewCycleWorkflow.status)
        assert stuck.incident is not None
        assert stuck.incident.handoff == "freeze_goals" and "no such cycle" in stuck.incident.error
        assert stuck.stage == Stage.GOAL_SETTING
        resolved = await handle.execute_update(
            ReviewCycleWorkflow.resolve_incident, IncidentResolution(action="retry", reason="cycle restored")
        )
        assert resolved.stage == Stage.GOAL_SETTING
        await time_skipping_env.sleep(DAY)
        moved = await handle.query(ReviewCycleWorkflow.status)
        assert moved.incident is None and moved.stage == Stage.TRACKING
        try:
            await handle.execute_update(
                ReviewCycleWorkflow.resolve_incident, IncidentResolution(action="skip", reason="nothing open")
            )
            raise AssertionError("resolving without an open incident must be refused")
        except WorkflowUpdateFailedError as exc:
            assert "no open incident" in str(exc.cause)
        await handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason="test over"))
        await handle.result()
    assert services.handoffs.count("freeze_goals") == 2


async def test_a_cancel_pending_at_continue_as_new_is_carried_over(time_skipping_env: Any) -> None:
    start = (await time_skipping_env.get_current_time()).astimezone(UTC)
    services = ScriptedServices(start)
    carried = short_cycle(start, ["sales"]).model_copy(
        update={"start_stage": Stage.TRACKING, "pending_cancel": CancelCycle(reason="cancelled before the new run")}
    )
    async with short_cycle_running(time_skipping_env, services, carried) as handle:
        final = await handle.result()
    assert final.cancelled and final.stage == "cancelled"
    assert services.handoffs == ["withdraw_results"]


async def test_a_refused_check_waits_and_shows_the_error_instead_of_failing_the_cycle(time_skipping_env: Any) -> None:
    start = (await time_skipping_env.get_current_time()).astimezone(UTC)
    services = ScriptedServices(start)
    services.refusals["check_pending"] = 1
    cycle = short_cycle(start, ["production"])
    async with short_cycle_running(time_skipping_env, services, cycle) as handle:
        await time_skipping_env.sleep(DAY // 2)
        child = time_skipping_env.client.get_workflow_handle(
            department_workflow_id(cycle.cycle_id, Stage.GOAL_SETTING, "production")
        )
        waiting = await child.query(DepartmentCycleWorkflow.progress)
        assert waiting.error is not None and "no org snapshot" in waiting.error
        await time_skipping_env.sleep(2 * DAY)  # the next re-check succeeds: the stage runs on
        running = await child.query(DepartmentCycleWorkflow.progress)
        assert running.total == 4 and running.error is None
        await handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason="test over"))
        final = await handle.result()
    assert final.cancelled
