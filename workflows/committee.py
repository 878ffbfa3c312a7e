"""The performance committee's workflows and their activities.

* ``CommitteeMeetingWorkflow``: one meeting, started by the committee's Temporal Schedule at its
  cadence (``contracts.committee.MeetingCadence``). One activity asks the committee service to open
  the meeting; the service generates the agenda from the cycle's live data. The scheduled run's
  workflow id is the idempotency key, so a retried activity opens the meeting once.
* ``CommitteeDecisionWorkflow``: one decision tracked to done, the loop of ``DepartmentCycleWorkflow``
  around :func:`contracts.committee.decide_decision`: re-read the decision, notify, sleep until the
  next reminder, escalation or re-check. The committee service signals ``decision_changed`` after a
  change (status, owner, due date); the workflow never trusts the signal and re-reads the decision.
  Notifications go through the cycles service (``send_notification``, the department workflow's
  activity), idempotent on (decision, step).

History stays small: one activity per check, continue-as-new beyond a history limit. The
activities (``CommitteeActivities``) call the committee service on the worker's one call path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from contracts.committee import (
        CommitteeMeetingInput,
        DecisionChanged,
        DecisionOutcome,
        DecisionQuery,
        DecisionSnapshot,
        DecisionState,
        DecisionTrackingInput,
        DecisionTrackingProgress,
        MeetingPrepared,
        MeetingRequest,
        decide_decision,
        next_decision_wake,
    )
    from contracts.timing import Notice
    from contracts.workflow_io import NotificationRequest
    from workflows.department_cycle import ACTIVITY_RETRY, ACTIVITY_TIMEOUT
    from workflows.handoffs import HandoffActivities

__all__ = ["CommitteeActivities", "CommitteeDecisionWorkflow", "CommitteeMeetingWorkflow"]


@workflow.defn
class CommitteeMeetingWorkflow:
    """One committee meeting: open it with its generated agenda."""

    @workflow.run
    async def run(self, inp: CommitteeMeetingInput) -> MeetingPrepared:
        prepared: MeetingPrepared = await workflow.execute_activity_method(
            CommitteeActivities.prepare_committee_meeting,
            MeetingRequest(
                committee_id=inp.committee_id,
                idempotency_key=workflow.info().workflow_id,
                held_at=workflow.now(),
                cycle_id=inp.cycle_id,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        return prepared


@workflow.defn
class CommitteeDecisionWorkflow:
    """One committee decision, from recorded to done (or cancelled)."""

    def __init__(self) -> None:
        self._changed = False
        self._progress = DecisionTrackingProgress(decision_id="-")

    @workflow.signal
    def decision_changed(self, _signal: DecisionChanged) -> None:
        self._changed = True

    @workflow.query
    def progress(self) -> DecisionTrackingProgress:
        return self._progress

    @workflow.run
    async def run(self, inp: DecisionTrackingInput) -> DecisionOutcome:
        policy = inp.policy
        state = DecisionState(
            due_at=inp.due_at,
            reminders_sent=list(inp.reminders_sent),
            escalated_to_chair=inp.escalated_to_chair,
            escalated_to_hr=inp.escalated_to_hr,
            overdue_reminders=inp.overdue_reminders,
        )
        progress = DecisionTrackingProgress(
            decision_id=inp.decision_id, reminders=inp.reminders, escalations=inp.escalations
        )
        while True:
            decision: DecisionSnapshot = await workflow.execute_activity_method(
                CommitteeActivities.check_committee_decision,
                DecisionQuery(decision_id=inp.decision_id),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
            now = workflow.now()
            step = decide_decision(policy, state, now, decision)
            for notice in step.notices:
                await self._notify(decision, notice)
                counter = "escalations" if "escalation" in notice.kind else "reminders"
                progress = progress.model_copy(update={counter: getattr(progress, counter) + 1})
            self._progress = progress = progress.model_copy(update={"status": decision.status, "due_at": state.due_at})
            if step.finish is not None:
                return DecisionOutcome(
                    decision_id=inp.decision_id,
                    outcome=step.finish,
                    reminders=progress.reminders,
                    escalations=progress.escalations,
                )
            if workflow.info().get_current_history_length() > inp.history_event_limit:
                workflow.continue_as_new(
                    inp.model_copy(
                        update={
                            "due_at": state.due_at,
                            "reminders_sent": state.reminders_sent,
                            "escalated_to_chair": state.escalated_to_chair,
                            "escalated_to_hr": state.escalated_to_hr,
                            "overdue_reminders": state.overdue_reminders,
                            "reminders": progress.reminders,
                            "escalations": progress.escalations,
                        }
                    )
                )
            wake = next_decision_wake(policy, state, now)
            self._changed = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._changed, timeout=max(wake - now, timedelta(seconds=1)))

    async def _notify(self, decision: DecisionSnapshot, notice: Notice) -> None:
        await workflow.execute_activity(
            "send_notification",
            NotificationRequest(
                idempotency_key=f"committee/{decision.decision_id}/{notice.step}",
                cycle_id=decision.cycle_id,
                department_id=decision.owner_department_id,
                stage=decision.stage,
                kind=notice.kind,
                recipients=_recipients(notice.audience, decision),
                pending=1,
                deadline=decision.due_at,
                message=notice.message,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )


def _recipients(audience: str, decision: DecisionSnapshot) -> list[str]:
    """The owner, the chair (HR when the committee has none) or HR."""
    if audience == "owner":
        return [decision.owner_id]
    if audience == "chair" and decision.chair_id:
        return [decision.chair_id]
    return ["hr"]


# -- activities -----------------------------------------------------------------------------------
class CommitteeActivities:
    """The committee workflows' side effects, over HTTP to the committee service, through the one
    call path of the worker's activities (``HandoffActivities.call``: a refusal is final, an outage
    is retried)."""

    def __init__(self, *, handoffs: HandoffActivities) -> None:
        self.handoffs = handoffs

    @activity.defn(name="prepare_committee_meeting")
    async def prepare_committee_meeting(self, request: MeetingRequest) -> MeetingPrepared:
        body = {"held_at": request.held_at.isoformat(), "cycle_id": request.cycle_id}
        meeting = await self.handoffs.call(
            "POST",
            "committee",
            f"/v1/committees/{request.committee_id}/meetings",
            json=body,
            idempotency_key=request.idempotency_key,
        )
        return MeetingPrepared(
            meeting_id=meeting["meeting_id"],
            cycle_id=meeting.get("cycle_id"),
            agenda_items=len(meeting.get("agenda", [])),
            created=bool(meeting.get("created", True)),
        )

    @activity.defn(name="check_committee_decision")
    async def check_committee_decision(self, query: DecisionQuery) -> DecisionSnapshot:
        data = await self.handoffs.call("GET", "committee", f"/v1/decisions/{query.decision_id}/snapshot")
        return DecisionSnapshot.model_validate(data)

    def all(self) -> list[Callable[..., Any]]:
        return [self.prepare_committee_meeting, self.check_committee_decision]
