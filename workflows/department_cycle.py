"""``DepartmentCycleWorkflow``: one department's part of one stage of a review cycle.

It asks the owning service who is still pending, reminds at the template's
cadence (e.g. 7 and 1 days before the deadline, one batched notification per
department), escalates at the deadline to the department head, then to HR, and
finally applies the deadline policy (extend once, or close with what is missing).
In the tracking stage "pending" means stale KPIs of the department's data: the
stage runs to its deadline, reminding the data owner when KPIs go stale and
escalating when they stay stale.

Services nudge it with the ``task_completed`` signal; it never trusts the
signal's payload and re-reads the truth through an activity. History stays
small: one activity per check, and continue-as-new beyond a history limit.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts.timing import DepartmentState, Notice, decide, decide_items, next_item_wake, next_wake
    from contracts.workflow_io import (
        DeadlineChanged,
        DepartmentCycleInput,
        DepartmentOutcome,
        DepartmentProgress,
        ForceStage,
        NotificationRequest,
        PauseState,
        PendingQuery,
        PendingSummary,
        TaskCompleted,
    )

__all__ = ["ACTIVITY_RETRY", "PULL_PROGRESS_PATCH", "DepartmentCycleWorkflow"]

ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["BadRequest"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=60)
PULL_PROGRESS_PATCH = "progress-pulled-by-query"
CHECK_REFUSED_PATCH = "check-refused-waits"
ITEM_DEADLINES_PATCH = "item-deadlines"
"""Items with their own deadlines (approval steps) are reminded and escalated on them."""


@workflow.defn
class DepartmentCycleWorkflow:
    def __init__(self) -> None:
        self._nudged = False
        self._forced = False
        self._paused = False
        self._new_deadline: datetime | None = None
        self._progress = DepartmentProgress(department_id="-")
        self._counts = {"reminders": 0, "escalations": 0}
        self._item_sent: set[str] = set()

    # -- signals -------------------------------------------------------------------------------
    @workflow.signal
    def task_completed(self, _signal: TaskCompleted) -> None:
        self._nudged = True

    @workflow.signal
    def deadline_changed(self, signal: DeadlineChanged) -> None:
        self._new_deadline = signal.deadline
        self._nudged = True

    @workflow.signal
    def force_complete(self, _signal: ForceStage) -> None:
        self._forced = True

    @workflow.signal
    def set_paused(self, state: PauseState) -> None:
        self._paused = state.paused
        self._nudged = True

    @workflow.query
    def progress(self) -> DepartmentProgress:
        return self._progress

    # -- run -----------------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: DepartmentCycleInput) -> DepartmentOutcome:
        """The I/O loop around :func:`contracts.timing.decide`: check, notify, sleep until the next wake."""
        self._paused = self._paused or inp.paused
        self._progress = DepartmentProgress(department_id=inp.department_id)
        state = DepartmentState(
            deadline=inp.deadline,
            reminders_sent=list(inp.reminders_sent),
            escalated_to_head=inp.escalated_to_head,
            escalated_to_hr=inp.escalated_to_hr,
            extended=inp.extended,
        )
        self._counts = {
            "reminders": len(state.reminders_sent),
            "escalations": int(inp.escalated_to_head) + int(inp.escalated_to_hr),
        }
        summary = PendingSummary(total=0, done=0, pending=0)
        self._item_sent = set(inp.item_notices_sent)

        while True:
            if self._forced:
                return self._outcome(inp, "forced", summary)
            if self._new_deadline is not None:
                state.move_deadline(self._new_deadline)
                self._new_deadline = None
            if self._paused:
                await workflow.wait_condition(lambda: not self._paused or self._forced)
                continue

            checked = await self._check(inp)
            if checked is None:
                continue  # the service refused the check; waited for a re-check or a nudge
            summary = checked
            now = workflow.now()
            decision = decide(inp, state, now, summary.pending)
            notices = list(decision.notices)
            items = bool(summary.due) and workflow.patched(ITEM_DEADLINES_PATCH)
            if items:
                notices += decide_items(summary.due, self._item_sent, now, inp.stage.value)
            for notice in notices:
                await self._notify(inp, state, summary, notice)
            if decision.extend_to is not None:
                self._new_deadline = decision.extend_to
                continue
            if decision.finish is not None:
                return self._outcome(inp, decision.finish, summary)

            if workflow.info().get_current_history_length() > inp.history_event_limit:
                workflow.continue_as_new(
                    inp.model_copy(
                        update={
                            "deadline": state.deadline,
                            "reminders_sent": state.reminders_sent,
                            "escalated_to_head": state.escalated_to_head,
                            "escalated_to_hr": state.escalated_to_hr,
                            "extended": state.extended,
                            "paused": self._paused,
                            "item_notices_sent": sorted(self._item_sent),
                        }
                    )
                )

            wake = next_wake(inp, state, now)
            item_wake = next_item_wake(summary.due, self._item_sent, now) if items else None
            if item_wake is not None:
                wake = min(wake, item_wake)
            self._nudged = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._nudged or self._forced or self._new_deadline is not None,
                    timeout=max(wake - now, timedelta(seconds=1)),
                )

    # -- I/O -----------------------------------------------------------------------------------
    async def _check(self, inp: DepartmentCycleInput) -> PendingSummary | None:
        """Who is still pending; None when the service refused to say (shown as the progress error)."""
        try:
            summary: PendingSummary = await workflow.execute_activity(
                "check_pending",
                PendingQuery(cycle_id=inp.cycle_id, department_id=inp.department_id, stage=inp.stage),
                result_type=PendingSummary,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        except ActivityError as exc:
            if not workflow.patched(CHECK_REFUSED_PATCH):
                raise
            # A refusal (e.g. no snapshot for this cycle yet) must not fail a year-long cycle: show it
            # and re-check at the cadence, or at once when someone nudges.
            cause = exc.cause if exc.cause is not None else exc
            self._progress = self._progress.model_copy(update={"error": str(cause)})
            self._nudged = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._nudged or self._forced or self._new_deadline is not None,
                    timeout=timedelta(hours=inp.recheck_hours),
                )
            return None
        progress = DepartmentProgress(
            department_id=inp.department_id, total=summary.total, done=summary.done, pending=summary.pending
        )
        if progress != self._progress:
            self._progress = progress
            # Progress used to be pushed to the parent on every change; that made the parent's
            # history grow with every check. Now the front door pulls it with the `progress` query.
            if not workflow.patched(PULL_PROGRESS_PATCH):
                await self._report(inp, progress)
        return summary

    async def _notify(
        self, inp: DepartmentCycleInput, state: DepartmentState, summary: PendingSummary, notice: Notice
    ) -> None:
        await workflow.execute_activity(
            "send_notification",
            NotificationRequest(
                idempotency_key=f"{inp.cycle_id}/{inp.department_id}/{inp.stage.value}/{notice.step}",
                cycle_id=inp.cycle_id,
                department_id=inp.department_id,
                stage=inp.stage,
                kind=notice.kind,
                recipients=_recipients(notice.audience, summary, notice.recipients),
                pending=summary.pending,
                deadline=state.deadline,
                message=notice.message,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._counts["escalations" if "escalation" in notice.kind else "reminders"] += 1

    def _outcome(self, inp: DepartmentCycleInput, kind: str, summary: PendingSummary) -> DepartmentOutcome:
        self._progress = self._progress.model_copy(update={"outcome": kind})
        return DepartmentOutcome(
            department_id=inp.department_id,
            stage=inp.stage,
            outcome=kind,
            pending_left=summary.pending,
            reminders=self._counts["reminders"],
            escalations=self._counts["escalations"],
        )

    async def _report(self, inp: DepartmentCycleInput, progress: DepartmentProgress) -> None:
        """Tell the parent the new counts (only on change, so history stays small)."""
        parent = workflow.get_external_workflow_handle(inp.parent_workflow_id)
        try:
            await parent.signal("department_progress", progress)
        except Exception:  # noqa: BLE001 - the parent may be gone (cancelled); progress is advisory
            workflow.logger.info("could not report progress to %s", inp.parent_workflow_id)


def _recipients(audience: str, summary: PendingSummary, recipients: tuple[str, ...] = ()) -> list[str]:
    """Who a notice goes to, from the pending summary the owning service reported (in tracking, the
    people who answer for the stale KPIs' data; without any, the department head)."""
    head = summary.head_employee_id or "department_head"
    if audience == "named":
        return list(recipients)
    if audience == "head":
        return [head]
    if audience == "hr":
        return ["hr"]
    if audience == "data_owners":
        return summary.owner_ids or [head]
    if audience == "data_owners_and_head":
        return list(dict.fromkeys([*summary.owner_ids, head]))
    return summary.owner_ids
