"""Ops overview: for every running cycle, what is stuck, where, and why.

``GET /v1/ops/overview`` gathers, in one answer:

* per active (or paused) cycle: the workflow's stage and per-department completion (the
  ``ReviewCycleWorkflow.status`` query), the overdue departments and the escalations
  (``cycles_notification``), the stale KPIs by data-owner department (tracking's
  ``/v1/cycles/{id}/stale-kpis``) and a deep link into the Temporal Web UI filtered by
  ``CycleId``;
* ingestion: consumer lag, DLQ depth and the latest reasons, unmapped metrics (tracking's
  ``/v1/ops/ingestion``);
* the health of the database, Temporal, the Kafka broker, the worker and the stage services.

Nothing here fails because a dependency is down: each part says what it could not read and
why, so the page still answers "what is stuck" when half the stack is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.handoffs import Blocked, Incident
from contracts.tracking import StaleKpiReport
from contracts.workflow_io import DepartmentProgress
from services.common.auth import Principal, mint_token, requires
from services.common.deps import SessionDep
from services.common.kafka import KafkaSecurity, client_options
from services.common.params import OPS_ROLES
from services.common.settings import Settings
from services.cycles.control import TemporalGateway
from services.cycles.models import CyclesCycle
from services.cycles.notifications import CyclesNotification

__all__ = [
    "ESCALATION_KINDS",
    "OPS_ROLES",
    "OpsOverview",
    "build_overview",
    "router",
    "temporal_ui_link",
]


ESCALATION_KINDS = (
    "escalation_head",
    "escalation_hr",
    "stale_kpi_escalation",
    "approval_escalation",
    "approval_escalation_hr",
)
"""Kinds that mean a deadline was missed (the workflow escalated)."""
WATCHED_KINDS = (*ESCALATION_KINDS, "stale_kpi_reminder")
"""Kinds shown in a cycle's escalation list: escalations and stale-data reminders."""
RUNNING_STATUSES = ("active", "paused")
STAGE_SERVICES = ("goals", "tracking", "evaluation", "feedback", "results")
CHECK_TIMEOUT = 3.0
"""Seconds any one probe or upstream call may take."""
QUERY_TIMEOUT = 5.0
"""Seconds a workflow status query may take (it needs a worker to answer)."""


# -- models ---------------------------------------------------------------------------------------
class ComponentHealth(BaseModel):
    name: str = Field(description="database, temporal, broker, worker, or service:<name>.")
    ok: bool
    detail: str
    latency_ms: float


class DepartmentCompletion(BaseModel):
    department_id: str
    total: int
    done: int
    pending: int
    percent: float | None = Field(description="done / total in percent; None before the first check.")
    outcome: str | None = Field(description="How the department's stage ended (completed, closed_at_deadline...).")


class WorkflowView(BaseModel):
    workflow_id: str
    stage: str
    paused: bool
    cancelled: bool
    next_deadline: datetime | None
    deadline_passed: bool
    stages_done: list[str]
    departments: list[DepartmentCompletion]
    blocked: Blocked | None = Field(
        default=None, description="Why the stage cannot exit (all departments may be done), and who can unblock it."
    )
    incident: Incident | None = Field(
        default=None,
        description="A handoff the services refused: the cycle waits for POST /v1/cycles/{id}/incident (retry|skip).",
    )
    finished_stages: list[FinishedStage] = Field(
        default_factory=list, description="Per-department completion of every finished stage."
    )


class FinishedStage(BaseModel):
    stage: str
    departments: list[DepartmentCompletion]


class Escalation(BaseModel):
    notification_id: str
    department_id: str
    stage: str
    kind: str
    pending: int
    deadline: datetime | None
    message: str
    recipients: list[str]
    created_at: datetime


class OverdueDepartment(BaseModel):
    department_id: str
    stage: str
    pending: int | None
    deadline: datetime | None
    escalated_to: list[str] = Field(description="Escalation kinds recorded: escalation_head, escalation_hr...")
    last_escalated_at: datetime | None
    reason: str


