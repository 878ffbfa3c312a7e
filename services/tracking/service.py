"""Tracking service layer: catalog registration, progress, staleness, check-ins and ops figures.

Functions are keyword-only and take an ``AsyncSession``; they never commit
(except where noted), so routes, background tasks and tests compose them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.events import MetricEvent
from contracts.goals import Aggregation, KpiCatalog, KpiDefinition
from contracts.tracking import (
    KpiActual,
    LateDataPolicy,
    ProgressExport,
    StaleKpi,
    StaleKpiDepartment,
    StaleKpiReport,
)
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.participants import OrgView
from services.tracking.ingest import apply_bucket_deltas, bucket_seconds_for
from services.tracking.models import (
    TrackingCatalog,
    TrackingCheckIn,
    TrackingDeadLetter,
    TrackingKpi,
    TrackingKpiBucket,
    TrackingMetricEvent,
    TrackingOutbox,
)
from services.tracking.rules import (
    Aggregate,
    EventStatus,
    KpiRule,
    aggregate_value,
    as_utc,
    attainment_pct,
    bucket_start,
    is_stale,
    period_bounds,
    stale_due_at,
    trend_slope,
)
from services.tracking.schemas import (
    CatalogAccepted,
    CheckInCreate,
    CheckInList,
    CheckInRead,
    DeadLetterRead,
    DepartmentProgress,
    IngestError,
    IngestRejected,
    KpiProgressRead,
    StalenessEvaluation,
    TrendPoint,
    UnmappedMetric,
)

__all__ = [
    "SERVICE",
    "add_check_in",
    "dead_letter_summary",
    "department_rollup",
    "evaluate_staleness",
    "get_catalog",
    "kpi_progress",
    "list_check_ins",
    "list_progress",
    "pending_report",
    "progress_export",
    "replace_catalog",
    "stale_report",
    "unmapped_summary",
    "validate_ingest",
]

SERVICE = "tracking"
_DEFINITION_FIELDS = tuple(KpiDefinition.model_fields)
_MAPPING_FIELDS = ("metric", "owner_department_id", "department_id", "employee_id")


def _now(now: datetime | None) -> datetime:
    return as_utc(now) if now is not None else datetime.now(UTC)


# --------------------------------------------------------------------------- catalog


async def get_catalog(*, session: AsyncSession, cycle_id: str) -> TrackingCatalog:
    catalog = await session.get(TrackingCatalog, cycle_id)
    if catalog is None:
        raise DomainError(
            f"cycle {cycle_id!r} has no KPI catalog in tracking yet; PUT /v1/cycles/{cycle_id}/kpis first",
            status_code=404,
            field="cycle_id",
        )
    return catalog


async def replace_catalog(
    *,
    session: AsyncSession,
    catalog: KpiCatalog,
    late_data_policy: LateDataPolicy,
    grace_hours: float,
    check_in_cadence_days: int,
    now: datetime | None = None,
) -> CatalogAccepted:
    """Idempotently replace the cycle's KPIs, keeping the aggregates of KPIs whose mapping did
    not change. New or re-mapped KPIs are back-filled from the events already stored. Commits."""
    now = _now(now)
    if catalog.period_end < catalog.period_start:
        raise DomainError("period_end must not be before period_start", field="period_end")
    seen: set[str] = set()
    for kpi in catalog.kpis:
        if kpi.kpi_id in seen:
            raise DomainError(f"kpi_id {kpi.kpi_id!r} appears twice in the catalog", field="kpis")
        seen.add(kpi.kpi_id)
        try:
            MetricEvent.model_validate(
                {
                    "event_id": "00000000-0000-0000-0000-000000000000",
                    "source": "check",
                    "department_id": kpi.owner_department_id,
                    "metric": kpi.metric,
                    "value": 0,
                    "unit": "x",
                    "occurred_at": now,
                }
            )
        except ValidationError as exc:
            raise DomainError(
                f"KPI {kpi.kpi_id!r}: metric {kpi.metric!r} or owner_department_id {kpi.owner_department_id!r} "
                f"can never match a MetricEvent ({exc.errors()[0]['msg']})",
                field="kpis",
            ) from exc

    header = await session.get(TrackingCatalog, catalog.cycle_id)
    if header is None:
        header = TrackingCatalog(cycle_id=catalog.cycle_id)
        session.add(header)
    header.period_start = catalog.period_start
    header.period_end = catalog.period_end
    header.late_data_policy = late_data_policy.value
    header.grace_hours = grace_hours
    header.check_in_cadence_days = check_in_cadence_days
    header.updated_at = now

    existing = {
        k.kpi_id: k
        for k in (await session.scalars(select(TrackingKpi).where(TrackingKpi.cycle_id == catalog.cycle_id))).all()
    }
    wanted = {k.kpi_id for k in catalog.kpis}
    gone = [kpi_id for kpi_id in existing if kpi_id not in wanted]
    if gone:
        await session.execute(
            delete(TrackingKpi).where(TrackingKpi.cycle_id == catalog.cycle_id, TrackingKpi.kpi_id.in_(gone))
        )
        await session.execute(
            delete(TrackingKpiBucket).where(
                TrackingKpiBucket.cycle_id == catalog.cycle_id, TrackingKpiBucket.kpi_id.in_(gone)
            )
        )
    to_backfill: list[TrackingKpi] = []
    for definition in catalog.kpis:
        values = definition.model_dump(mode="json")
        row = existing.get(definition.kpi_id)
        if row is None:
            row = TrackingKpi(cycle_id=catalog.cycle_id, registered_at=now, **_reset_aggregate())
            session.add(row)
            to_backfill.append(row)
        elif any(getattr(row, f) != values[f] for f in _MAPPING_FIELDS) or row.update_frequency_hours != values[
            "update_frequency_hours"
        ]:
            for name, value in _reset_aggregate().items():
                setattr(row, name, value)
            await session.execute(
                delete(TrackingKpiBucket).where(
                    TrackingKpiBucket.cycle_id == catalog.cycle_id, TrackingKpiBucket.kpi_id == row.kpi_id
                )
            )
            to_backfill.append(row)
        for name in _DEFINITION_FIELDS:
            setattr(row, name, values[name])
    await session.flush()
    backfilled = await _backfill(session=session, header=header, kpis=to_backfill)
    await session.commit()
    return CatalogAccepted(
        cycle_id=catalog.cycle_id,
        kpis=len(catalog.kpis),
        late_data_policy=late_data_policy,
        grace_hours=grace_hours,
        check_in_cadence_days=check_in_cadence_days,
        backfilled_events=backfilled,
    )


def _reset_aggregate() -> dict[str, object]:
    return {
        "event_count": 0,
        "value_sum": 0.0,
        "value_min": None,
        "value_max": None,
        "last_value": None,
        "last_occurred_at": None,
        "last_event_id": None,
        "last_received_at": None,
        "stale": False,
        "stale_since": None,
    }


async def _backfill(*, session: AsyncSession, header: TrackingCatalog, kpis: list[TrackingKpi]) -> int:
    """Count already stored events into new or re-mapped KPIs (the consumer only sees new events)."""
    start, end = period_bounds(header.period_start, header.period_end)
    policy = LateDataPolicy(header.late_data_policy)
    total = 0
    for kpi in kpis:
        rule = _rule(kpi, header)
        query = select(TrackingMetricEvent).where(
            TrackingMetricEvent.metric == kpi.metric,
            TrackingMetricEvent.department_id == kpi.owner_department_id,
            TrackingMetricEvent.status != EventStatus.REJECTED,
        )
        if kpi.employee_id is not None:
            query = query.where(TrackingMetricEvent.employee_id == kpi.employee_id)
        aggregate = Aggregate()
        buckets: dict[tuple[str, str, datetime], Aggregate] = defaultdict(Aggregate)
        newly_mapped: list[int] = []
        latest_received: datetime | None = None
        for event in (await session.scalars(query)).all():
            dimensions = json.loads(event.dimensions) if event.dimensions else {}
            if not rule.matches_fields(
                metric=event.metric,
                department_id=event.department_id,
                employee_id=event.employee_id,
                dimensions=dimensions,
            ):
                continue
            occurred_at = as_utc(event.occurred_at)
            if not (start <= occurred_at < end or policy == LateDataPolicy.ACCEPT):
                continue
            aggregate.add(event.value, occurred_at, event.event_id)
            buckets[(kpi.cycle_id, kpi.kpi_id, bucket_start(occurred_at, rule.bucket_seconds))].add(
                event.value, occurred_at, event.event_id
            )
            received = as_utc(event.received_at)
            latest_received = received if latest_received is None else max(latest_received, received)
            if event.status != EventStatus.APPLIED:
                newly_mapped.append(event.id)
        if aggregate.count == 0:
            continue
        total += aggregate.count
        kpi.event_count = aggregate.count
        kpi.value_sum = aggregate.total
        kpi.value_min = aggregate.minimum
        kpi.value_max = aggregate.maximum
        kpi.last_value = aggregate.last_value
        kpi.last_occurred_at = aggregate.last_occurred_at
        kpi.last_event_id = aggregate.last_event_id
        kpi.last_received_at = latest_received
        await session.flush()
        await apply_bucket_deltas(await session.connection(), dict(buckets))
        if newly_mapped:
            await session.execute(
                update(TrackingMetricEvent)
                .where(TrackingMetricEvent.id.in_(newly_mapped))
                .values(status=EventStatus.APPLIED)
            )
    return total


def _rule(kpi: TrackingKpi, header: TrackingCatalog) -> KpiRule:
    start, end = period_bounds(header.period_start, header.period_end)
    return KpiRule(
        cycle_id=kpi.cycle_id,
        kpi_id=kpi.kpi_id,
        metric=kpi.metric,
        owner_department_id=kpi.owner_department_id,
        department_id=kpi.department_id,
        employee_id=kpi.employee_id,
        period_start=start,
        period_end=end,
        late_data_policy=LateDataPolicy(header.late_data_policy),
        bucket_seconds=bucket_seconds_for(kpi.update_frequency_hours),
    )


# --------------------------------------------------------------------------- progress


def _current_value(kpi: TrackingKpi) -> float | None:
    return aggregate_value(
        Aggregation(kpi.aggregation),
        count=kpi.event_count,
        total=kpi.value_sum,
        minimum=kpi.value_min,
        maximum=kpi.value_max,
        last_value=kpi.last_value,
    )


def _due_at(kpi: TrackingKpi, header: TrackingCatalog) -> datetime:
    start, _end = period_bounds(header.period_start, header.period_end)
    return stale_due_at(
        last_received_at=kpi.last_received_at,
        registered_at=kpi.registered_at,
        period_start=start,
        frequency_hours=kpi.update_frequency_hours,
        grace_hours=header.grace_hours,
    )


def _is_stale(kpi: TrackingKpi, header: TrackingCatalog, now: datetime) -> bool:
    start, end = period_bounds(header.period_start, header.period_end)
    return is_stale(
        now=now,
        last_received_at=kpi.last_received_at,
        registered_at=kpi.registered_at,
        period_start=start,
        period_end=end,
        frequency_hours=kpi.update_frequency_hours,
        grace_hours=header.grace_hours,
    )


def _progress(kpi: TrackingKpi, header: TrackingCatalog, now: datetime) -> KpiProgressRead:
    current = _current_value(kpi)
    return KpiProgressRead(
        cycle_id=kpi.cycle_id,
        kpi_id=kpi.kpi_id,
        name=kpi.name,
        level=kpi.level,
        metric=kpi.metric,
        unit=kpi.unit,
        aggregation=kpi.aggregation,
        direction=kpi.direction,
        start_value=kpi.start_value,
        target_value=kpi.target_value,
        owner_department_id=kpi.owner_department_id,
        department_id=kpi.department_id,
        employee_id=kpi.employee_id,
        current_value=current,
        attainment_pct=attainment_pct(
            current=current, start=kpi.start_value, target=kpi.target_value, direction=kpi.direction
        ),
        event_count=kpi.event_count,
        last_occurred_at=as_utc(kpi.last_occurred_at) if kpi.last_occurred_at else None,
        last_event_at=as_utc(kpi.last_received_at) if kpi.last_received_at else None,
        stale=_is_stale(kpi, header, now),
        due_at=_due_at(kpi, header),
    )


def _visible(kpi: TrackingKpi, principal: Principal, org: OrgView) -> bool:
    """Per-person KPIs follow the org scoping; company and department KPIs are visible to everyone."""
    return kpi.employee_id is None or org.can_see(principal, kpi.employee_id)


async def _kpis(
    session: AsyncSession, cycle_id: str, *, department_id: str | None = None, employee_id: str | None = None
) -> list[TrackingKpi]:
    query = select(TrackingKpi).where(TrackingKpi.cycle_id == cycle_id).order_by(TrackingKpi.kpi_id)
    if department_id is not None:
        query = query.where(
            (TrackingKpi.department_id == department_id)
            | (TrackingKpi.department_id.is_(None) & (TrackingKpi.owner_department_id == department_id))
        )
    if employee_id is not None:
        query = query.where(TrackingKpi.employee_id == employee_id)
    return list((await session.scalars(query)).all())


async def list_progress(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    org: OrgView,
    department_id: str | None = None,
    employee_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[int, list[KpiProgressRead]]:
    now = _now(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    rows = [
        k
        for k in await _kpis(session, cycle_id, department_id=department_id, employee_id=employee_id)
        if _visible(k, principal, org)
    ]
    return len(rows), [_progress(k, header, now) for k in rows[offset : offset + limit]]


async def kpi_progress(
    *,
    session: AsyncSession,
    cycle_id: str,
    kpi_id: str,
    principal: Principal,
    org: OrgView,
    buckets: int = 12,
    now: datetime | None = None,
) -> KpiProgressRead:
    """One KPI with its trend: the last ``buckets`` buckets (one update period each) and their slope."""
    now = _now(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    kpi = await session.get(TrackingKpi, (cycle_id, kpi_id))
    if kpi is None or not _visible(kpi, principal, org):
        raise DomainError(f"KPI {kpi_id!r} not found in cycle {cycle_id!r}", status_code=404, field="kpi_id")
    rows = (
        await session.scalars(
            select(TrackingKpiBucket)
            .where(TrackingKpiBucket.cycle_id == cycle_id, TrackingKpiBucket.kpi_id == kpi_id)
            .order_by(TrackingKpiBucket.bucket_start.desc())
            .limit(buckets)
        )
    ).all()
    points = [
        TrendPoint(
            bucket_start=as_utc(b.bucket_start),
            value=aggregate_value(
                Aggregation(kpi.aggregation),
                count=b.event_count,
                total=b.value_sum,
                minimum=b.value_min,
                maximum=b.value_max,
                last_value=b.last_value,
            ),
            event_count=b.event_count,
        )
        for b in reversed(rows)
    ]
    result = _progress(kpi, header, now)
    result.trend = points
    result.trend_slope = trend_slope([p.value for p in points if p.value is not None])
    return result


async def department_rollup(
    *, session: AsyncSession, cycle_id: str, now: datetime | None = None
) -> list[DepartmentProgress]:
    """Per department (the KPI's department, else its data owner): counts and mean attainment."""
    now = _now(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    groups: dict[str, list[KpiProgressRead]] = defaultdict(list)
    for kpi in await _kpis(session, cycle_id):
        groups[kpi.department_id or kpi.owner_department_id].append(_progress(kpi, header, now))
    result = []
    for department_id in sorted(groups):
        items = groups[department_id]
        attained = [p.attainment_pct for p in items if p.attainment_pct is not None]
        result.append(
            DepartmentProgress(
                department_id=department_id,
                kpi_count=len(items),
                with_data=sum(1 for p in items if p.event_count > 0),
                stale_count=sum(1 for p in items if p.stale),
                avg_attainment_pct=round(sum(attained) / len(attained), 4) if attained else None,
            )
        )
    return result


async def progress_export(*, session: AsyncSession, cycle_id: str, now: datetime | None = None) -> ProgressExport:
    now = _now(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    return ProgressExport(
        cycle_id=cycle_id,
        as_of=now,
        actuals=[
            KpiActual(
                kpi_id=k.kpi_id,
                actual_value=_current_value(k),
                event_count=k.event_count,
                last_event_at=as_utc(k.last_occurred_at) if k.last_occurred_at else None,
                stale=_is_stale(k, header, now),
            )
            for k in await _kpis(session, cycle_id)
        ],
    )


# --------------------------------------------------------------------------- staleness


def _stale_kpi(kpi: TrackingKpi, header: TrackingCatalog) -> StaleKpi:
    return StaleKpi(
        kpi_id=kpi.kpi_id,
        name=kpi.name,
        metric=kpi.metric,
        owner_department_id=kpi.owner_department_id,
        update_frequency_hours=kpi.update_frequency_hours,
        last_event_at=as_utc(kpi.last_received_at) if kpi.last_received_at else None,
        due_at=_due_at(kpi, header),
    )


async def stale_report(*, session: AsyncSession, cycle_id: str, now: datetime | None = None) -> StaleKpiReport:
    now = _now(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    groups: dict[str, list[StaleKpi]] = defaultdict(list)
    for kpi in await _kpis(session, cycle_id):
        if _is_stale(kpi, header, now):
            groups[kpi.owner_department_id].append(_stale_kpi(kpi, header))
    return StaleKpiReport(
        cycle_id=cycle_id,
        as_of=now,
        departments=[StaleKpiDepartment(department_id=d, kpis=groups[d]) for d in sorted(groups)],
    )


async def pending_report(
    *, session: AsyncSession, cycle_id: str, department_id: str, now: datetime | None = None
) -> PendingReport:
    """Tracking's answer to the workflow: KPIs this department owns, and which are stale."""
    now = _now(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    owned = (
        await session.scalars(
            select(TrackingKpi)
            .where(TrackingKpi.cycle_id == cycle_id, TrackingKpi.owner_department_id == department_id)
            .order_by(TrackingKpi.kpi_id)
        )
    ).all()
    stale = [k for k in owned if _is_stale(k, header, now)]
    return PendingReport(
        cycle_id=cycle_id,
        stage=Stage.TRACKING,
        department_id=department_id,
        total=len(owned),
        done=len(owned) - len(stale),
        pending=[PendingItem(item_id=k.kpi_id, kind="stale_kpi", owner_id=None) for k in stale[:500]],
    )


async def evaluate_staleness(
    *, session: AsyncSession, cycle_id: str | None = None, now: datetime | None = None
) -> StalenessEvaluation:
    """Persist staleness changes and write a ``KpiStale`` / ``KpiFresh`` domain event for each. Commits."""
    now = _now(now)
    headers = {
        h.cycle_id: h
        for h in (
            await session.scalars(
                select(TrackingCatalog).where(TrackingCatalog.cycle_id == cycle_id)
                if cycle_id
                else select(TrackingCatalog)
            )
        ).all()
    }
    query = select(TrackingKpi).where(TrackingKpi.cycle_id.in_(list(headers))).order_by(
        TrackingKpi.cycle_id, TrackingKpi.kpi_id
    )
    kpis = (await session.scalars(query)).all()
    result = StalenessEvaluation(evaluated=len(kpis), became_stale=[], became_fresh=[])
    for kpi in kpis:
        header = headers[kpi.cycle_id]
        stale = _is_stale(kpi, header, now)
        if stale == kpi.stale:
            continue
        kpi.stale = stale
        kpi.stale_since = now if stale else None
        (result.became_stale if stale else result.became_fresh).append(f"{kpi.cycle_id}/{kpi.kpi_id}")
        add_event(
            session,
            TrackingOutbox,
            new_event(
                service=SERVICE,
                type="KpiStale" if stale else "KpiFresh",
                cycle_id=kpi.cycle_id,
                subject_id=kpi.kpi_id,
                payload={
                    "kpi_id": kpi.kpi_id,
                    "owner_department_id": kpi.owner_department_id,
                    "metric": kpi.metric,
                    "last_event_at": as_utc(kpi.last_received_at).isoformat() if kpi.last_received_at else None,
                    "due_at": _due_at(kpi, header).isoformat(),
                },
            ),
        )
    await session.commit()
    return result


# --------------------------------------------------------------------------- check-ins


def _author_role(principal: Principal, kpi: TrackingKpi, org: OrgView) -> str:
    if kpi.employee_id is not None and principal.employee_id == kpi.employee_id:
        return "employee"
    if principal.has(Role.HR_ADMIN):
        return "hr_admin"
    if kpi.employee_id is not None:
        if principal.employee_id and kpi.employee_id in org.reports_of(principal.employee_id):
            return "manager"
        if principal.has(Role.DEPT_HEAD) and org.can_see(principal, kpi.employee_id):
            return "dept_head"
        raise DomainError(
            f"only the employee {kpi.employee_id!r}, their managers or department head may check in on KPI "
            f"{kpi.kpi_id!r}",
            status_code=403,
        )
    department = kpi.department_id or kpi.owner_department_id
    if principal.has(Role.DEPT_HEAD, Role.MANAGER) and (
        principal.department_id == department
        or (principal.employee_id is not None and department in org.headed_by(principal.employee_id))
    ):
        return "dept_head" if principal.has(Role.DEPT_HEAD) else "manager"
    raise DomainError(
        f"only managers or the head of department {department!r} may check in on KPI {kpi.kpi_id!r}",
        status_code=403,
    )


async def add_check_in(
    *,
    session: AsyncSession,
    cycle_id: str,
    body: CheckInCreate,
    principal: Principal,
    org: OrgView,
    now: datetime | None = None,
) -> CheckInRead:
    """Record a check-in (comment + confidence 1-5) on a KPI or goal. Commits."""
    now = _now(now)
    await get_catalog(session=session, cycle_id=cycle_id)
    kpi = await session.get(TrackingKpi, (cycle_id, body.kpi_id))
    if kpi is None:
        raise DomainError(f"KPI {body.kpi_id!r} not found in cycle {cycle_id!r}", status_code=404, field="kpi_id")
    row = TrackingCheckIn(
        cycle_id=cycle_id,
        kpi_id=body.kpi_id,
        author_sub=principal.sub,
        author_employee_id=principal.employee_id,
        author_role=_author_role(principal, kpi, org),
        comment=body.comment,
        confidence=body.confidence,
        created_at=now,
    )
    session.add(row)
    await session.commit()
    return _check_in_read(row)


def _check_in_read(row: TrackingCheckIn) -> CheckInRead:
    return CheckInRead(
        id=row.id,
        cycle_id=row.cycle_id,
        kpi_id=row.kpi_id,
        author_sub=row.author_sub,
        author_employee_id=row.author_employee_id,
        author_role=row.author_role,
        comment=row.comment,
        confidence=row.confidence,
        created_at=as_utc(row.created_at),
    )


async def list_check_ins(
    *,
    session: AsyncSession,
    cycle_id: str,
    kpi_id: str,
    principal: Principal,
    org: OrgView,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> CheckInList:
    now = _now(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    kpi = await session.get(TrackingKpi, (cycle_id, kpi_id))
    if kpi is None or not _visible(kpi, principal, org):
        raise DomainError(f"KPI {kpi_id!r} not found in cycle {cycle_id!r}", status_code=404, field="kpi_id")
    rows = (
        await session.scalars(
            select(TrackingCheckIn)
            .where(TrackingCheckIn.cycle_id == cycle_id, TrackingCheckIn.kpi_id == kpi_id)
            .order_by(TrackingCheckIn.created_at.desc(), TrackingCheckIn.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    last = (
        await session.execute(
            select(func.max(TrackingCheckIn.created_at)).where(
                TrackingCheckIn.cycle_id == cycle_id, TrackingCheckIn.kpi_id == kpi_id
            )
        )
    ).scalar_one_or_none()
    last_at = as_utc(last) if last is not None else None
    next_due = (last_at or as_utc(kpi.registered_at)) + timedelta(days=header.check_in_cadence_days)
    return CheckInList(
        cycle_id=cycle_id,
        kpi_id=kpi_id,
        cadence_days=header.check_in_cadence_days,
        last_check_in_at=last_at,
        next_due_at=next_due,
        overdue=now > next_due,
        items=[_check_in_read(r) for r in rows],
    )


# --------------------------------------------------------------------------- ops


async def dead_letter_summary(*, session: AsyncSession, latest: int = 10) -> tuple[int, list[DeadLetterRead]]:
    count = (await session.execute(select(func.count()).select_from(TrackingDeadLetter))).scalar_one()
    rows = (
        await session.scalars(
            select(TrackingDeadLetter).order_by(TrackingDeadLetter.rejected_at.desc(), TrackingDeadLetter.id.desc())
            .limit(latest)
        )
    ).all()
    return int(count), [
        DeadLetterRead(
            topic=r.topic, partition=r.partition, offset=r.offset, reason=r.reason, rejected_at=as_utc(r.rejected_at)
        )
        for r in rows
    ]


async def unmapped_summary(*, session: AsyncSession, top: int = 20) -> tuple[int, int, list[UnmappedMetric]]:
    """(events stored, unmapped events, the most frequent unmapped metric keys)."""
    stored = (await session.execute(select(func.count()).select_from(TrackingMetricEvent))).scalar_one()
    rows = (
        await session.execute(
            select(TrackingMetricEvent.metric, TrackingMetricEvent.department_id, func.count().label("n"))
            .where(TrackingMetricEvent.status == EventStatus.UNMAPPED)
            .group_by(TrackingMetricEvent.metric, TrackingMetricEvent.department_id)
            .order_by(func.count().desc())
        )
    ).all()
    unmapped = sum(int(r.n) for r in rows)
    return (
        int(stored),
        unmapped,
        [UnmappedMetric(metric=r.metric, department_id=r.department_id, events=int(r.n)) for r in rows[:top]],
    )


# --------------------------------------------------------------------------- HTTP ingest


def validate_ingest(
    *, events: list[dict[str, object]], principal: Principal
) -> tuple[list[MetricEvent], list[IngestRejected]]:
    """Validate each event on its own; a department system may publish only for its own department."""
    own = principal.department_id
    if not own:
        raise DomainError(
            "this token has no department_id claim; a department system token must name its department",
            status_code=403,
        )
    foreign = [i for i, e in enumerate(events) if isinstance(e, dict) and e.get("department_id") not in (None, own)]
    if foreign:
        raise DomainError(
            f"a department system may publish only for its own department {own!r}; "
            f"events at index {foreign[:20]} name another department",
            status_code=403,
            field="events.department_id",
        )
    accepted: list[MetricEvent] = []
    rejected: list[IngestRejected] = []
    for index, raw in enumerate(events):
        try:
            accepted.append(MetricEvent.model_validate(raw))
        except ValidationError as exc:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            rejected.append(
                IngestRejected(
                    index=index,
                    event_id=str(event_id) if event_id is not None else None,
                    errors=[
                        IngestError(field=".".join(str(p) for p in err["loc"]) or "event", message=err["msg"])
                        for err in exc.errors()
                    ],
                )
            )
    return accepted, rejected
