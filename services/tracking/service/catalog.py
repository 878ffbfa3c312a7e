"""The cycle's KPI catalog: registration (an idempotent replace that keeps what did not change) and
the back-fill of new or re-mapped KPIs from the events already stored."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import MetricEvent
from contracts.goals import KpiCatalog, KpiDefinition
from contracts.tracking import LateDataPolicy
from services.common.errors import DomainError
from services.tracking.ingest import apply_bucket_deltas
from services.tracking.ingest.catalog import bucket_seconds_for, kpi_rule
from services.tracking.models import (
    TrackingCatalog,
    TrackingCatalogVersion,
    TrackingCheckIn,
    TrackingKpi,
    TrackingKpiBucket,
    TrackingMetricEvent,
)
from services.tracking.rules import Aggregate, EventStatus, as_utc, bucket_start, fed_by_check_ins, period_bounds
from services.tracking.schemas import CatalogAccepted

__all__ = ["as_of", "check_in_event_id", "get_catalog", "replace_catalog"]

_DEFINITION_FIELDS = tuple(KpiDefinition.model_fields)
_MAPPING_FIELDS = ("metric", "owner_department_id", "department_id", "employee_id", "update_frequency_hours")
"""A change to any of these re-maps the KPI: its aggregates are reset and back-filled."""
_STATUS_CHUNK = 5000
"""Event ids per status update of a back-fill (asyncpg takes at most 32,767 bound parameters)."""


def as_of(now: datetime | None) -> datetime:
    """The moment a call is evaluated at: ``now`` in UTC, else the wall clock."""
    return as_utc(now) if now is not None else datetime.now(UTC)


async def get_catalog(*, session: AsyncSession, cycle_id: str) -> TrackingCatalog:
    catalog = await session.get(TrackingCatalog, cycle_id)
    if catalog is None:
        raise DomainError(
            f"cycle {cycle_id!r} has no KPI catalog in tracking yet; PUT /v1/cycles/{cycle_id}/kpis first",
            status_code=404,
            field="cycle_id",
        )
    return catalog


def _check(catalog: KpiCatalog, *, cycle_id: str | None, now: datetime) -> None:
    """Refuse a catalog for another cycle than addressed, an inverted period, a KPI listed twice,
    and a KPI whose metric or owner no ``MetricEvent`` could ever carry (a KPI without a metric,
    ``rules.CHECK_IN_METRIC``, takes its value from check-ins instead)."""
    if cycle_id is not None and catalog.cycle_id != cycle_id:
        raise DomainError(f"catalog is for cycle {catalog.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id")
    if catalog.period_end < catalog.period_start:
        raise DomainError("period_end must not be before period_start", field="period_end")
    seen: set[str] = set()
    for kpi in catalog.kpis:
        if kpi.kpi_id in seen:
            raise DomainError(f"kpi_id {kpi.kpi_id!r} appears twice in the catalog", field="kpis")
        seen.add(kpi.kpi_id)
        if fed_by_check_ins(kpi.metric):
            continue
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


async def replace_catalog(
    *,
    session: AsyncSession,
    catalog: KpiCatalog,
    late_data_policy: LateDataPolicy,
    grace_hours: float,
    check_in_cadence_days: int,
    cycle_id: str | None = None,
    now: datetime | None = None,
) -> CatalogAccepted:
    """Idempotently replace the cycle's KPIs, keeping the aggregates of KPIs whose mapping did
    not change. New or re-mapped KPIs are back-filled from the events already stored. Commits.

    ``cycle_id``, when given, is the cycle the caller addressed (the URL's): the catalog must be its.
    """
    now = as_of(now)
    _check(catalog, cycle_id=cycle_id, now=now)
    await _bump_catalog_version(session)
    header = await session.get(TrackingCatalog, catalog.cycle_id)
    changed = header is None
    if header is None:
        header = TrackingCatalog(cycle_id=catalog.cycle_id, updated_at=now)
        session.add(header)
    settings: dict[str, object] = {
        "period_start": catalog.period_start,
        "period_end": catalog.period_end,
        "late_data_policy": late_data_policy.value,
        "grace_hours": grace_hours,
        "check_in_cadence_days": check_in_cadence_days,
    }
    changed = changed or any(getattr(header, k) != v for k, v in settings.items())
    for key, setting in settings.items():
        setattr(header, key, setting)

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
        await _delete_buckets(session, catalog.cycle_id, gone)
    to_backfill: list[TrackingKpi] = []
    for definition in catalog.kpis:
        values = definition.model_dump(mode="json")
        row = existing.get(definition.kpi_id)
        if row is None:
            row = TrackingKpi(cycle_id=catalog.cycle_id, registered_at=now, **_reset_aggregate())
            session.add(row)
            to_backfill.append(row)
        elif any(getattr(row, f) != values[f] for f in _MAPPING_FIELDS):
            for name, value in _reset_aggregate().items():
                setattr(row, name, value)
            await _delete_buckets(session, catalog.cycle_id, [row.kpi_id])
            to_backfill.append(row)
        changed = changed or row in to_backfill or any(getattr(row, f) != values[f] for f in _DEFINITION_FIELDS)
        for name in _DEFINITION_FIELDS:
            setattr(row, name, values[name])
    if changed or gone:
        header.updated_at = now  # a repeated push of the same catalog (a retried handoff) changes nothing
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


async def _bump_catalog_version(session: AsyncSession) -> None:
    """First statement of a catalog PUT: its row lock (held until commit) waits for the ingestion
    writes in flight and holds back later ones, so the back-fill below sees every event stored
    with the old routing and every later write re-routes with this catalog
    (``ingest.catalog.lock_catalog_version``)."""
    bumped = await session.execute(
        update(TrackingCatalogVersion)
        .where(TrackingCatalogVersion.id == 1)
        .values(version=TrackingCatalogVersion.version + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(bumped, "rowcount", 1) == 0:  # a schema built without the migrations' seed row
        session.add(TrackingCatalogVersion(id=1, version=1))
        await session.flush()


async def _delete_buckets(session: AsyncSession, cycle_id: str, kpi_ids: list[str]) -> None:
    await session.execute(
        delete(TrackingKpiBucket).where(TrackingKpiBucket.cycle_id == cycle_id, TrackingKpiBucket.kpi_id.in_(kpi_ids))
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


Observation = tuple[float, datetime, str, datetime]
"""``(value, occurred_at, event id, received_at)``: one stored event, or one check-in's value."""


async def _backfill(*, session: AsyncSession, header: TrackingCatalog, kpis: list[TrackingKpi]) -> int:
    """Count already stored events into new or re-mapped KPIs (the consumer only sees new events);
    a KPI fed by check-ins gets its check-ins' values back."""
    total = 0
    for kpi in kpis:
        newly_mapped: list[str] = []
        if fed_by_check_ins(kpi.metric):
            observations = await _check_in_values(session, kpi)
        else:
            observations, newly_mapped = await _stored_events(session, header, kpi)
        aggregate = Aggregate()
        buckets: dict[tuple[str, str, datetime], Aggregate] = defaultdict(Aggregate)
        size = bucket_seconds_for(kpi.update_frequency_hours)
        for value, occurred_at, event_id, _received in observations:
            aggregate.add(value, occurred_at, event_id)
            buckets[(kpi.cycle_id, kpi.kpi_id, bucket_start(occurred_at, size))].add(value, occurred_at, event_id)
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
        kpi.last_received_at = max(received for *_rest, received in observations)
        await session.flush()
        await apply_bucket_deltas(await session.connection(), dict(buckets))
        for start in range(0, len(newly_mapped), _STATUS_CHUNK):
            await session.execute(
                update(TrackingMetricEvent)
                .where(TrackingMetricEvent.event_id.in_(newly_mapped[start : start + _STATUS_CHUNK]))
                .values(status=EventStatus.APPLIED)
            )
    return total


async def _stored_events(
    session: AsyncSession, header: TrackingCatalog, kpi: TrackingKpi
) -> tuple[list[Observation], list[str]]:
    """The stored events that count for ``kpi``, and the ``event_id`` s of those not applied before."""
    start, end = period_bounds(header.period_start, header.period_end)
    policy = LateDataPolicy(header.late_data_policy)
    rule = kpi_rule(kpi, header)
    query = select(TrackingMetricEvent).where(
        TrackingMetricEvent.metric == kpi.metric,
        TrackingMetricEvent.department_id == kpi.owner_department_id,
        TrackingMetricEvent.status != EventStatus.REJECTED,
    )
    if kpi.employee_id is not None:
        query = query.where(TrackingMetricEvent.employee_id == kpi.employee_id)
    observations: list[Observation] = []
    newly_mapped: list[str] = []
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
        observations.append((event.value, occurred_at, event.event_id, as_utc(event.received_at)))
        if event.status != EventStatus.APPLIED:
            newly_mapped.append(event.event_id)
    return observations, newly_mapped


async def _check_in_values(session: AsyncSession, kpi: TrackingKpi) -> list[Observation]:
    """The values check-ins gave ``kpi`` (a KPI without a metric)."""
    rows = (
        await session.scalars(
            select(TrackingCheckIn).where(
                TrackingCheckIn.cycle_id == kpi.cycle_id,
                TrackingCheckIn.kpi_id == kpi.kpi_id,
                TrackingCheckIn.value.is_not(None),
            )
        )
    ).all()
    return [(float(r.value or 0.0), as_utc(r.created_at), check_in_event_id(r.id), as_utc(r.created_at)) for r in rows]


def check_in_event_id(check_in_id: int) -> str:
    """The id a check-in's value carries in a KPI's aggregate (``last_event_id``: at most 36 characters)."""
    return f"check-in-{check_in_id}"
