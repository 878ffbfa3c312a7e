"""The front door to the review-cycle workflow: start, pause, resume, cancel, extend, force, status.

The cycles service holds one long-lived Temporal client (connected on first use
and kept on ``app.state``), never one per request. Queries and updates go
through typed references to the workflow's methods.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import Stage, department_workflow_id, review_cycle_workflow_id
from contracts.handoffs import IncidentResolution
from contracts.task_queues import REVIEW_CYCLE_TASK_QUEUE
from contracts.templates import CycleTemplateSpec
from contracts.timing import build_cycle_input
from contracts.workflow_io import (
    CancelCycle,
    CycleStatus,
    DepartmentProgress,
    ExtendDeadline,
    ForceStage,
    ReviewCycleInput,
)
from services.common.errors import DomainError
from services.common.settings import Settings
from services.cycles.models import CyclesCycle
from services.cycles.schemas import Accepted
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.review_cycle import CYCLE_ID, STAGE, ReviewCycleWorkflow

__all__ = [
    "TemporalGateway",
    "cancel",
    "cycle_starts_at",
    "cycle_status",
    "extend",
    "force",
    "launch_workflow",
    "mark_closed",
    "pause",
    "resolve_incident",
    "start",
    "resume",
    "status_with_progress",
]


class TemporalGateway:
    """One long-lived client for the service process, connected lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        async with self._lock:
            if self._client is None:
                from temporalio.client import Client
                from temporalio.contrib.pydantic import pydantic_data_converter

                try:
                    self._client = await asyncio.wait_for(
                        Client.connect(
                            self.settings.temporal_address,
                            namespace=self.settings.temporal_namespace,
                            data_converter=pydantic_data_converter,
                            **self.settings.temporal_client_options(),  # TLS / mTLS / API key
                        ),
                        timeout=10,
                    )
                except Exception as exc:  # noqa: BLE001 - reported to the caller as 503
                    raise DomainError(
                        f"Temporal at {self.settings.temporal_address} is unreachable: {exc}", status_code=503
                    ) from exc
            return self._client

    async def start(self, inp: ReviewCycleInput) -> str:
        from temporalio.common import SearchAttributePair, TypedSearchAttributes
        from temporalio.exceptions import WorkflowAlreadyStartedError

        client = await self.client()
        workflow_id = review_cycle_workflow_id(inp.cycle_id)
        # Starting twice is a no-op: the running workflow is the cycle.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                ReviewCycleWorkflow.run,
                inp,
                id=workflow_id,
                task_queue=REVIEW_CYCLE_TASK_QUEUE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(CYCLE_ID, inp.cycle_id), SearchAttributePair(STAGE, inp.start_stage.value)]
                ),
            )
        return workflow_id

    def handle(self, client: Any, cycle_id: str) -> Any:
        return client.get_workflow_handle(review_cycle_workflow_id(cycle_id))


def cycle_starts_at(period_start: Any, *, now: datetime, day_seconds: float) -> datetime:
    """When the first stage opens.

    Real time counts from the period start, or from now when the cycle starts after its period
    began (stages keep their planned lengths instead of opening with their deadlines already past);
    a compressed demo always counts from now.
    """
    return max(start_of(period_start), now) if day_seconds == 86_400 else now


async def launch_workflow(*, gateway: TemporalGateway, cycle: Any, day_seconds: float = 86_400) -> str:
    """Start the cycle's workflow from its stored template copy (idempotent)."""
    spec = CycleTemplateSpec.model_validate(cycle.template_spec)
    now = datetime.now(UTC)
    starts_at = cycle_starts_at(cycle.period_start, now=now, day_seconds=day_seconds)
    inp = build_cycle_input(
        cycle_id=cycle.id,
        timing=spec.timing,
        department_ids=list(cycle.department_ids),
        starts_at=starts_at,
        day_seconds=day_seconds,
    )
    return await gateway.start(inp)


async def start(
    *,
    session: AsyncSession,
    http: Any,
    settings: Settings,
    gateway: TemporalGateway,
    cycle_id: str,
    actor: str,
    day_seconds: float = 86_400,
) -> CyclesCycle:
    """Start a draft cycle: freeze and distribute its snapshot, then start its workflow.

    Starting is consistent with the workflow either way: the workflow id is derived from the cycle
    id, so starting again is a no-op when the workflow runs, and starting an *active* cycle whose
    workflow never started (Temporal was down at that moment) starts it now instead of refusing.
    """
    from services.cycles import service

    cycle = await service.get_cycle(session=session, cycle_id=cycle_id)
    if cycle.status == "active" and settings.cycle_workflows:
        await launch_workflow(gateway=gateway, cycle=cycle, day_seconds=day_seconds)
        return cycle
    cycle = await service.start_cycle(session=session, cycle_id=cycle_id, actor=actor)
    await service.distribute_cycle(session=session, http=http, settings=settings, cycle_id=cycle_id)
    if settings.cycle_workflows:
        await launch_workflow(gateway=gateway, cycle=cycle, day_seconds=day_seconds)
    return cycle


