"""Routes of the tracking service. Thin: the rules live in ``service``.

Every route declares its roles with ``requires()`` (listed as ``x-roles`` in OpenAPI by the app);
per-person KPIs are scoped to the caller by the service layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse

from contracts.cycle import PendingReport, Stage
from contracts.goals import KpiCatalog
from contracts.org import DataOwnerDirectory
from contracts.tracking import LateDataPolicy, ProgressExport, StaleKpiReport
from services.common.auth import Principal, Role, requires
from services.common.deps import SessionDep
from services.common.limits import enforce_ingest_rate
from services.common.params import EVERYONE, HR, MACHINE, OPS_ROLES, STAFF, CycleId, Limit, Offset
from services.tracking import service
from services.tracking.api_keys import IngestCaller
from services.tracking.schemas import (
    MAX_INGEST_BATCH,
    CatalogAccepted,
    CheckInCreate,
    CheckInList,
    CheckInRead,
    DataOwnersAccepted,
    DepartmentProgress,
    IngestRequest,
    IngestResult,
    KpiProgressRead,
    OpsIngestion,
    ProgressPage,
    StalenessEvaluation,
)

__all__ = ["router"]

_CYCLE = "/v1/cycles/{cycle_id}"
registration = APIRouter(prefix=_CYCLE, tags=["catalog"])
progress = APIRouter(prefix=_CYCLE, tags=["progress"])
exports = APIRouter(prefix=_CYCLE, tags=["exports"])
sla = APIRouter(prefix=_CYCLE, tags=["sla"])
check_ins = APIRouter(prefix=_CYCLE, tags=["check-ins"])
ingest = APIRouter(prefix="/v1/ingest", tags=["ingest"])
ops = APIRouter(prefix="/v1/ops", tags=["ops"])
"""One router per OpenAPI tag, so each route states only its own path and summary."""

KpiId = Annotated[str, Path(min_length=1, max_length=64, description="The KPI or goal id from the catalog.")]

SLA_READERS = (Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD)
"""Who reads the stale-KPI report: HR, ops and department heads (no shared tuple is exactly this)."""

HrAdmin = Annotated[Principal, requires(*HR)]
Reader = Annotated[Principal, requires(*EVERYONE)]
Person = Annotated[Principal, requires(*STAFF)]
Machine = Annotated[Principal, requires(*MACHINE)]
SlaReader = Annotated[Principal, requires(*SLA_READERS)]
Ops = Annotated[Principal, requires(*OPS_ROLES)]


def _rollup_touch(request: Request) -> Callable[[], None] | None:
    """The live roll-up's mark (``rollup.RollupPusher.touch``), when the app runs one."""
    pusher = getattr(request.app.state, "rollup", None)
    return pusher.touch if pusher is not None else None


RollupTouch = Annotated[Callable[[], None] | None, Depends(_rollup_touch)]


@registration.put(
    "/kpis",
    summary="Register the cycle's KPI catalog (idempotent replace)",
    description=(
        "Pushed by the workflow from the goals service. KPIs whose metric mapping is unchanged keep their "
        "progress; new or re-mapped KPIs are back-filled from events already stored. `late_data_policy` says "
        "what happens to events whose occurred_at is outside the period: accept (count), reject (DLQ), "
        "next_period (keep, count only in the cycle covering it)."
    ),
)
async def put_kpis(
    cycle_id: CycleId,
    catalog: KpiCatalog,
    session: SessionDep,
    _principal: HrAdmin,
    late_data_policy: Annotated[LateDataPolicy, Query()] = LateDataPolicy.ACCEPT,
    grace_hours: Annotated[float, Query(ge=0, le=24 * 30, description="Grace after each KPI's frequency.")] = 1.0,
    check_in_cadence_days: Annotated[int, Query(ge=1, le=90)] = 14,
) -> CatalogAccepted:
    return await service.replace_catalog(
        session=session,
        cycle_id=cycle_id,
        catalog=catalog,
        late_data_policy=late_data_policy,
        grace_hours=grace_hours,
        check_in_cadence_days=check_in_cadence_days,
    )


@registration.put(
    "/data-owners",
    summary="Register who answers for each department's data (idempotent replace; sent by the cycles service)",
    description=(
        "contracts.org.DataOwnerDirectory, frozen when the cycle starts: every department with its data steward "
        "(else its head) and the departments the cycle runs. Stale-KPI reminders (GET /pending) go to the steward "
        "of the KPI's data owner, and a data owner outside the cycle is reminded by the workflow of the department "
        "the KPI counts for."
    ),
)
async def put_data_owners(
    cycle_id: CycleId, directory: DataOwnerDirectory, session: SessionDep, _principal: HrAdmin
) -> DataOwnersAccepted:
    return await service.replace_data_owners(session=session, cycle_id=cycle_id, directory=directory)


