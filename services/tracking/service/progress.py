"""KPI progress as people read it: current value, attainment, staleness and trend, per-person KPIs
scoped to the caller by the cycle's org snapshot; the department roll-up and evaluation's export."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.goals import Aggregation
from contracts.tracking import KpiActual, ProgressExport
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.participants import OrgView, load_org
from services.tracking.models import (
    TrackingCatalog,
    TrackingDepartment,
    TrackingKpi,
    TrackingKpiBucket,
    TrackingParticipant,
)
from services.tracking.rules import (
    aggregate_value,
    as_utc,
    attainment_pct,
    fed_by_check_ins,
    is_stale,
    period_bounds,
    stale_due_at,
    trend_slope,
)
from services.tracking.schemas import DepartmentProgress, KpiProgressRead, ProgressPage, TrendPoint
from services.tracking.service.catalog import as_of, get_catalog

__all__ = [
    "cycle_kpis",
    "cycle_org",
    "department_rollup",
    "find_kpi",
    "kpi_due_at",
    "kpi_is_stale",
    "kpi_progress",
    "list_progress",
    "progress_export",
]


def _current_value(kpi: TrackingKpi | TrackingKpiBucket, aggregation: str) -> float | None:
    return aggregate_value(
        Aggregation(aggregation),
        count=kpi.event_count,
        total=kpi.value_sum,
        minimum=kpi.value_min,
        maximum=kpi.value_max,
        last_value=kpi.last_value,
    )


def kpi_due_at(kpi: TrackingKpi, header: TrackingCatalog) -> datetime:
    """When the KPI's data owner owes the next event (``rules.stale_due_at``)."""
    start, _end = period_bounds(header.period_start, header.period_end)
    return stale_due_at(
        last_received_at=kpi.last_received_at,
        registered_at=kpi.registered_at,
        period_start=start,
        frequency_hours=kpi.update_frequency_hours,
        grace_hours=header.grace_hours,
    )


def kpi_is_stale(kpi: TrackingKpi, header: TrackingCatalog, now: datetime) -> bool:
    """No event within frequency + grace (``rules.is_stale``); a KPI fed by check-ins never is: its
    check-in cadence is reminded instead."""
    if fed_by_check_ins(kpi.metric):
        return False
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


def _utc_or_none(value: datetime | None) -> datetime | None:
    return as_utc(value) if value else None


def _progress(kpi: TrackingKpi, header: TrackingCatalog, now: datetime) -> KpiProgressRead:
    current = _current_value(kpi, kpi.aggregation)
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
        last_occurred_at=_utc_or_none(kpi.last_occurred_at),
        last_event_at=_utc_or_none(kpi.last_received_at),
        stale=kpi_is_stale(kpi, header, now),
        due_at=kpi_due_at(kpi, header),
    )


async def cycle_org(*, session: AsyncSession, cycle_id: str) -> OrgView:
    """The cycle's org snapshot as tracking received it, for row scoping."""
    return await load_org(session, TrackingParticipant, TrackingDepartment, cycle_id)


def _visible(kpi: TrackingKpi, principal: Principal, org: OrgView) -> bool:
    """Per-person KPIs follow the org scoping; company and department KPIs are visible to everyone."""
    return kpi.employee_id is None or org.can_see(principal, kpi.employee_id)


async def find_kpi(
    *, session: AsyncSession, cycle_id: str, kpi_id: str, visible_to: tuple[Principal, OrgView] | None = None
) -> TrackingKpi:
    """One KPI of the cycle; 404 when there is none, or when ``visible_to``'s principal may not see it."""
    kpi = await session.get(TrackingKpi, (cycle_id, kpi_id))
    if kpi is None or (visible_to is not None and not _visible(kpi, *visible_to)):
        raise DomainError(f"KPI {kpi_id!r} not found in cycle {cycle_id!r}", status_code=404, field="kpi_id")
    return kpi


async def cycle_kpis(
    *, session: AsyncSession, cycle_id: str, department_id: str | None = None, employee_id: str | None = None
) -> list[TrackingKpi]:
    """The cycle's KPIs by id; of a department (the KPI's, else its data owner's) or a person."""
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
    department_id: str | None = None,
    employee_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> ProgressPage:
    """A page of the cycle's KPIs the caller may see, with their progress as of ``now``."""
    now = as_of(now)
    org = await cycle_org(session=session, cycle_id=cycle_id)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    kpis = await cycle_kpis(session=session, cycle_id=cycle_id, department_id=department_id, employee_id=employee_id)
    rows = [k for k in kpis if _visible(k, principal, org)]
    items = [_progress(k, header, now) for k in rows[offset : offset + limit]]
    return ProgressPage(cycle_id=cycle_id, as_of=now, total=len(rows), items=items)


async def kpi_progress(
    *,
    session: AsyncSession,
    cycle_id: str,
    kpi_id: str,
    principal: Principal,
    buckets: int = 12,
    now: datetime | None = None,
) -> KpiProgressRead:
    """One KPI with its trend: the last ``buckets`` buckets (one update period each) and their slope."""
    now = as_of(now)
    org = await cycle_org(session=session, cycle_id=cycle_id)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    kpi = await find_kpi(session=session, cycle_id=cycle_id, kpi_id=kpi_id, visible_to=(principal, org))
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
            value=_current_value(b, kpi.aggregation),
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
    now = as_of(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    groups: dict[str, list[KpiProgressRead]] = defaultdict(list)
    for kpi in await cycle_kpis(session=session, cycle_id=cycle_id):
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
    now = as_of(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    return ProgressExport(
        cycle_id=cycle_id,
        as_of=now,
        actuals=[
            KpiActual(
                kpi_id=k.kpi_id,
                actual_value=_current_value(k, k.aggregation),
                event_count=k.event_count,
                last_event_at=_utc_or_none(k.last_occurred_at),
                stale=kpi_is_stale(k, header, now),
            )
            for k in await cycle_kpis(session=session, cycle_id=cycle_id)
        ],
    )
