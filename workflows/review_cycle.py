"""``ReviewCycleWorkflow``: one durable workflow per review cycle.

``goal_setting -> tracking -> evaluation -> feedback -> result_application -> closed``

Each stage: an ``enter`` activity (e.g. push the KPI catalog to tracking), one
``DepartmentCycleWorkflow`` child per department (reminders, escalations,
deadline policy), then an ``exit`` activity (e.g. freeze goals, wait for
calibration to close, publish results). History is O(stages x departments):
employees are handled in batches by the services behind the activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from contracts import handoffs
    from contracts.cycle import STAGE_ORDER, Stage, department_workflow_id
    from contracts.workflow_io import (
        CancelCycle,
        CycleStatus,
        DeadlineChanged,
        DepartmentCycleInput,
        DepartmentOutcome,
        DepartmentProgress,
        ExtendDeadline,
        ForceStage,
        PauseState,
        ReviewCycleInput,
        StageAction,
        StageActionResult,
        StageOutcomes,
        TaskCompleted,
    )
    from workflows.department_cycle import ACTIVITY_RETRY, DepartmentCycleWorkflow

__all__ = ["CYCLE_ID", "DEPARTMENT_ID", "STAGE", "TYPED_HANDOFFS_PATCH", "ReviewCycleWorkflow"]

CYCLE_ID = SearchAttributeKey.for_keyword("CycleId")
STAGE = SearchAttributeKey.for_keyword("Stage")
DEPARTMENT_ID = SearchAttributeKey.for_keyword("DepartmentId")

STAGE_ACTION_TIMEOUT = timedelta(minutes=5)
HANDOFF_HEARTBEAT = timedelta(seconds=60)
"""Above the service client's 30 s HTTP timeout (a handoff heartbeats before each call); a lost attempt
is retried within a minute."""
RECORD_CLOSED_PATCH = "record-cycle-closed"
TYPED_HANDOFFS_PATCH = "typed-handoffs"
"""One activity per handoff (``contracts/handoffs.py``) instead of the string-dispatched ``stage_action``;
refused handoffs open an incident instead of failing the cycle."""


@workflow.defn
class ReviewCycleWorkflow:
    def __init__(self) -> None:
        self._input: ReviewCycleInput | None = None
        self._stage: Stage | str = Stage.GOAL_SETTING
        self._paused = False
        self._cancel: CancelCycle | None = None
        self._forced: set[Stage] = set()
        self._deadlines: dict[Stage, datetime] = {}
        self._progress: dict[str, DepartmentProgress] = {}
        self._stages_done: list[Stage] = []
        self._children: dict[str, workflow.ChildWorkflowHandle[DepartmentCycleWorkflow, DepartmentOutcome]] = {}
        self._wake = False
        self._blocked: handoffs.Blocked | None = None
        self._incident: handoffs.Incident | None = None
        self._resolution: handoffs.IncidentResolution | None = None
        self._finished: list[StageOutcomes] = []

    # -- signals -------------------------------------------------------------------------------
    @workflow.signal
    async def pause(self) -> None:
        self._paused = True
        await self._signal_children(DepartmentCycleWorkflow.set_paused, PauseState(paused=True))

    @workflow.signal
    async def resume(self) -> None:
        self._paused = False
        self._wake = True
        await self._signal_children(DepartmentCycleWorkflow.set_paused, PauseState(paused=False))

    @workflow.signal
    def cancel(self, request: CancelCycle) -> None:
        self._cancel = request

    @workflow.signal
    async def task_completed(self, signal: TaskCompleted) -> None:
        """A nudge: forward it to the department's child (which re-reads the truth)."""
        self._wake = True
        # A copy: children come and go while this handler awaits (a stage ending), and one that just
        # finished cannot be signalled; neither may fail the cycle's workflow task.
        for department_id, handle in list(self._children.items()):
            if signal.department_id in (None, department_id):
                try:
                    await handle.signal(DepartmentCycleWorkflow.task_completed, signal)
                except Exception:  # noqa: BLE001 - the child re-checks at its interval anyway
                    workflow.logger.info("could not nudge %s", handle.id)

    @workflow.signal
    def department_progress(self, progress: DepartmentProgress) -> None:
        self._progress[progress.department_id] = progress

    # -- updates -------------------------------------------------------------------------------
    @workflow.update
    async def extend_deadline(self, request: ExtendDeadline) -> CycleStatus:
        self._deadlines[request.stage] = request.new_deadline
        if request.stage == self._stage:
            await self._signal_children(
                DepartmentCycleWorkflow.deadline_changed, DeadlineChanged(deadline=request.new_deadline)
            )
        return self.status()

    @extend_deadline.validator
    def _validate_extend(self, request: ExtendDeadline) -> None:
        if self._stage in (Stage.CLOSED, "cancelled") or self._cancel is not None:
            raise ValueError("the cycle is finished; deadlines can no longer change")
        current_index = STAGE_ORDER.index(Stage(self._stage))
        index = STAGE_ORDER.index(request.stage)
        if index < current_index:
            raise ValueError(f"stage {request.stage.value} is already over (current: {self._stage})")
        current = self._deadlines[request.stage]
        if request.new_deadline <= current:
            raise ValueError(
                f"new deadline {request.new_deadline.isoformat()} must be later than the current {current.isoformat()}"
            )
        if index + 1 < len(STAGE_ORDER):
            following = STAGE_ORDER[index + 1]
            if request.new_deadline >= self._deadlines[following]:
                raise ValueError(
                    f"new deadline must be before the {following.value} deadline "
                    f"{self._deadlines[following].isoformat()}; extend that stage first"
                )

    @workflow.update
    async def force_stage(self, request: ForceStage) -> CycleStatus:
        self._forced.add(request.stage)
        self._wake = True
        await self._signal_children(DepartmentCycleWorkflow.force_complete, request)
        return self.status()

    @force_stage.validator
    def _validate_force(self, request: ForceStage) -> None:
        if request.stage != self._stage:
            raise ValueError(f"only the current stage ({self._stage}) can be forced, not {request.stage.value}")
        if self._cancel is not None:
            raise ValueError("the cycle is being cancelled")

    @workflow.update
    async def resolve_incident(self, resolution: handoffs.IncidentResolution) -> CycleStatus:
        """An operator retries the refused handoff or skips it (after fixing what the error names)."""
        self._resolution = resolution
        return self.status()

    @resolve_incident.validator
    def _validate_resolution(self, resolution: handoffs.IncidentResolution) -> None:
        if self._incident is None:
            raise ValueError("there is no open incident on this cycle")

    # -- query ---------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> CycleStatus:
        assert self._input is not None
        next_deadline = self._deadlines.get(self._stage) if isinstance(self._stage, Stage) else None
        return CycleStatus(
            cycle_id=self._input.cycle_id,
            stage=self._stage,
            paused=self._paused,
            cancelled=self._cancel is not None,
            next_deadline=next_deadline,
            departments=[
                self._progress.get(d, DepartmentProgress(department_id=d)) for d in self._input.department_ids
            ],
            stages_done=list(self._stages_done),
            blocked=self._blocked,
            incident=self._incident,
            finished_stages=list(self._finished),
        )

    # -- run -----------------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: ReviewCycleInput) -> CycleStatus:
        self._input = inp
        self._paused = inp.paused
        self._cancel = self._cancel or inp.pending_cancel
        self._finished = list(inp.finished_stages)
        self._deadlines = {s.stage: s.deadline for s in inp.schedule}
        start = STAGE_ORDER.index(inp.start_stage)
        self._stages_done = list(STAGE_ORDER[:start])
        for stage in STAGE_ORDER[start:]:
            self._set_stage(stage)
            if await self._until_unpaused():
                return await self._cancelled(inp)
            typed = workflow.patched(TYPED_HANDOFFS_PATCH)
            entered = await self._enter(inp, stage) if typed else await self._stage_action(inp, stage, "enter")
            if not entered:
                return await self._cancelled(inp)
            await self._run_departments(inp, stage)
            if self._cancel is not None:
                return await self._cancelled(inp)
            exited = await self._exit(inp, stage) if typed else await self._stage_action(inp, stage, "exit")
            if not exited:
                return await self._cancelled(inp)
            self._stages_done.append(stage)
            self._finished.append(StageOutcomes(stage=stage, departments=self.status().departments))
            next_index = STAGE_ORDER.index(stage) + 1
            if next_index < len(STAGE_ORDER) and workflow.info().get_current_history_length() > inp.history_event_limit:
                workflow.continue_as_new(self._carry_over(inp, STAGE_ORDER[next_index]))
        self._set_stage(Stage.CLOSED)
        if workflow.patched(TYPED_HANDOFFS_PATCH):
            await self._handoff(inp, Stage.CLOSED, "record_closed", handoffs.CycleClosed)
        elif workflow.patched(RECORD_CLOSED_PATCH):
            # The cycles service's row says "closed" too, not only the workflow.
            await self._stage_action(inp, Stage.CLOSED, "enter")
        return self.status()

    # -- typed handoffs (patch typed-handoffs) -------------------------------------------------
    async def _enter(self, inp: ReviewCycleInput, stage: Stage) -> bool:
        """What opens each stage; False when the cycle was cancelled meanwhile."""
        if stage == Stage.GOAL_SETTING:
            return await self._handoff(inp, stage, "open_goal_setting", handoffs.GoalSettingOpened)
        if stage == Stage.EVALUATION:
            return await self._handoff(inp, stage, "open_evaluation", handoffs.ReviewsAssigned)
        if stage == Stage.FEEDBACK:
            return await self._handoff(inp, stage, "release_results", handoffs.Released)
        if stage == Stage.RESULT_APPLICATION:
            return await self._handoff(inp, stage, "open_result_application", handoffs.ResultApplicationOpened)
        return True  # tracking opens with the catalog handed over when goal setting closed

    async def _exit(self, inp: ReviewCycleInput, stage: Stage) -> bool:
        """What closes each stage and carries its data to the next."""
        if stage == Stage.GOAL_SETTING:
            return await self._handoff(inp, stage, "freeze_goals", handoffs.KpiCatalogFrozen) and await self._handoff(
                inp, stage, "hand_catalog_to_tracking", handoffs.CatalogInTracking
            )
        if stage == Stage.TRACKING:
            return await self._handoff(inp, stage, "hand_progress_to_evaluation", handoffs.EvaluationInputs)
        if stage == Stage.EVALUATION:
            return (
                await self._handoff(inp, stage, "close_evaluation", handoffs.FinalResults)
                and await self._handoff(inp, stage, "hand_results_to_feedback", handoffs.ResultsDelivered)
                and await self._handoff(inp, stage, "hand_results_to_results", handoffs.ResultsDelivered)
            )
        if stage == Stage.RESULT_APPLICATION:
            return await self._handoff(inp, stage, "publish_results", handoffs.Published)
        return True  # feedback closes by time; appeals are handled by the result-application stage

    async def _handoff(
        self, inp: ReviewCycleInput, stage: Stage, name: str, result_type: type[handoffs.Handoff]
    ) -> bool:
        """Run one handoff until it is done. Not ready: show why and wait (a nudge, HR forcing the stage
        or the re-check interval retries it). Refused: open an incident and wait for an operator.
        Returns False when the cycle was cancelled while waiting."""
        while True:
            if self._cancel is not None:
                return False
            forced = stage in self._forced
            ref = handoffs.CycleRef(
                cycle_id=inp.cycle_id, department_ids=inp.department_ids, day_seconds=inp.day_seconds, forced=forced
            )
            try:
                result = await workflow.execute_activity(
                    name,
                    ref,
                    result_type=result_type,
                    start_to_close_timeout=STAGE_ACTION_TIMEOUT,
                    heartbeat_timeout=HANDOFF_HEARTBEAT,
                    retry_policy=ACTIVITY_RETRY,
                )
            except ActivityError as exc:
                action = await self._open_incident(stage, name, exc)
                if action is None:
                    return False
                if action == "skip":
                    return True
                continue
            if result.ready or forced:
                # Forced: HR waived the precondition; the handoff's side effects ran as far as they could.
                self._blocked = None
                return True
            self._blocked = result.blocked or handoffs.Blocked(reason=result.detail, service="", unblock_by="hr_admin")
            workflow.logger.info("handoff %s not ready: %s", name, result.detail)
            self._wake = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._wake or self._cancel is not None or stage in self._forced,
                    timeout=timedelta(hours=inp.recheck_hours),
                )

    async def _open_incident(self, stage: Stage, name: str, exc: ActivityError) -> str | None:
        """Wait for an operator's retry or skip; None when the cycle is cancelled meanwhile."""
        cause = exc.cause if exc.cause is not None else exc
        self._incident = handoffs.Incident(
            stage=stage.value, handoff=name, error=str(cause), opened_at=workflow.now().isoformat()
        )
        workflow.logger.warning("handoff %s refused: %s", name, cause)
        await workflow.wait_condition(lambda: self._resolution is not None or self._cancel is not None)
        resolution, self._resolution, self._incident = self._resolution, None, None
        if self._cancel is not None or resolution is None:
            return None
        return resolution.action

    @staticmethod
    def _reminders_for(inp: ReviewCycleInput, stage: Stage) -> list[float]:
        plan = next(s for s in inp.schedule if s.stage == stage)
        return plan.reminder_days_before if plan.reminder_days_before is not None else inp.reminder_days_before

    def _carry_over(self, inp: ReviewCycleInput, next_stage: Stage) -> ReviewCycleInput:
        schedule = [s.model_copy(update={"deadline": self._deadlines[s.stage]}) for s in inp.schedule]
        return inp.model_copy(
            update={
                "start_stage": next_stage,
                "paused": self._paused,
                "schedule": schedule,
                "pending_cancel": self._cancel,
                "finished_stages": self._finished,
            }
        )

    def _set_stage(self, stage: Stage | str) -> None:
        self._stage = stage
        self._progress = {}
        assert self._input is not None
        workflow.upsert_search_attributes([CYCLE_ID.value_set(self._input.cycle_id), STAGE.value_set(str(stage))])

    async def _until_unpaused(self) -> bool:
        """Wait while paused; True when a cancel arrived meanwhile."""
        await workflow.wait_condition(lambda: not self._paused or self._cancel is not None)
        return self._cancel is not None

    async def _stage_action(self, inp: ReviewCycleInput, stage: Stage, action: str) -> bool:
        """Run an enter/exit action; while it is not ready (e.g. calibration open), re-check periodically.

        Returns False when the cycle was cancelled while waiting.
        """
        while True:
            if self._cancel is not None:
                return False
            result: StageActionResult = await workflow.execute_activity(
                "stage_action",
                StageAction(
                    cycle_id=inp.cycle_id,
                    stage=stage,
                    action=action,
                    department_ids=inp.department_ids,
                    day_seconds=inp.day_seconds,
                ),
                result_type=StageActionResult,
                start_to_close_timeout=STAGE_ACTION_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            if result.ready:
                return True
            workflow.logger.info("stage %s %s not ready: %s", stage.value, action, result.detail)
            self._wake = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._wake or self._cancel is not None or stage in self._forced,
                    timeout=timedelta(hours=inp.recheck_hours),
                )
            if stage in self._forced and action == "exit":
                # HR forced the stage: the exit precondition is waived, but its side effects still run.
                forced = await workflow.execute_activity(
                    "stage_action",
                    StageAction(
                        cycle_id=inp.cycle_id,
                        stage=stage,
                        action="force_exit",
                        department_ids=inp.department_ids,
                        day_seconds=inp.day_seconds,
                    ),
                    result_type=StageActionResult,
                    start_to_close_timeout=STAGE_ACTION_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
                return bool(forced.ok)

    async def _run_departments(self, inp: ReviewCycleInput, stage: Stage) -> list[DepartmentOutcome]:
        outcomes: list[DepartmentOutcome] = []
        limit = asyncio.Semaphore(inp.max_concurrent_children)
        parent_id = workflow.info().workflow_id

        async def run_one(department_id: str) -> None:
            async with limit:
                if self._cancel is not None:
                    return
                handle = await workflow.start_child_workflow(
                    DepartmentCycleWorkflow.run,
                    DepartmentCycleInput(
                        cycle_id=inp.cycle_id,
                        department_id=department_id,
                        stage=stage,
                        deadline=self._deadlines[stage],
                        reminder_days_before=self._reminders_for(inp, stage),
                        escalate_to_hr_after_days=inp.escalate_to_hr_after_days,
                        deadline_policy=inp.deadline_policy,
                        extension_days=inp.extension_days,
                        recheck_hours=inp.recheck_hours,
                        parent_workflow_id=parent_id,
                        history_event_limit=inp.history_event_limit,
                        paused=self._paused,
                    ),
                    id=department_workflow_id(inp.cycle_id, stage, department_id),
                    task_queue=workflow.info().task_queue,
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(CYCLE_ID, inp.cycle_id),
                            SearchAttributePair(STAGE, stage.value),
                            SearchAttributePair(DEPARTMENT_ID, department_id),
                        ]
                    ),
                )
                self._children[department_id] = handle
                if stage in self._forced:
                    forced = ForceStage(stage=stage, reason="forced")
                    await handle.signal(DepartmentCycleWorkflow.force_complete, forced)
                try:
                    outcome = await handle
                except Exception as exc:  # noqa: BLE001 - a cancelled child is expected on cycle cancel
                    if self._cancel is None:
                        raise ApplicationError(f"department {department_id} failed in {stage.value}") from exc
                    return
                finally:
                    self._children.pop(department_id, None)
                outcomes.append(outcome)
                self._progress[department_id] = self._progress.get(
                    department_id, DepartmentProgress(department_id=department_id)
                ).model_copy(update={"outcome": outcome.outcome, "pending": outcome.pending_left})

        runners = [asyncio.ensure_future(run_one(d)) for d in inp.department_ids]
        all_done = asyncio.ensure_future(asyncio.gather(*runners))
        await workflow.wait_condition(lambda: all_done.done() or self._cancel is not None)
        if self._cancel is not None:
            for handle in list(self._children.values()):
                await self._cancel_child(handle)
            await asyncio.gather(*runners, return_exceptions=True)
        else:
            await all_done
        return outcomes

    @staticmethod
    async def _cancel_child(handle: workflow.ChildWorkflowHandle[DepartmentCycleWorkflow, DepartmentOutcome]) -> None:
        external = workflow.get_external_workflow_handle(handle.id)
        try:
            await external.cancel()
        except Exception:  # noqa: BLE001 - it may have just finished
            workflow.logger.info("child %s already finished", handle.id)

    async def _signal_children(self, signal: object, arg: object) -> None:
        for handle in list(self._children.values()):
            try:
                await handle.signal(signal, arg)  # type: ignore[call-overload]
            except Exception:  # noqa: BLE001 - a child that just finished cannot be signalled
                workflow.logger.info("could not signal %s", handle.id)

    async def _cancelled(self, inp: ReviewCycleInput) -> CycleStatus:
        """Compensate (e.g. withdraw unreleased results), then end as cancelled."""
        assert self._cancel is not None
        current = self._stage if isinstance(self._stage, Stage) else Stage.GOAL_SETTING
        if workflow.patched(TYPED_HANDOFFS_PATCH):
            ref = handoffs.CycleRef(
                cycle_id=inp.cycle_id, department_ids=inp.department_ids, day_seconds=inp.day_seconds
            )
            await workflow.execute_activity(
                "withdraw_results",
                ref,
                result_type=handoffs.Withdrawn,
                start_to_close_timeout=STAGE_ACTION_TIMEOUT,
                heartbeat_timeout=HANDOFF_HEARTBEAT,
                retry_policy=ACTIVITY_RETRY,
            )
            self._set_stage("cancelled")
            return self.status()
        await workflow.execute_activity(
            "stage_action",
            StageAction(
                cycle_id=inp.cycle_id,
                stage=current,
                action="compensate",
                department_ids=inp.department_ids,
                day_seconds=inp.day_seconds,
            ),
            result_type=StageActionResult,
            start_to_close_timeout=STAGE_ACTION_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._set_stage("cancelled")
        return self.status()