async def status_with_progress(client: Any, cycle_id: str, *, concurrency: int = 20) -> CycleStatus:
    """The cycle's status query, with live per-department counts pulled from the running children.

    Department workflows do not push their counts to the parent (that would grow its history with
    every check); the parent knows outcomes, the children answer the ``progress`` query.
    """
    status: CycleStatus = await client.get_workflow_handle(review_cycle_workflow_id(cycle_id)).query(
        ReviewCycleWorkflow.status
    )
    stage = str(status.stage.value if isinstance(status.stage, Stage) else status.stage)
    if stage not in {s.value for s in Stage} or stage == Stage.CLOSED.value:
        return status  # closed or cancelled: the parent's outcomes are final
    limit = asyncio.Semaphore(concurrency)

    async def live(progress: DepartmentProgress) -> DepartmentProgress:
        if progress.outcome is not None:
            return progress
        child = client.get_workflow_handle(department_workflow_id(cycle_id, stage, progress.department_id))
        async with limit:
            try:
                answer: DepartmentProgress = await asyncio.wait_for(
                    child.query(DepartmentCycleWorkflow.progress), timeout=5
                )
            except Exception:  # noqa: BLE001 - not started yet, or just finished: keep what the parent knows
                return progress
        return answer if answer.department_id == progress.department_id else progress

    departments = await asyncio.gather(*(live(d) for d in status.departments))
    return status.model_copy(update={"departments": list(departments)})


# -- commands ------------------------------------------------------------------------------------
async def _run(coro: Any, cycle_id: str) -> Any:
    """Translate Temporal errors into clear HTTP answers."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await coro
    except WorkflowUpdateFailedError as exc:
        raise DomainError(str(exc.cause or exc), status_code=409) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise DomainError(f"cycle {cycle_id} has no running workflow; start it first", status_code=404) from exc
        raise DomainError(f"Temporal refused the request: {exc.message}", status_code=409) from exc


async def cycle_status(*, gateway: TemporalGateway, cycle_id: str) -> CycleStatus:
    status: CycleStatus = await _run(status_with_progress(await gateway.client(), cycle_id), cycle_id)
    return status


async def pause(*, session: AsyncSession, gateway: TemporalGateway, cycle_id: str) -> Accepted:
    """No reminders and no stage changes until resumed."""
    handle = gateway.handle(await gateway.client(), cycle_id)
    await _run(handle.signal(ReviewCycleWorkflow.pause), cycle_id)
    await _set_status(session=session, cycle_id=cycle_id, status="paused")
    return Accepted(cycle_id=cycle_id, workflow_id=handle.id, action="pause")


async def resume(*, session: AsyncSession, gateway: TemporalGateway, cycle_id: str) -> Accepted:
    handle = gateway.handle(await gateway.client(), cycle_id)
    await _run(handle.signal(ReviewCycleWorkflow.resume), cycle_id)
    await _set_status(session=session, cycle_id=cycle_id, status="active")
    return Accepted(cycle_id=cycle_id, workflow_id=handle.id, action="resume")


async def cancel(*, session: AsyncSession, gateway: TemporalGateway, cycle_id: str, reason: str) -> Accepted:
    """Compensations run in the workflow (unreleased results are withdrawn)."""
    handle = gateway.handle(await gateway.client(), cycle_id)
    await _run(handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason=reason)), cycle_id)
    await _set_status(session=session, cycle_id=cycle_id, status="cancelled")
    return Accepted(cycle_id=cycle_id, workflow_id=handle.id, action="cancel")


async def extend(*, gateway: TemporalGateway, cycle_id: str, body: ExtendDeadline) -> CycleStatus:
    """Validated by the workflow's update: later than the current deadline, before the next stage's."""
    handle = gateway.handle(await gateway.client(), cycle_id)
    status: CycleStatus = await _run(handle.execute_update(ReviewCycleWorkflow.extend_deadline, body), cycle_id)
    return status


async def force(*, gateway: TemporalGateway, cycle_id: str, body: ForceStage) -> CycleStatus:
    handle = gateway.handle(await gateway.client(), cycle_id)
    status: CycleStatus = await _run(handle.execute_update(ReviewCycleWorkflow.force_stage, body), cycle_id)
    return status


async def resolve_incident(*, gateway: TemporalGateway, cycle_id: str, body: IncidentResolution) -> CycleStatus:
    """Retry the handoff the services refused (after fixing what its error names), or skip it."""
    handle = gateway.handle(await gateway.client(), cycle_id)
    status: CycleStatus = await _run(handle.execute_update(ReviewCycleWorkflow.resolve_incident, body), cycle_id)
    return status


async def mark_closed(*, session: AsyncSession, cycle_id: str) -> Accepted:
    """Record that the cycle's workflow finished (idempotent; a cancelled cycle stays cancelled)."""
    cycle = await session.get(CyclesCycle, cycle_id)
    if cycle is None:
        raise DomainError(f"cycle {cycle_id} does not exist", status_code=404)
    if cycle.status == "draft":
        raise DomainError(f"cycle {cycle_id} was never started; it cannot be closed", status_code=409)
    if cycle.status != "cancelled":
        await _set_status(session=session, cycle_id=cycle_id, status="closed")
    return Accepted(cycle_id=cycle_id, workflow_id=review_cycle_workflow_id(cycle_id), action="closed")


async def _set_status(*, session: AsyncSession, cycle_id: str, status: str) -> None:
    cycle = await session.get(CyclesCycle, cycle_id)
    if cycle is None:
        raise DomainError(f"cycle {cycle_id} does not exist", status_code=404)
    cycle.status = status
    await session.commit()


def start_of(day: Any) -> datetime:
    """Midnight UTC of a date."""
    return datetime.combine(day, time(0), tzinfo=UTC)
