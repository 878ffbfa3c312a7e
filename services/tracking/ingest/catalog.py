"""The KPI catalog as the consumer routes with it: one ``KpiRule`` per registered KPI, reloaded
only when a catalog PUT changed it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.tracking import LateDataPolicy
from services.tracking.models import TrackingCatalog, TrackingKpi
from services.tracking.rules import CatalogIndex, KpiRule, period_bounds

__all__ = ["CatalogCache", "bucket_seconds_for", "kpi_rule", "load_catalog"]

_kpis: Table = TrackingKpi.__table__  # type: ignore[assignment]


def bucket_seconds_for(frequency_hours: float) -> int:
    """Trend buckets are one update period long (at least a minute)."""
    return max(60, int(frequency_hours * 3600))


def kpi_rule(kpi: TrackingKpi | Row[Any], catalog: TrackingCatalog | Row[Any]) -> KpiRule:
    """The routing rule of one KPI under its cycle's period and late-data policy (from the tables'
    objects, or from a row of ``load_catalog``'s join, which holds both)."""
    start, end = period_bounds(catalog.period_start, catalog.period_end)
    return KpiRule(
        cycle_id=kpi.cycle_id,
        kpi_id=kpi.kpi_id,
        metric=kpi.metric,
        owner_department_id=kpi.owner_department_id,
        department_id=kpi.department_id,
        employee_id=kpi.employee_id,
        period_start=start,
        period_end=end,
        late_data_policy=LateDataPolicy(catalog.late_data_policy),
        bucket_seconds=bucket_seconds_for(kpi.update_frequency_hours),
    )


async def load_catalog(conn: AsyncConnection) -> CatalogIndex:
    rows = (
        await conn.execute(
            select(
                _kpis.c.cycle_id,
                _kpis.c.kpi_id,
                _kpis.c.metric,
                _kpis.c.owner_department_id,
                _kpis.c.department_id,
                _kpis.c.employee_id,
                _kpis.c.update_frequency_hours,
                TrackingCatalog.period_start,
                TrackingCatalog.period_end,
                TrackingCatalog.late_data_policy,
            ).join(TrackingCatalog, TrackingCatalog.cycle_id == _kpis.c.cycle_id)
        )
    ).all()
    return CatalogIndex([kpi_rule(row, row) for row in rows])


class CatalogCache:
    """The catalog index, reloaded only when a catalog PUT changed it (one tiny query per batch)."""

    def __init__(self) -> None:
        self._version: tuple[Any, ...] | None = None
        self._index = CatalogIndex([])

    async def get(self, conn: AsyncConnection) -> CatalogIndex:
        version = tuple((await conn.execute(select(func.count(), func.max(TrackingCatalog.updated_at)))).one())
        if version != self._version:
            self._index = await load_catalog(conn)
            self._version = version
        return self._index
