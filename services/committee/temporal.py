"""The committee service's door to Temporal: the meeting Schedule and the decision workflows.

One long-lived client per process, connected on first use (never at import, never per request).
Everything here is best effort after the database commit: the database is the truth, and what
Temporal could not be told is recorded on the row (``schedule_state``, ``tracking``) and can be
retried (``PUT /v1/committees/{id}/cadence``, ``POST /v1/decisions/{id}/track``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from contracts.committee import (
    CommitteeMeetingInput,
    DecisionChanged,
    DecisionPolicy,
    DecisionTrackingInput,
    MeetingCadence,
    committee_schedule_id,
    decision_workflow_id,
    meeting_workflow_id,
)
from contracts.task_queues import REVIEW_CYCLE_TASK_QUEUE

__all__ = ["CommitteeWorkflows"]

log = logging.getLogger(__name__)

_STATE_LENGTH = 500


def _failed(what: str, exc: Exception) -> str:
    log.warning("%s failed: %s", what, exc)
    return f"failed: {type(exc).__name__}: {exc}"[:_STATE_LENGTH]


class CommitteeWorkflows:
    """Starts decision workflows, signals them, and keeps each committee's meeting Schedule."""

    def __init__(
        self,
        *,
        address: str,
        namespace: str = "default",
        client: Any = None,
        task_queue: str = REVIEW_CYCLE_TASK_QUEUE,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.task_queue = task_queue
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        async with self._lock:
            if self._client is None:
                from workflows.worker import connect

                self._client = await asyncio.wait_for(connect(self.address, self.namespace), timeout=10)
            return self._client

    async def track(self, *, decision_id: str, policy: DecisionPolicy) -> str:
        """Start the decision's workflow (a running one is kept); ``workflow`` or why it did not start."""
        from temporalio.exceptions import WorkflowAlreadyStartedError

        from workflows.committee import CommitteeDecisionWorkflow

        try:
            client = await self.client()
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await client.start_workflow(
                    CommitteeDecisionWorkflow.run,
                    DecisionTrackingInput(decision_id=decision_id, policy=policy),
                    id=decision_workflow_id(decision_id),
                    task_queue=self.task_queue,
                )
        except Exception as exc:  # noqa: BLE001 - recorded on the decision; POST .../track retries
            return _failed(f"starting the workflow of decision {decision_id}", exc)
        return "workflow"

    async def changed(self, *, decision_id: str, reason: str) -> None:
        """Tell the decision's workflow to re-read the decision now (it would at its next check anyway)."""
        from workflows.committee import CommitteeDecisionWorkflow

        try:
            client = await self.client()
            handle = client.get_workflow_handle(decision_workflow_id(decision_id))
            await handle.signal(CommitteeDecisionWorkflow.decision_changed, DecisionChanged(reason=reason[:200]))
        except Exception as exc:  # noqa: BLE001 - a nudge is best effort; the workflow re-checks on its own
            log.info("decision %s: nudge not delivered: %s", decision_id, exc)

    async def keep_schedule(self, *, committee_id: str, cycle_id: str | None, cadence: MeetingCadence | None) -> str:
        """Create, update or (no cadence) delete the committee's meeting Schedule; its state as text."""
        from temporalio.client import (
            Schedule,
            ScheduleActionStartWorkflow,
            ScheduleAlreadyRunningError,
            ScheduleIntervalSpec,
            ScheduleOverlapPolicy,
            SchedulePolicy,
            ScheduleSpec,
            ScheduleUpdate,
        )

        from workflows.committee import CommitteeMeetingWorkflow

        schedule_id = committee_schedule_id(committee_id)
        try:
            client = await self.client()
            if cadence is None:
                with contextlib.suppress(Exception):  # no schedule to delete is fine
                    await client.get_schedule_handle(schedule_id).delete()
                return "none"
            schedule = Schedule(
                action=ScheduleActionStartWorkflow(
                    CommitteeMeetingWorkflow.run,
                    CommitteeMeetingInput(committee_id=committee_id, cycle_id=cycle_id),
                    id=meeting_workflow_id(committee_id),
                    task_queue=self.task_queue,
                ),
                spec=ScheduleSpec(
                    intervals=[ScheduleIntervalSpec(every=cadence.every, offset=cadence.offset)],
                    start_at=cadence.first_meeting_at,
                ),
                # A meeting still running when the next is due is not doubled; a worker that was
                # down for less than a day still opens the meeting it missed.
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
            )
            try:
                await client.create_schedule(schedule_id, schedule)
            except ScheduleAlreadyRunningError:
                await client.get_schedule_handle(schedule_id).update(lambda _old: ScheduleUpdate(schedule=schedule))
        except Exception as exc:  # noqa: BLE001 - recorded on the committee; PUT .../cadence retries
            return _failed(f"keeping the meeting schedule of committee {committee_id}", exc)
        return "active"
