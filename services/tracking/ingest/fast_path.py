"""PostgreSQL fast path: a clean batch of new events stored and aggregated by one self-committing
statement, in one round trip (the usual batch; anything else takes ``store.store_batch``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.tracking.ingest.catalog import CATALOG_VERSION_LOCK_PG
from services.tracking.ingest.messages import BatchResult
from services.tracking.ingest.prepare import NEW_BATCH_NAMES, PreparedBatch
from services.tracking.ingest.store import (
    PG_EVENTS_SOURCE,
    PG_INSERT_COLUMNS,
    POISON_SQLSTATE_CLASSES,
    RETRY_WITH_ON_CONFLICT,
)
from services.tracking.rules import EventStatus

__all__ = ["store_new_batch"]


def _positional(sql: str, names: Sequence[str]) -> str:
    """``:name`` bind parameters to asyncpg's ``$n`` (``n`` = 1 + the name's index in ``names``)."""
    index = {name: i + 1 for i, name in enumerate(names)}
    return re.sub(r"(?<![:\w]):([a-z_]+)", lambda m: f"${index[m.group(1)]}", sql)


# One statement, atomic on its own (run outside a transaction): insert every event, merge the
# batch's per-KPI deltas into tracking_kpi and upsert its per-bucket deltas, exactly what
# store_batch does for a batch of new events. If any event_id is stored already (or twice in the
# batch) the unique index fails the whole statement and nothing is applied; deltas are sorted by
# key, like store_batch's, so concurrent consumers usually lock rows in the same order (a deadlock
# also just fails the statement, and the batch takes store_batch's path).
#
# The catalog version row is read under a shared lock first (every part of the statement waits
# for it): if a catalog PUT changed it since the batch was routed, nothing is applied and the
# statement returns the new version (see ingest.catalog.lock_catalog_version).
_PG_STORE_NEW_BATCH = _positional(
    f"""
    WITH v AS ({CATALOG_VERSION_LOCK_PG}),
    ok AS (SELECT 1 FROM v WHERE version = CAST(:catalog_version AS int8)),
    src AS ({PG_EVENTS_SOURCE}),
    ins AS ({PG_INSERT_COLUMNS} FROM src WHERE EXISTS (SELECT 1 FROM ok)),
    kpi AS (
        UPDATE tracking_kpi AS t SET
            event_count = t.event_count + d.n,
            value_sum = t.value_sum + d.s,
            value_min = CASE WHEN t.value_min IS NULL OR d.mn < t.value_min THEN d.mn ELSE t.value_min END,
            value_max = CASE WHEN t.value_max IS NULL OR d.mx > t.value_max THEN d.mx ELSE t.value_max END,
            last_value = CASE WHEN {{later}} THEN d.lv ELSE t.last_value END,
            last_event_id = CASE WHEN {{later}} THEN d.lid ELSE t.last_event_id END,
            last_occurred_at = CASE WHEN {{later}} THEN d.lo ELSE t.last_occurred_at END,
            last_received_at = CAST(:received_at AS timestamptz)
        FROM unnest(
            CAST(:k_cycle AS varchar[]), CAST(:k_kpi AS varchar[]), CAST(:k_n AS int8[]), CAST(:k_sum AS float8[]),
            CAST(:k_min AS float8[]), CAST(:k_max AS float8[]), CAST(:k_last AS float8[]),
            CAST(:k_last_at AS timestamptz[]), CAST(:k_last_id AS varchar[])
        ) AS d(c, k, n, s, mn, mx, lv, lo, lid)
        WHERE t.cycle_id = d.c AND t.kpi_id = d.k AND EXISTS (SELECT 1 FROM ok)
    ),
    bucket AS (
        INSERT INTO tracking_kpi_bucket AS t
            (cycle_id, kpi_id, bucket_start, event_count, value_sum, value_min, value_max, last_value,
             last_occurred_at, last_event_id)
        SELECT * FROM unnest(
            CAST(:b_cycle AS varchar[]), CAST(:b_kpi AS varchar[]), CAST(:b_start AS timestamptz[]),
            CAST(:b_n AS int8[]), CAST(:b_sum AS float8[]), CAST(:b_min AS float8[]), CAST(:b_max AS float8[]),
            CAST(:b_last AS float8[]), CAST(:b_last_at AS timestamptz[]), CAST(:b_last_id AS varchar[])
        ) WHERE EXISTS (SELECT 1 FROM ok)
        ON CONFLICT (cycle_id, kpi_id, bucket_start) DO UPDATE SET
            event_count = t.event_count + EXCLUDED.event_count,
            value_sum = t.value_sum + EXCLUDED.value_sum,
            value_min = CASE WHEN EXCLUDED.value_min < t.value_min THEN EXCLUDED.value_min ELSE t.value_min END,
            value_max = CASE WHEN EXCLUDED.value_max > t.value_max THEN EXCLUDED.value_max ELSE t.value_max END,
            last_value = CASE WHEN {{later_ex}} THEN EXCLUDED.last_value ELSE t.last_value END,
            last_event_id = CASE WHEN {{later_ex}} THEN EXCLUDED.last_event_id ELSE t.last_event_id END,
            last_occurred_at = CASE WHEN {{later_ex}} THEN EXCLUDED.last_occurred_at ELSE t.last_occurred_at END
    )
    SELECT version FROM v
    """.replace(
        "{later}",
        "(t.last_occurred_at IS NULL OR d.lo > t.last_occurred_at OR "
        "(d.lo = t.last_occurred_at AND d.lid > t.last_event_id))",
    ).replace(
        "{later_ex}",
        "(t.last_occurred_at IS NULL OR EXCLUDED.last_occurred_at > t.last_occurred_at OR "
        "(EXCLUDED.last_occurred_at = t.last_occurred_at AND EXCLUDED.last_event_id > t.last_event_id))",
    ),
    NEW_BATCH_NAMES,
)


async def store_new_batch(conn: AsyncConnection, batch: PreparedBatch) -> BatchResult | None:
    """PostgreSQL fast path for a clean batch of new events: one round trip, committed on return.

    Runs ``batch.new_batch_args`` as a single statement on ``conn``'s driver connection while
    ``conn`` has no transaction open (a single statement is its own transaction): the events are
    stored and the aggregates merged together, or nothing is. Returns ``None`` (nothing stored)
    when the fast path does not apply: not PostgreSQL, a transaction is open, the batch has dead
    letters or rejected events, an ``event_id`` is already stored (a redelivery) or twice in
    the batch, the catalog changed since the batch was routed, or the database refused a value;
    then ``store_batch`` in a transaction does the exact work.
    """
    args = batch.new_batch_args
    if args is None or conn.dialect.name != "postgresql" or conn.in_transaction():
        return None
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        version = await driver.fetchval(_PG_STORE_NEW_BATCH, *args)
    except Exception as exc:  # asyncpg.PostgresError; asyncpg is only imported with the dialect
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate in RETRY_WITH_ON_CONFLICT or (sqlstate or "")[:2] in POISON_SQLSTATE_CLASSES:
            # nothing applied: the transactional path stores the batch exactly, or isolates the
            # event the database refuses (the consumer bisects)
            return None
        raise
    if version != batch.catalog_version:
        return None  # the catalog changed since routing: nothing applied, re-routed under the lock
    result = BatchResult(received=batch.received, inserted=len(batch.events))
    for routing in batch.routes:
        status = routing.status
        if status == EventStatus.APPLIED:
            result.applied += 1
        elif status == EventStatus.UNMAPPED:
            result.unmapped += 1
        elif status == EventStatus.DEFERRED:
            result.deferred += 1
    return result
