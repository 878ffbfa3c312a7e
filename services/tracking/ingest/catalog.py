"""The KPI catalog as the consumer routes with it: one ``KpiRule`` per registered KPI, reloaded
only when a catalog PUT changed it; and the catalog version lock that keeps routing exact while
a catalog arrives during live ingestion (``lock_catalog_version``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.tracking import LateDataPolicy
from services.tracking.models import TrackingCatalog, TrackingKpi
from services.tracking.rules import CatalogIndex, KpiRule, period_bounds

__all__ = [
    "CATALOG_VERSION_LOCK_PG",
    "CatalogCache",
    "bucket_seconds_for",
    "catalog_version",
    "kpi_rule",
    "load_catalog",
    "lock_catalog_version",
]

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


CATALOG_VERSION_LOCK_PG = "SELECT version FROM tracking_catalog_version WHERE id = 1 FOR SHARE"
"""The ingestion side of the catalog lock on PostgreSQL. Shared, so consumers never wait for each
other; a catalog PUT's ``UPDATE`` of the row waits for the writes in flight, and writes that come
later wait for the PUT and then read the version it committed (row locks see the latest version)."""

_VERSION = text("SELECT version FROM tracking_catalog_version WHERE id = 1")
_SQLITE_LOCK = text("UPDATE tracking_catalog_version SET version = version WHERE id = 1")


async def catalog_version(conn: AsyncConnection) -> int:
    """The current catalog version (0 when the row is missing: a schema built without migrations)."""
    return int((await conn.execute(_VERSION)).scalar() or 0)


async def lock_catalog_version(conn: AsyncConnection) -> int:
    """Lock the catalog version for the rest of ``conn``'s transaction and return it.

    An ingestion write calls this first in its transaction and re-routes its batch when the
    version differs from the one it was routed at; a catalog PUT bumps the version before it
    back-fills. Either the write commits before the PUT reads the stored events (the back-fill
    counts them), or it waits for the PUT and routes with the new catalog: never neither.
    SQLite has one writer at a time: a no-op update takes the write lock.
    """
    if conn.dialect.name == "postgresql":
        return int((await conn.execute(text(CATALOG_VERSION_LOCK_PG))).scalar() or 0)
    await conn.execute(_SQLITE_LOCK)
    return await catalog_version(conn)


async def load_catalog(conn: AsyncConnection, *, version: int | None = None) -> CatalogIndex:
    """Every registered KPI's rule, tagged with ``version`` (else the version read first)."""
    if version is None:
        version = await catalog_version(conn)
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
    return CatalogIndex([kpi_rule(row, row) for row in rows], version=version)


class CatalogCache:
    """The catalog index, reloaded only when a catalog PUT changed its version (one tiny query).

    The version is read before the rules, so an index is never tagged newer than its rules (a
    PUT in between only causes one more reload at write time)."""

    def __init__(self) -> None:
        self._index: CatalogIndex | None = None

    async def get(self, conn: AsyncConnection, *, version: int | None = None) -> CatalogIndex:
        """The index at ``version`` (as locked by the caller), else at the current version."""
        if version is None:
            version = await catalog_version(conn)
        if self._index is None or self._index.version != version:
            self._index = await load_catalog(conn, version=version)
        return self._index
