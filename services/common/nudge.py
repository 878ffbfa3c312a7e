"""Nudge a cycle's department workflow after a person completes a task.

The database stays the source of truth: the signal carries no data the
workflow trusts, it only makes the department workflow re-read the pending
items from the service now instead of at its next periodic check. Nudges are
coalesced per (cycle, stage, department) so a burst of 1,000 approvals sends a
handful of signals, keeping workflow history small; the last change of a burst is always followed
by a signal (a trailing one at the end of the interval). A missing workflow (the
stage is not running, or no Temporal) is logged, never an error for the user.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from contracts.cycle import Stage, department_workflow_id, review_cycle_workflow_id
from contracts.workflow_io import TaskCompleted

__all__ = ["WorkflowNudger", "cycle_department", "nudge", "nudge_cycle"]

log = logging.getLogger(__name__)


class WorkflowNudger:
    """One long-lived Temporal client per service process, connected on first use."""

    def __init__(
        self,
        *,
        address: str,
        namespace: str = "default",
        min_interval: float = 2.0,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.options = dict(options or {})
        """TLS / mTLS / API key for ``Client.connect`` (``Settings.temporal_client_options()``)."""
        self.min_interval = min_interval
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._last: dict[str, float] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._trailing: set[str] = set()
        """Workflows with a trailing signal scheduled (see ``_schedule``)."""
        self.roots: dict[tuple[str, str], str] = {}
        """(cycle, department) -> the cycle's department it belongs to (see ``nudge``)."""

    async def _get_client(self) -> Any:
        async with self._lock:
            if self._client is None:
                from temporalio.client import Client
                from temporalio.contrib.pydantic import pydantic_data_converter

                self._client = await Client.connect(
                    self.address, namespace=self.namespace, data_converter=pydantic_data_converter, **self.options
                )
            return self._client

    def task_completed(self, *, cycle_id: str, stage: Stage, department_id: str) -> None:
        """Fire-and-forget: schedule a coalesced nudge (returns immediately)."""
        self._schedule(department_workflow_id(cycle_id, stage, department_id), department_id)

    def cycle_changed(self, *, cycle_id: str) -> None:
        """Fire-and-forget: wake the cycle's own workflow, which retries a handoff waiting on this change
        (e.g. publication waiting for open appeals) now instead of at its re-check interval."""
        self._schedule(review_cycle_workflow_id(cycle_id), None)

    def _schedule(self, workflow_id: str, department_id: str | None) -> None:
        """Coalesced per workflow: at most one signal per ``min_interval``, and never the last one dropped.

        A change inside the interval schedules one trailing signal at its end, which also carries every
        later change of the interval: the workflow always re-reads after the last change of a burst."""
        if workflow_id in self._trailing:
            return
        wait = self._last.get(workflow_id, -self.min_interval) + self.min_interval - time.monotonic()
        if wait > 0:
            self._trailing.add(workflow_id)
        else:
            self._last[workflow_id] = time.monotonic()
        task = asyncio.create_task(self._send(workflow_id, department_id, max(wait, 0.0)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, workflow_id: str, department_id: str | None, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
            self._trailing.discard(workflow_id)
            self._last[workflow_id] = time.monotonic()
        await self._signal(workflow_id, department_id)

    async def _signal(self, workflow_id: str, department_id: str | None) -> None:
        try:
            client = await asyncio.wait_for(self._get_client(), timeout=5)
            handle = client.get_workflow_handle(workflow_id)
            await handle.signal("task_completed", TaskCompleted(department_id=department_id))
        except Exception as exc:  # noqa: BLE001 - a nudge is best effort; the workflow re-checks anyway
            log.info("nudge to %s not delivered: %s", workflow_id, exc)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)


async def cycle_department(session: Any, department_model: Any, *, cycle_id: str, department_id: str) -> str:
    """The cycle's own department that ``department_id`` belongs to (its top-most ancestor in the snapshot).

    Department workflows run per department named by the cycle; people in sub-departments belong to it.
    """
    from sqlalchemy import select

    rows = (
        await session.execute(
            select(department_model.department_id, department_model.parent_id).where(
                department_model.cycle_id == cycle_id
            )
        )
    ).all()
    parents = {row[0]: row[1] for row in rows}
    current = department_id
    seen: set[str] = set()
    while parents.get(current) in parents and current not in seen:
        seen.add(current)
        current = parents[current]
    return current


async def nudge(
    request: Any,
    session: Any,
    department_model: Any,
    *,
    cycle_id: str,
    stage: Stage,
    department_id: str | None = None,
    employee_id: str | None = None,
    participant_model: Any = None,
) -> None:
    """After a person's task is committed: nudge that department's workflow (best effort).

    Give the department, or the employee (with the service's participant table) to look it up.
    """
    nudger: WorkflowNudger | None = getattr(request.app.state, "nudger", None)
    if nudger is None:
        return
    if department_id is None and employee_id is not None and participant_model is not None:
        person = await session.get(participant_model, (cycle_id, employee_id))
        department_id = person.department_id if person is not None else None
    if department_id is None:
        return
    # A cycle's snapshot is frozen, so a department's cycle department never changes: look it up once.
    key = (cycle_id, department_id)
    root = nudger.roots.get(key)
    if root is None:
        root = await cycle_department(session, department_model, cycle_id=cycle_id, department_id=department_id)
        nudger.roots[key] = root
    nudger.task_completed(cycle_id=cycle_id, stage=stage, department_id=root)


def nudge_cycle(request: Any, *, cycle_id: str) -> None:
    """After a change a blocked handoff may wait for (an appeal resolved, a pool allocated) is committed:
    wake the cycle's workflow (best effort; it re-checks at its interval anyway)."""
    nudger: WorkflowNudger | None = getattr(request.app.state, "nudger", None)
    if nudger is not None:
        nudger.cycle_changed(cycle_id=cycle_id)
