"""Routes of the tracking service. Thin: the rules live in ``service.py``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse

from contracts.cycle import PendingReport, Stage
from contracts.goals import KpiCatalog
from contracts.tracking import LateDataPolicy, ProgressExport, StaleKpiReport
from services.common.auth import Principal, Role, requires
from services.common.deps import SessionDep
from services.common.errors import DomainError
from services.common.kafka import KafkaSecurity, principal_headers
from services.common.limits import enforce_ingest_rate
from services.common.participants import load_org
from services.tracking import service
from services.tracking.api_keys import IngestCaller
from services.tracking.consumer import consumer_lag
from services.tracking.models import TrackingDepartment, TrackingParticipant
from services.tracking.publisher import MetricPublisher
from services.tracking.schemas import (
    MAX_INGEST_BATCH,
    CatalogAccepted,
    CheckInCreate,
    CheckInList,
    CheckInRead,
    DepartmentProgress,
    IngestRequest,
    IngestResult,
    KpiProgressRead,
    OpsIngestion,
    PartitionLagRead,
    ProgressPage,
    StalenessEvaluation,
)

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")

CycleId = Annotated[str, Path(min_length=1, max_length=64, description="The review cycle.")]
KpiId = Annotated[str, Path(min_length=1, max_length=64, description="The KPI or goal id from the catalog.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")]

_PEOPLE = (Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)


@router.put(
    "/cycles/{cycle_id}/kpis",
    tags=["catalog"],
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
    _principal: Annotated[Principal, requires(Role.HR_ADMIN)],
    late_data_policy: Annotated[LateDataPolicy, Query()] = LateDataPolicy.ACCEPT,
    grace_hours: Annotated[float, Query(ge=0, le=24 * 30, description="Grace after each KPI's frequency.")] = 1.0,
    check_in_cadence_days: Annotated[int, Query(ge=1, le=90)] = 14,
) -> CatalogAccepted:
    if catalog.cycle_id != cycle_id:
        raise DomainError(
            f"catalog is for cycle {catalog.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id"
        )
    return await service.replace_catalog(
        session=session,
        catalog=catalog,
        late_data_policy=late_data_policy,
        grace_hours=grace_hours,
        check_in_cadence_days=check_in_cadence_days,
    )


@router.get(
    "/cycles/{cycle_id}/progress",
    tags=["progress"],
    summary="KPI progress: current value, attainment, staleness (per-person KPIs scoped to the caller)",
)
async def list_progress(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*_PEOPLE)],
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    employee_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ProgressPage:
    org = await load_org(session, TrackingParticipant, TrackingDepartment, cycle_id)
    now = datetime.now(UTC)
    total, items = await service.list_progress(
        session=session,
        cycle_id=cycle_id,
        principal=principal,
        org=org,
        department_id=department_id,
        employee_id=employee_id,
        limit=limit,
        offset=offset,
        now=now,
    )
    return ProgressPage(cycle_id=cycle_id, as_of=now, total=total, items=items)


@router.get(
    "/cycles/{cycle_id}/kpis/{kpi_id}/progress",
    tags=["progress"],
    summary="One KPI's progress with its trend (last buckets of one update period each, and the slope)",
)
async def kpi_progress(
    cycle_id: CycleId,
    kpi_id: KpiId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*_PEOPLE)],
    buckets: Annotated[int, Query(ge=1, le=500)] = 12,
) -> KpiProgressRead:
    org = await load_org(session, TrackingParticipant, TrackingDepartment, cycle_id)
    return await service.kpi_progress(
        session=session, cycle_id=cycle_id, kpi_id=kpi_id, principal=principal, org=org, buckets=buckets
    )


@router.get(
    "/cycles/{cycle_id}/departments/progress",
    tags=["progress"],
    summary="Per-department roll-up: KPI count, with data, stale, mean attainment",
)
async def department_progress(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(*_PEOPLE)],
) -> list[DepartmentProgress]:
    return await service.department_rollup(session=session, cycle_id=cycle_id)


@router.get(
    "/cycles/{cycle_id}/progress-export",
    tags=["exports"],
    summary="Current actual of every KPI, for evaluation (contracts.tracking.ProgressExport)",
)
async def progress_export(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS)],
) -> ProgressExport:
    return await service.progress_export(session=session, cycle_id=cycle_id)


@router.get(
    "/cycles/{cycle_id}/pending",
    tags=["exports"],
    summary="Stale KPIs owned by a department (contracts.cycle.PendingReport, kind 'stale_kpi')",
)
async def pending(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS)],
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Annotated[Stage, Query()] = Stage.TRACKING,
) -> PendingReport:
    if stage != Stage.TRACKING:
        raise DomainError(
            f"the tracking service reports only stage 'tracking', not {stage.value!r}", field="stage"
        )
    return await service.pending_report(session=session, cycle_id=cycle_id, department_id=department_id)


@router.get(
    "/cycles/{cycle_id}/stale-kpis",
    tags=["sla"],
    summary="Stale KPIs grouped by data-owner department (no event within frequency + grace)",
)
async def stale_kpis(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD)],
) -> StaleKpiReport:
    return await service.stale_report(session=session, cycle_id=cycle_id)


@router.post(
    "/cycles/{cycle_id}/staleness/evaluate",
    tags=["sla"],
    summary="Evaluate staleness now and record KpiStale/KpiFresh domain events for changes",
)
async def evaluate_staleness(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS)],
) -> StalenessEvaluation:
    await service.get_catalog(session=session, cycle_id=cycle_id)
    return await service.evaluate_staleness(session=session, cycle_id=cycle_id)


@router.post(
    "/cycles/{cycle_id}/check-ins",
    tags=["check-ins"],
    status_code=status.HTTP_201_CREATED,
    summary="Check in on a KPI or goal: a comment and a confidence level from 1 to 5",
)
async def add_check_in(
    cycle_id: CycleId,
    body: CheckInCreate,
    session: SessionDep,
    principal: Annotated[Principal, requires(Role.EMPLOYEE, Role.MANAGER, Role.DEPT_HEAD, Role.HR_ADMIN)],
) -> CheckInRead:
    org = await load_org(session, TrackingParticipant, TrackingDepartment, cycle_id)
    return await service.add_check_in(session=session, cycle_id=cycle_id, body=body, principal=principal, org=org)


@router.get(
    "/cycles/{cycle_id}/kpis/{kpi_id}/check-ins",
    tags=["check-ins"],
    summary="Check-ins on a KPI, newest first, with the cadence (last, next due, overdue)",
)
async def list_check_ins(
    cycle_id: CycleId,
    kpi_id: KpiId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*_PEOPLE)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> CheckInList:
    org = await load_org(session, TrackingParticipant, TrackingDepartment, cycle_id)
    return await service.list_check_ins(
        session=session, cycle_id=cycle_id, kpi_id=kpi_id, principal=principal, org=org, limit=limit, offset=offset
    )


@router.post(
    "/ingest/metrics",
    tags=["ingest"],
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
async def ingest_metrics(
    body: IngestRequest,
    request: Request,
    principal: IngestCaller,
) -> JSONResponse:
    enforce_ingest_rate(request, key=principal.department_id or principal.sub, cost=len(body.events))
    accepted, rejected = service.validate_ingest(events=body.events, principal=principal)
    if accepted:
        publisher: MetricPublisher = request.app.state.metric_publisher
        try:
            await publisher.publish(
                accepted, headers=principal_headers(sub=principal.sub, department_id=principal.department_id or "")
            )
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who retries (dedup on event_id)
            log.warning("ingest publish failed: %s", exc)
            raise DomainError(
                f"Kafka is unavailable ({type(exc).__name__}); nothing was lost on our side, retry the batch",
                status_code=503,
            ) from exc
    result = IngestResult(accepted=len(accepted), rejected=rejected)
    if not accepted:  # shaped like every other 422 (a 'detail'), with the per-event errors alongside
        detail = f"none of the {len(rejected)} events is valid; 'rejected' lists each one's errors by index"
        return JSONResponse(status_code=422, content={"detail": detail, **result.model_dump(mode="json")})
    return JSONResponse(status_code=status.HTTP_202_ACCEPTED, content=result.model_dump(mode="json"))


@router.get(
    "/ops/ingestion",
    tags=["ops"],
    summary="Ingestion health: consumer lag per partition, DLQ count and latest reasons, unmapped events",
)
async def ops_ingestion(
    request: Request,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.OPS, Role.HR_ADMIN)],
) -> OpsIngestion:
    state = request.app.state
    partitions: list[PartitionLagRead] = []
    lag_error: str | None = None
    try:
        lags = await consumer_lag(
            state.settings.kafka_bootstrap_servers,
            group_id=state.tracking_group,
            topic=state.tracking_topic,
            timeout=5.0,
            security=KafkaSecurity.from_settings(state.settings),
        )
        partitions = [
            PartitionLagRead(partition=p.partition, end_offset=p.end_offset, committed=p.committed, lag=p.lag)
            for p in lags
        ]
    except Exception as exc:  # noqa: BLE001 - ops still sees the database figures
        lag_error = f"could not read the consumer lag from Kafka: {type(exc).__name__}: {exc}"
    dead_letters, latest = await service.dead_letter_summary(session=session)
    stored, unmapped, unmapped_metrics = await service.unmapped_summary(session=session)
    return OpsIngestion(
        consumer_group=state.tracking_group,
        topic=state.tracking_topic,
        partitions=partitions,
        total_lag=sum(p.lag for p in partitions) if lag_error is None else None,
        lag_error=lag_error,
        events_stored=stored,
        dead_letters=dead_letters,
        latest_dead_letters=latest,
        unmapped_events=unmapped,
        unmapped_metrics=unmapped_metrics,
    )