class StaleKpiBrief(BaseModel):
    kpi_id: str
    name: str
    metric: str
    last_event_at: datetime | None
    due_at: datetime


class StaleOwner(BaseModel):
    department_id: str = Field(description="The data-owner department that must supply the data.")
    kpis: list[StaleKpiBrief]


class CycleOps(BaseModel):
    cycle_id: str
    name: str
    status: str
    department_ids: list[str]
    temporal_ui_url: str = Field(description="The cycle's workflows in the Temporal Web UI (CycleId filter).")
    workflow: WorkflowView | None
    workflow_error: str | None = Field(description="Why the workflow status could not be read, if it could not.")
    overdue_departments: list[OverdueDepartment]
    escalations: list[Escalation] = Field(description="The latest escalations and stale-data reminders.")
    notification_counts: dict[str, int]
    stale_kpis: list[StaleOwner]
    stale_kpis_error: str | None


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PartitionLag(_Lenient):
    partition: int
    end_offset: int
    committed: int | None
    lag: int


class DeadLetterBrief(_Lenient):
    topic: str
    partition: int
    offset: int
    reason: str
    rejected_at: datetime


class UnmappedMetricBrief(_Lenient):
    metric: str
    department_id: str
    events: int


class IngestionView(_Lenient):
    """Tracking's ``/v1/ops/ingestion`` as ops reads it."""

    consumer_group: str
    topic: str
    partitions: list[PartitionLag]
    total_lag: int | None
    lag_error: str | None = None
    events_stored: int
    dead_letters: int
    latest_dead_letters: list[DeadLetterBrief]
    unmapped_events: int
    unmapped_metrics: list[UnmappedMetricBrief]
    conflicting_duplicates: int = Field(
        default=0, description="Repeated event ids with other content (first kept; DLQ 'conflicting duplicate')."
    )
    ingestion_state: str = Field(default="unknown", description="running, paused, stalled or unknown.")
    ingestion_status: str | None = Field(default=None, description="e.g. 'ingestion stalled since … on partition p'.")
    stalled_since: datetime | None = None
    stalled_partition: int | None = None
    last_error: str | None = None


class OpsOverview(BaseModel):
    generated_at: datetime
    health: list[ComponentHealth]
    ingestion: IngestionView | None
    ingestion_error: str | None
    temporal_ui_url: str
    total_cycles: int = Field(description="Running cycles (active or paused), or 1 with ?cycle_id=.")
    cycles: list[CycleOps]


# -- helpers --------------------------------------------------------------------------------------
def temporal_ui_link(settings: Settings, cycle_id: str | None = None) -> str:
    """The Temporal Web UI's workflow list, filtered to one cycle when ``cycle_id`` is given."""
    base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(settings.temporal_namespace, safe='')}/workflows"
    if cycle_id is None:
        return base
    return f"{base}?query={quote(f'CycleId={chr(34)}{cycle_id}{chr(34)}', safe='')}"


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _error(exc: BaseException) -> str:
    message = getattr(exc, "message", None)  # DomainError: its message is already user-facing
    if isinstance(message, str) and message:
        return message
    text_ = str(exc).strip()
    return f"{type(exc).__name__}: {text_}" if text_ else type(exc).__name__


async def _timed(name: str, probe: Awaitable[tuple[bool, str]]) -> ComponentHealth:
    started = time.perf_counter()
    try:
        ok, detail = await asyncio.wait_for(probe, timeout=CHECK_TIMEOUT)
    except TimeoutError:
        ok, detail = False, f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # noqa: BLE001 - a failed probe is a finding, not an error
        ok, detail = False, _error(exc)
    return ComponentHealth(name=name, ok=ok, detail=detail, latency_ms=round((time.perf_counter() - started) * 1000, 1))


async def _database(session: AsyncSession) -> tuple[bool, str]:
    await session.execute(text("SELECT 1"))
    return True, "SELECT 1 answered"


async def _temporal(gateway: TemporalGateway) -> tuple[bool, str]:
    client = await gateway.client()
    await client.service_client.check_health()
    return True, f"{gateway.settings.temporal_address} (namespace {gateway.settings.temporal_namespace})"


