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

with workflow.unsafe.imports_passed_through():
    from contracts.cycle import DeadlinePolicy, Stage
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


@workflow.defn
class DepartmentCycleWorkflow:
    def __init__(self) -> None:
        self._nudged = False
        self._forced = False
        self._paused = False
        self._new_deadline: datetime | None = None
        self._progress = DepartmentProgress(department_id="-")

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
        self._paused = self._paused or inp.paused
        self._progress = DepartmentProgress(department_id=inp.department_id)
        deadline = inp.deadline
        reminders_sent = list(inp.reminders_sent)
        escalated_head, escalated_hr, extended = inp.escalated_to_head, inp.escalated_to_hr, inp.extended
        stale_episode = 0
        stale_reminded = False
        counts = {"reminders": len(reminders_sent), "escalations": int(escalated_head) + int(escalated_hr)}
        tracking = inp.stage == Stage.TRACKING
        hr_after = timedelta(days=inp.escalate_to_hr_after_days)
        summary = PendingSummary(total=0, done=0, pending=0)

        async def notify(kind: str, step: str, recipients: list[str], message: str) -> None:
            await workflow.execute_activity(
                "send_notification",
                NotificationRequest(
                    idempotency_key=f"{inp.cycle_id}/{inp.department_id}/{inp.stage.value}/{step}",
                    cycle_id=inp.cycle_id,
                    department_id=inp.department_id,
                    stage=inp.stage,
                    kind=kind,
                    recipients=recipients,
                    pending=summary.pending,
                    deadline=deadline,
                    message=message,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            if kind.startswith("escalation"):
                counts["escalations"] += 1
            else:
                counts["reminders"] += 1

        def outcome(kind: str) -> DepartmentOutcome:
            self._progress = self._progress.model_copy(update={"outcome": kind})
            return DepartmentOutcome(
                department_id=inp.department_id,
                stage=inp.stage,
                outcome=kind,
                pending_left=summary.pending,
                reminders=counts["reminders"],
                escalations=counts["escalations"],
            )

        while True:
            if self._forced:
                return outcome("forced")
            if self._new_deadline is not None:
                deadline, self._new_deadline = self._new_deadline, None
                # A moved deadline gets its own reminders and escalations.
                reminders_sent, escalated_head, escalated_hr = [], False, False
            if self._paused:
                await workflow.wait_condition(lambda: not self._paused or self._forced)
                continue

            summary = await workflow.execute_activity(
                "check_pending",
                PendingQuery(cycle_id=inp.cycle_id, department_id=inp.department_id, stage=inp.stage),
                result_type=PendingSummary,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            progress = DepartmentProgress(
                department_id=inp.department_id, total=summary.total, done=summary.done, pending=summary.pending
            )
            if progress != self._progress:
                self._progress = progress
                # Progress used to be pushed to the parent on every change; that made the parent's
                # history grow with every check. Now the front door pulls it with the `progress` query.
                if not workflow.patched(PULL_PROGRESS_PATCH):
                    await self._report(inp, progress)
            now = workflow.now()

            if tracking:
                if now >= deadline:
                    return outcome("completed")
                if summary.pending == 0:
                    stale_reminded = False
                elif not stale_reminded:
                    stale_episode += 1
                    stale_reminded = True
                    await notify(
                        "stale_kpi_reminder",
                        f"stale-{stale_episode}-reminder",
                        summary.owner_ids or ["department"],
                        f"{summary.pending} KPI(s) owned by {inp.department_id} have no recent data",
                    )
                    stale_since = now
                elif now - stale_since >= hr_after and not escalated_head:
                    escalated_head = True
                    await notify(
                        "stale_kpi_escalation",
                        f"stale-{stale_episode}-escalation",
                        [summary.head_employee_id or "department_head"],
                        f"{summary.pending} KPI(s) owned by {inp.department_id} are still stale",
                    )
            else:
                if summary.pending == 0:
                    return outcome("completed")
                due = [
                    d
                    for d in inp.reminder_days_before
                    if d not in reminders_sent and now >= deadline - timedelta(days=d)
                ]
                if due and now < deadline:
                    # Several cadence points passed at once (late start, pause): send one, the nearest.
                    nearest = min(due)
                    reminders_sent.extend(due)
                    await notify(
                        "reminder",
                        f"reminder-{nearest:g}d-{deadline.isoformat()}",
                        summary.owner_ids,
                        f"{summary.pending} item(s) due by {deadline.isoformat()} in {inp.stage.value}",
                    )
                if now >= deadline and not escalated_head:
                    escalated_head = True
                    await notify(
                        "escalation_head",
                        f"escalation-head-{deadline.isoformat()}",
                        [summary.head_employee_id or "department_head"],
                        f"{summary.pending} item(s) in {inp.stage.value} missed the deadline",
                    )
                if now >= deadline + hr_after and not escalated_hr:
                    escalated_hr = True
                    await notify(
                        "escalation_hr",
                        f"escalation-hr-{deadline.isoformat()}",
                        ["hr"],
                        f"{inp.department_id}: {summary.pending} item(s) in {inp.stage.value} still missing",
                    )
                    if inp.deadline_policy == DeadlinePolicy.EXTEND and not extended:
                        extended = True
                        self._new_deadline = now + timedelta(days=inp.extension_days)
                        continue
                    return outcome("closed_at_deadline")

            if workflow.info().get_current_history_length() > inp.history_event_limit:
                workflow.continue_as_new(
                    inp.model_copy(
                        update={
                            "deadline": deadline,
                            "reminders_sent": reminders_sent,
                            "escalated_to_head": escalated_head,
                            "escalated_to_hr": escalated_hr,
                            "extended": extended,
                            "paused": self._paused,
                        }
                    )
                )

            wake = self._next_wake(inp, now, deadline, reminders_sent, escalated_head, hr_after, tracking)
            self._nudged = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._nudged or self._forced or self._new_deadline is not None,
                    timeout=max(wake - now, timedelta(seconds=1)),
                )

    @staticmethod
    def _next_wake(
        inp: DepartmentCycleInput,
        now: datetime,
        deadline: datetime,
        reminders_sent: list[float],
        escalated_head: bool,
        hr_after: timedelta,
        tracking: bool,
    ) -> datetime:
        candidates = [now + timedelta(hours=inp.recheck_hours)]
        if tracking:
            candidates.append(deadline)
        else:
            candidates += [deadline - timedelta(days=d) for d in inp.reminder_days_before if d not in reminders_sent]
            candidates.append(deadline if not escalated_head else deadline + hr_after)
        future = [c for c in candidates if c > now]
        return min(future) if future else now + timedelta(hours=inp.recheck_hours)

    async def _report(self, inp: DepartmentCycleInput, progress: DepartmentProgress) -> None:
        """Tell the parent the new counts (only on change, so history stays small)."""
        parent = workflow.get_external_workflow_handle(inp.parent_workflow_id)
        try:
            await parent.signal("department_progress", progress)
        except Exception:  # noqa: BLE001 - the parent may be gone (cancelled); progress is advisory
            workflow.logger.info("could not report progress to %s", inp.parent_workflow_id)