@progress.get(
    "/progress", summary="KPI progress: current value, attainment, staleness (per-person KPIs scoped to the caller)"
)
async def list_progress(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Reader,
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    employee_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ProgressPage:
    return await service.list_progress(
        session=session,
        cycle_id=cycle_id,
        principal=principal,
        department_id=department_id,
        employee_id=employee_id,
        limit=limit,
        offset=offset,
    )


@progress.get(
    "/kpis/{kpi_id}/progress",
    summary="One KPI's progress with its trend (last buckets of one update period each, and the slope)",
)
async def kpi_progress(
    cycle_id: CycleId,
    kpi_id: KpiId,
    session: SessionDep,
    principal: Reader,
    buckets: Annotated[int, Query(ge=1, le=500)] = 12,
) -> KpiProgressRead:
    return await service.kpi_progress(
        session=session, cycle_id=cycle_id, kpi_id=kpi_id, principal=principal, buckets=buckets
    )


@progress.get("/departments/progress", summary="Per-department roll-up: KPI count, with data, stale, mean attainment")
async def department_progress(cycle_id: CycleId, session: SessionDep, _p: Reader) -> list[DepartmentProgress]:
    return await service.department_rollup(session=session, cycle_id=cycle_id)


@exports.get(
    "/progress-export", summary="Current actual of every KPI, for evaluation (contracts.tracking.ProgressExport)"
)
async def progress_export(cycle_id: CycleId, session: SessionDep, _p: Machine) -> ProgressExport:
    return await service.progress_export(session=session, cycle_id=cycle_id)


@exports.get(
    "/pending",
    summary="Stale KPIs a department's workflow reminds about, each with the person who answers for its data "
    "(contracts.cycle.PendingReport, kind 'stale_kpi')",
)
async def pending(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Machine,
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Annotated[Stage, Query()] = Stage.TRACKING,
) -> PendingReport:
    return await service.pending_report(session=session, cycle_id=cycle_id, department_id=department_id, stage=stage)


@sla.get("/stale-kpis", summary="Stale KPIs grouped by data-owner department (no event within frequency + grace)")
async def stale_kpis(cycle_id: CycleId, session: SessionDep, _p: SlaReader) -> StaleKpiReport:
    return await service.stale_report(session=session, cycle_id=cycle_id)


@sla.post(
    "/staleness/evaluate", summary="Evaluate staleness now and record KpiStale/KpiFresh domain events for changes"
)
async def evaluate_staleness(cycle_id: CycleId, session: SessionDep, _p: Machine) -> StalenessEvaluation:
    return await service.evaluate_staleness(session=session, cycle_id=cycle_id)


@check_ins.post(
    "/check-ins",
    status_code=status.HTTP_201_CREATED,
    summary="Check in on a KPI or goal: a comment and a confidence level from 1 to 5 (and the current value of "
    "a key result without a metric)",
)
async def add_check_in(
    cycle_id: CycleId, body: CheckInCreate, session: SessionDep, principal: Person, on_value: RollupTouch
) -> CheckInRead:
    return await service.add_check_in(
        session=session, cycle_id=cycle_id, body=body, principal=principal, on_value=on_value
    )


@check_ins.get(
    "/kpis/{kpi_id}/check-ins", summary="Check-ins on a KPI, newest first, with the cadence (last, next due, overdue)"
)
async def list_check_ins(
    cycle_id: CycleId, kpi_id: KpiId, session: SessionDep, principal: Reader, limit: Limit = 100, offset: Offset = 0
) -> CheckInList:
    return await service.list_check_ins(
        session=session, cycle_id=cycle_id, kpi_id=kpi_id, principal=principal, limit=limit, offset=offset
    )


@ingest.post(
    "/metrics",
    status_code=status.HTTP_202_ACCEPTED,
    summary=f"Publish up to {MAX_INGEST_BATCH} metric events over HTTP (department systems, own department only)",
    description=(
        "Each event is validated on its own; valid ones are published to metrics.v1 (acknowledged by the "
        "broker before the response), invalid ones are reported by index. 202 when at least one event was "
        "accepted, 422 when none was. 403 when any event names another department than the caller's. "
        "Authenticate with a department_system bearer token or an X-API-Key header (a key from /v1/api-keys "
        "acts as a department system of its department); 401 for a missing, unknown, revoked or expired one. "
        "429 (with Retry-After) when the department exceeds its rate (TANDEM_INGEST_RATE_PER_SECOND events/s, "
        "burst TANDEM_INGEST_RATE_BURST); 413 when the body exceeds TANDEM_MAX_BODY_BYTES."
    ),
    response_model=IngestResult,
    responses={
        413: {"description": "The body exceeds TANDEM_MAX_BODY_BYTES."},
        429: {"description": "The department is over its ingest rate; retry after the Retry-After seconds."},
    },
)
async def ingest_metrics(body: IngestRequest, request: Request, principal: IngestCaller) -> JSONResponse:
    enforce_ingest_rate(request, key=principal.department_id or principal.sub, cost=len(body.events))
    result = await service.ingest_metrics(
        events=body.events, principal=principal, publisher=request.app.state.metric_publisher
    )
    if not result.accepted:  # shaped like every other 422 (a 'detail'), with the per-event errors alongside
        detail = f"none of the {len(result.rejected)} events is valid; 'rejected' lists each one's errors by index"
        return JSONResponse(status_code=422, content={"detail": detail, **result.model_dump(mode="json")})
    return JSONResponse(status_code=status.HTTP_202_ACCEPTED, content=result.model_dump(mode="json"))


@ops.get(
    "/ingestion",
    summary="Ingestion health: consumer lag per partition, liveness (stalled since ...), DLQ count and latest "
    "reasons, conflicting duplicates, unmapped events",
)
async def ops_ingestion(request: Request, session: SessionDep, _p: Ops) -> OpsIngestion:
    state = request.app.state
    return await service.ops_ingestion(
        session=session,
        settings=state.settings,
        group_id=state.tracking_group,
        topic=state.tracking_topic,
        consumer=getattr(state, "tracking_consumer", None),
        watch=state.ingestion_watch,
    )


router = APIRouter()
for _router in (registration, progress, exports, sla, check_ins, ingest, ops):
    router.include_router(_router)