async def _broker(bootstrap_servers: str, security: KafkaSecurity | None) -> tuple[bool, str]:
    from services.common.kafka_admin import admin_check

    ok = await admin_check(bootstrap_servers, CHECK_TIMEOUT, **client_options(security))
    return ok, bootstrap_servers if ok else f"{bootstrap_servers}: no broker answered"


async def _http_health(http: httpx.AsyncClient, url: str) -> tuple[bool, str]:
    try:
        response = await http.get(f"{url}/healthz", timeout=CHECK_TIMEOUT)
    except httpx.HTTPError as exc:
        return False, f"{url}: {_error(exc)}"
    if response.status_code != 200:
        return False, f"{url}/healthz answered {response.status_code}"
    return True, url


async def _get_json(http: httpx.AsyncClient, url: str, token: str, what: str) -> Any:
    try:
        response = await http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=CHECK_TIMEOUT)
    except httpx.HTTPError as exc:
        raise LookupError(f"could not reach {what} at {url}: {_error(exc)}") from exc
    if response.status_code != 200:
        detail = response.text[:300]
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(response.json().get("detail", detail))
        raise LookupError(f"{what} answered {response.status_code}: {detail}")
    return response.json()


async def _ingestion(http: httpx.AsyncClient, settings: Settings, token: str) -> IngestionView:
    data = await _get_json(http, f"{settings.tracking_url}/v1/ops/ingestion", token, "tracking")
    return IngestionView.model_validate(data)


async def _stale(http: httpx.AsyncClient, settings: Settings, token: str, cycle_id: str) -> list[StaleOwner]:
    url = f"{settings.tracking_url}/v1/cycles/{quote(cycle_id, safe='')}/stale-kpis"
    try:
        data = await _get_json(http, url, token, "tracking")
    except LookupError as exc:
        if "answered 404" in str(exc):
            return []  # no KPI catalog registered yet: nothing can be stale
        raise
    report = StaleKpiReport.model_validate(data)
    return [
        StaleOwner(
            department_id=d.department_id,
            kpis=[
                StaleKpiBrief(
                    kpi_id=k.kpi_id, name=k.name, metric=k.metric, last_event_at=k.last_event_at, due_at=k.due_at
                )
                for k in d.kpis
            ],
        )
        for d in report.departments
        if d.kpis
    ]


async def _workflow(gateway: TemporalGateway, client: Any, cycle_id: str, now: datetime) -> WorkflowView:
    from temporalio.service import RPCError, RPCStatusCode

    from services.cycles.control import status_with_progress

    handle = gateway.handle(client, cycle_id)
    try:
        status = await asyncio.wait_for(status_with_progress(client, cycle_id), timeout=QUERY_TIMEOUT)
    except TimeoutError as exc:
        raise LookupError(
            f"the status query of {handle.id} got no answer within {QUERY_TIMEOUT:g} s: is the worker running?"
        ) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise LookupError(
                f"Temporal has no workflow {handle.id} (was the cycle started with workflows on?)"
            ) from exc
        raise LookupError(f"Temporal refused the status query of {handle.id}: {exc.message}") from exc
    deadline = _utc(status.next_deadline)
    stage = status.stage.value if hasattr(status.stage, "value") else str(status.stage)
    return WorkflowView(
        workflow_id=handle.id,
        stage=stage,
        paused=status.paused,
        cancelled=status.cancelled,
        next_deadline=deadline,
        deadline_passed=deadline is not None and deadline < now,
        stages_done=[s.value for s in status.stages_done],
        departments=[_completion(d) for d in status.departments],
        blocked=status.blocked,
        incident=status.incident,
        finished_stages=[
            FinishedStage(stage=f.stage.value, departments=[_completion(d) for d in f.departments])
            for f in status.finished_stages
        ],
    )


def _completion(d: DepartmentProgress) -> DepartmentCompletion:
    return DepartmentCompletion(
        department_id=d.department_id,
        total=d.total,
        done=d.done,
        pending=d.pending,
        percent=round(100 * d.done / d.total, 1) if d.total else None,
        outcome=d.outcome,
    )


