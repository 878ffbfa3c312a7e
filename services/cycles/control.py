"""The front door to the review-cycle workflow: start, pause, resume, cancel, extend, status.

The cycles service holds one long-lived Temporal client (connected on first use
and kept on ``app.state``), never one per request. Queries and updates go
through typed references to the workflow's methods.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from contracts.cycle import DeadlinePolicy, Stage, department_workflow_id, review_cycle_workflow_id
from contracts.task_queues import REVIEW_CYCLE_TASK_QUEUE
from contracts.templates import CycleTemplateSpec
from contracts.workflow_io import (
    CancelCycle,
    CycleStatus,
    DepartmentProgress,
    ExtendDeadline,
    ForceStage,
    ReviewCycleInput,
    StageSchedule,
)
from services.common.auth import Principal, Role, requires
from services.common.deps import SessionDep
from services.common.errors import DomainError
from services.common.settings import Settings
from workflows.department_cycle import DepartmentCycleWorkflow
from workflows.review_cycle import CYCLE_ID, STAGE, ReviewCycleWorkflow

__all__ = [
    "TemporalGateway",
    "build_cycle_input",
    "cycle_starts_at",
    "launch_workflow",
    "router",
    "status_with_progress",
]

CycleIdPath = Annotated[str, Path(max_length=64, description="The cycle id.")]


def build_cycle_input(
    *,
    cycle_id: str,
    spec: CycleTemplateSpec,
    department_ids: list[str],
    starts_at: datetime,
    day_seconds: float = 86_400,
    recheck_hours: float | None = None,
) -> ReviewCycleInput:
    """The workflow input for a cycle: deadlines from the template's stage plan.

    ``day_seconds`` compresses time for demos and benchmarks (e.g. 2 s per template day):
    deadlines, reminder offsets and escalation delays all scale together.
    """
    scale = day_seconds / 86_400
    schedule: list[StageSchedule] = []
    opens = starts_at
    for plan in spec.stages:
        deadline = opens + timedelta(seconds=plan.deadline_offset * day_seconds)
        schedule.append(
            StageSchedule(
                stage=plan.stage,
                deadline=deadline,
                reminder_days_before=[d * scale for d in spec.reminders_for(plan.stage)],
            )
        )
        opens = opens + timedelta(seconds=plan.duration_days * day_seconds)
    return ReviewCycleInput(
        cycle_id=cycle_id,
        department_ids=department_ids,
        schedule=schedule,
        reminder_days_before=[d * scale for d in spec.reminder_days_before],
        escalate_to_hr_after_days=max(spec.escalate_days_after_deadline, 1) * scale,
        deadline_policy=DeadlinePolicy.CLOSE,
        extension_days=3 * scale,
        recheck_hours=recheck_hours if recheck_hours is not None else max(24 * scale, 1 / 3600),
        day_seconds=day_seconds,
    )


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
        spec=spec,
        department_ids=list(cycle.department_ids),
        starts_at=starts_at,
        day_seconds=day_seconds,
    )
    return await gateway.start(inp)


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


# -- routes --------------------------------------------------------------------------------------
router = APIRouter(prefix="/v1", tags=["cycle control"])

HrOnly = Annotated[Principal, requires(Role.HR_ADMIN)]


def gateway(request: Request) -> TemporalGateway:
    gw: TemporalGateway = request.app.state.temporal
    return gw


async def _handle(request: Request, cycle_id: str) -> Any:
    gw = gateway(request)
    return gw.handle(await gw.client(), cycle_id)


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


class CancelBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class Accepted(BaseModel):
    cycle_id: str
    workflow_id: str
    action: str


@router.get(
    "/cycles/{cycle_id}/status",
    summary="Where the cycle's workflow stands: stage, per-department progress, next deadline",
)
async def cycle_status(
    cycle_id: CycleIdPath, request: Request, _p: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS)]
) -> CycleStatus:
    gw = gateway(request)
    client = await gw.client()
    status: CycleStatus = await _run(status_with_progress(client, cycle_id), cycle_id)
    return status


@router.post("/cycles/{cycle_id}/pause", summary="Pause the cycle: no reminders, no stage changes until resumed")
async def pause_cycle(cycle_id: CycleIdPath, request: Request, _p: HrOnly, session: SessionDep) -> Accepted:
    handle = await _handle(request, cycle_id)
    await _run(handle.signal(ReviewCycleWorkflow.pause), cycle_id)
    await _set_status(session, cycle_id, "paused")
    return Accepted(cycle_id=cycle_id, workflow_id=handle.id, action="pause")


@router.post("/cycles/{cycle_id}/resume", summary="Resume a paused cycle")
async def resume_cycle(cycle_id: CycleIdPath, request: Request, _p: HrOnly, session: SessionDep) -> Accepted:
    handle = await _handle(request, cycle_id)
    await _run(handle.signal(ReviewCycleWorkflow.resume), cycle_id)
    await _set_status(session, cycle_id, "active")
    return Accepted(cycle_id=cycle_id, workflow_id=handle.id, action="resume")


@router.post(
    "/cycles/{cycle_id}/cancel",
    summary="Cancel the cycle; compensations run (unreleased results are withdrawn)",
)
async def cancel_cycle(
    cycle_id: CycleIdPath, body: CancelBody, request: Request, _p: HrOnly, session: SessionDep
) -> Accepted:
    handle = await _handle(request, cycle_id)
    await _run(handle.signal(ReviewCycleWorkflow.cancel, CancelCycle(reason=body.reason)), cycle_id)
    await _set_status(session, cycle_id, "cancelled")
    return Accepted(cycle_id=cycle_id, workflow_id=handle.id, action="cancel")


@router.post(
    "/cycles/{cycle_id}/extend",
    summary="Extend a stage's deadline (validated: later than now's deadline, before the next stage's)",
)
async def extend_deadline(cycle_id: CycleIdPath, body: ExtendDeadline, request: Request, _p: HrOnly) -> CycleStatus:
    handle = await _handle(request, cycle_id)
    status: CycleStatus = await _run(handle.execute_update(ReviewCycleWorkflow.extend_deadline, body), cycle_id)
    return status


@router.post(
    "/cycles/{cycle_id}/force-stage",
    summary="Complete the current stage now, whatever is still pending (HR decision)",
)
async def force_stage(cycle_id: CycleIdPath, body: ForceStage, request: Request, _p: HrOnly) -> CycleStatus:
    handle = await _handle(request, cycle_id)
    status: CycleStatus = await _run(handle.execute_update(ReviewCycleWorkflow.force_stage, body), cycle_id)
    return status


@router.post(
    "/cycles/{cycle_id}/closed",
    summary="Record that the cycle's workflow finished (called by the worker at the end; idempotent)",
)
async def mark_closed(cycle_id: CycleIdPath, _p: HrOnly, session: SessionDep) -> Accepted:
    from services.cycles.models import CyclesCycle

    cycle = await session.get(CyclesCycle, cycle_id)
    if cycle is None:
        raise DomainError(f"cycle {cycle_id} does not exist", status_code=404)
    if cycle.status == "draft":
        raise DomainError(f"cycle {cycle_id} was never started; it cannot be closed", status_code=409)
    if cycle.status != "cancelled":
        await _set_status(session, cycle_id, "closed")
    return Accepted(cycle_id=cycle_id, workflow_id=review_cycle_workflow_id(cycle_id), action="closed")


async def _set_status(session: Any, cycle_id: str, status: str) -> None:
    from services.cycles.models import CyclesCycle

    cycle = await session.get(CyclesCycle, cycle_id)
    if cycle is None:
        raise DomainError(f"cycle {cycle_id} does not exist", status_code=404)
    cycle.status = status
    await session.commit()


def start_of(day: Any) -> datetime:
    """Midnight UTC of a date."""
    return datetime.combine(day, time(0), tzinfo=UTC)


__all__ += ["Stage", "start_of"]