def _overdue(
    escalations: Sequence[CyclesNotification], workflow: WorkflowView | None, now: datetime
) -> list[OverdueDepartment]:
    """Departments past a deadline: escalated by the workflow, or (status) past it with work pending.

    With a known workflow only the current stage counts; escalations of finished stages are history.
    """
    groups: dict[tuple[str, str], OverdueDepartment] = {}
    for row in sorted(escalations, key=lambda r: r.id):
        if row.kind not in ESCALATION_KINDS:
            continue
        if workflow is not None and row.stage != workflow.stage:
            continue
        key = (row.department_id, row.stage)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = OverdueDepartment(
                department_id=row.department_id,
                stage=row.stage,
                pending=row.pending,
                deadline=_utc(row.deadline),
                escalated_to=[],
                last_escalated_at=None,
                reason="",
            )
        if row.kind not in entry.escalated_to:
            entry.escalated_to.append(row.kind)
        entry.pending = row.pending
        entry.deadline = _utc(row.deadline) or entry.deadline
        entry.last_escalated_at = _utc(row.created_at)
        entry.reason = row.message
    if workflow is not None and workflow.deadline_passed and not workflow.paused:
        for department in workflow.departments:
            if department.pending > 0 and department.outcome is None:
                key = (department.department_id, workflow.stage)
                entry = groups.get(key)
                if entry is None:
                    groups[key] = OverdueDepartment(
                        department_id=department.department_id,
                        stage=workflow.stage,
                        pending=department.pending,
                        deadline=workflow.next_deadline,
                        escalated_to=[],
                        last_escalated_at=None,
                        reason=f"{department.pending} item(s) pending after the {workflow.stage} deadline",
                    )
                else:
                    entry.pending = department.pending
    return sorted(groups.values(), key=lambda o: (-(o.pending or 0), o.department_id))


# -- the overview ---------------------------------------------------------------------------------
async def build_overview(
    *,
    session: AsyncSession,
    settings: Settings,
    http: httpx.AsyncClient,
    gateway: TemporalGateway,
    cycle_id: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> OpsOverview:
    """Everything ops needs in one call; every upstream failure becomes a readable finding."""
    now = datetime.now(UTC)
    token = mint_token(settings, sub="system:console", roles=["hr_admin", "ops"], ttl_seconds=300)

    database = await _timed("database", _database(session))
    cycles: list[CyclesCycle] = []
    total = 0
    notifications: dict[str, list[CyclesNotification]] = {}
    counts: dict[str, dict[str, int]] = {}
    if database.ok:
        query = select(CyclesCycle)
        if cycle_id is not None:
            query = query.where(CyclesCycle.id == cycle_id)
        else:
            query = query.where(CyclesCycle.status.in_(RUNNING_STATUSES))
        total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        cycles = list(
            (await session.scalars(query.order_by(CyclesCycle.created_at.desc()).limit(limit).offset(offset))).all()
        )
        ids = [c.id for c in cycles]
        if ids:
            rows = (
                await session.scalars(
                    select(CyclesNotification)
                    .where(CyclesNotification.cycle_id.in_(ids), CyclesNotification.kind.in_(WATCHED_KINDS))
                    .order_by(CyclesNotification.id.desc())
                    .limit(500 * len(ids))
                )
            ).all()
            for row in rows:
                notifications.setdefault(row.cycle_id, []).append(row)
            for cid, kind, count in (
                await session.execute(
                    select(CyclesNotification.cycle_id, CyclesNotification.kind, func.count())
                    .where(CyclesNotification.cycle_id.in_(ids))
                    .group_by(CyclesNotification.cycle_id, CyclesNotification.kind)
                )
            ).all():
                counts.setdefault(cid, {})[kind] = int(count)

    # The network part runs concurrently: probes, tracking, and the workflow queries.
    temporal_task = asyncio.ensure_future(_timed("temporal", _temporal(gateway)))
    probes = asyncio.gather(
        _timed("broker", _broker(settings.kafka_bootstrap_servers, KafkaSecurity.from_settings(settings))),
        _timed("worker", _http_health(http, settings.worker_url.rstrip("/"))),
        *(_timed(f"service:{name}", _http_health(http, getattr(settings, f"{name}_url"))) for name in STAGE_SERVICES),
    )
    ingestion_task = asyncio.ensure_future(_settle(_ingestion(http, settings, token)))
    stale_tasks = [asyncio.ensure_future(_settle(_stale(http, settings, token, c.id))) for c in cycles]
    temporal = await temporal_task
    workflow_results: list[tuple[Any, str | None]]
    if temporal.ok:
        client = await gateway.client()
        workflow_results = list(await asyncio.gather(*(_settle(_workflow(gateway, client, c.id, now)) for c in cycles)))
    else:
        workflow_results = [(None, f"Temporal is unreachable: {temporal.detail}") for _ in cycles]
    health = [database, temporal, *await probes]
    ingestion, ingestion_error = await ingestion_task

    views: list[CycleOps] = []
    for cycle, (workflow, workflow_error), stale_task in zip(cycles, workflow_results, stale_tasks, strict=True):
        stale, stale_error = await stale_task
        watched = notifications.get(cycle.id, [])
        views.append(
            CycleOps(
                cycle_id=cycle.id,
                name=cycle.name,
                status=cycle.status,
                department_ids=list(cycle.department_ids),
                temporal_ui_url=temporal_ui_link(settings, cycle.id),
                workflow=workflow,
                workflow_error=workflow_error,
                overdue_departments=_overdue(watched, workflow, now),
                escalations=[
                    Escalation(
                        notification_id=r.notification_id,
                        department_id=r.department_id,
                        stage=r.stage,
                        kind=r.kind,
                        pending=r.pending,
                        deadline=_utc(r.deadline),
                        message=r.message,
                        recipients=[str(p.get("name") or p.get("id")) for p in _recipients(r.recipients)],
                        created_at=_utc(r.created_at) or now,
                    )
                    for r in watched[:20]
                ],
                notification_counts=counts.get(cycle.id, {}),
                stale_kpis=stale or [],
                stale_kpis_error=stale_error,
            )
        )
    return OpsOverview(
        generated_at=now,
        health=health,
        ingestion=ingestion,
        ingestion_error=ingestion_error,
        temporal_ui_url=temporal_ui_link(settings),
        total_cycles=total,
        cycles=views,
    )


async def _settle(work: Awaitable[Any]) -> tuple[Any, str | None]:
    """(result, None) or (None, the reason it failed): one failing upstream never fails the overview."""
    try:
        return await work, None
    except LookupError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - reported to ops as a finding
        return None, _error(exc)


def _recipients(raw: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


# -- route ----------------------------------------------------------------------------------------
router = APIRouter(prefix="/v1/ops", tags=["ops"])


@router.get(
    "/overview",
    summary="Across running cycles: stage and department completion, overdue departments, escalations, "
    "stale KPIs, ingestion lag and DLQ, component health, Temporal UI links",
    description=(
        "Never fails because a dependency is down: each part reports what it could not read and why "
        "(`workflow_error`, `stale_kpis_error`, `ingestion_error`, `health[].ok`). Active and paused cycles "
        "are listed newest first; `cycle_id` focuses on one cycle whatever its status."
    ),
    openapi_extra={"x-roles": [r.value for r in OPS_ROLES]},
)
async def ops_overview(
    request: Request,
    session: SessionDep,
    _principal: Annotated[Principal, requires(*OPS_ROLES)],
    cycle_id: Annotated[str | None, Query(min_length=1, max_length=64, description="Only this cycle.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Cycles per page (at most 100).")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")] = 0,
) -> OpsOverview:
    state = request.app.state
    return await build_overview(
        session=session,
        settings=state.settings,
        http=state.http,
        gateway=state.temporal,
        cycle_id=cycle_id,
        limit=limit,
        offset=offset,
    )
