"""The I/O half of ingesting a batch, in the caller's transaction: insert the new events (each
``event_id`` once), aggregate only those, report repeated ``event_id`` s whose content differs
(conflicting duplicates: the first stays), record the dead letters. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import DateTime, Table, bindparam, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events import DeadLetter, MetricEvent
from services.tracking.ingest.aggregates import apply_bucket_deltas, apply_kpi_deltas, record_dead_letters
from services.tracking.ingest.messages import BatchResult, RawMessage, dead_letter, dimensions_json, gc_paused
from services.tracking.ingest.prepare import PreparedBatch, prepare_batch, serialise
from services.tracking.models import TrackingMetricEvent
from services.tracking.rules import CatalogIndex, EventStatus, as_utc, group_batch_deltas

__all__ = [
    "CONFLICT_REASON_PREFIX",
    "PG_EVENTS_SOURCE",
    "POISON_SQLSTATE_CLASSES",
    "PG_INSERT_COLUMNS",
    "RETRY_WITH_ON_CONFLICT",
    "ingest_batch",
    "is_poison",
    "store_batch",
]

_events: Table = TrackingMetricEvent.__table__  # type: ignore[assignment]

_SQLITE_CHUNK = 400  # 11 columns per row, well below SQLite's bound-parameter limit

CONFLICT_REASON_PREFIX = "conflicting duplicate"
"""Reason prefix of a dead letter for an ``event_id`` seen before with other content (counted on
the ops page)."""

_CONTENT_FIELDS = ("source", "department_id", "metric", "employee_id", "value", "unit", "occurred_at", "dimensions")

POISON_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
"""SQLSTATE classes that say the data is at fault, not the database: data exception (an
overflow, an out-of-range value), integrity constraint violation, program limit exceeded. A
batch failing with one of these is bisected to isolate the event (``is_poison``); any other
failure (connection lost, server shutting down) is retried as it is."""

RETRY_WITH_ON_CONFLICT = {"23505", "40P01"}
"""unique_violation, deadlock_detected: the fast insert met an event_id stored before (or by a
concurrent consumer); the batch is inserted again with ``ON CONFLICT DO NOTHING``."""

# The batch as rows: binary arrays expanded server-side by unnest(), joined to the batch's series.
PG_EVENTS_SOURCE = """
    SELECT e.event_id, s.source, s.department_id, s.metric, s.employee_id, e.value,
           s.unit, to_timestamp(e.sec) + e.usec * interval '1 microsecond' AS occurred_at, s.dimensions, e.idx,
           chr(get_byte(CAST(:codes AS bytea), CAST(e.idx AS integer) - 1)) AS code
    FROM unnest(
        CAST(:event_id AS uuid[]), CAST(:value AS float8[]), CAST(:sec AS int8[]), CAST(:usec AS int4[]),
        CAST(:series AS int4[])
    ) WITH ORDINALITY AS e(event_id, value, sec, usec, sid, idx)
    JOIN unnest(
        CAST(:s_source AS varchar[]), CAST(:s_department_id AS varchar[]), CAST(:s_metric AS varchar[]),
        CAST(:s_unit AS varchar[]), CAST(:s_employee_id AS varchar[]), CAST(:s_dimensions AS text[])
    ) WITH ORDINALITY AS s(source, department_id, metric, unit, employee_id, dimensions, sid) USING (sid)
"""
PG_INSERT_COLUMNS = """
    INSERT INTO tracking_metric_event
        (event_id, source, department_id, metric, employee_id, value, unit, occurred_at, received_at, status,
         dimensions)
    SELECT event_id, source, department_id, metric, employee_id, value, unit, occurred_at, :received_at,
           CASE code WHEN 'a' THEN 'applied' WHEN 'u' THEN 'unmapped' WHEN 'd' THEN 'deferred' ELSE 'rejected' END,
           dimensions
"""
_RECEIVED_AT = bindparam("received_at", type_=DateTime(timezone=True))

# Fast path: every event is new (the unique index refuses the whole statement otherwise).
_PG_INSERT_NEW_EVENTS = text(f"WITH src AS ({PG_EVENTS_SOURCE}) {PG_INSERT_COLUMNS} FROM src").bindparams(_RECEIVED_AT)

# Exact path: keep the first occurrence of each event_id (sorted, so concurrent consumers take
# index locks in the same order), skip stored ones, return the positions inserted.
_PG_INSERT_EVENTS = text(
    f"""
    WITH src AS ({PG_EVENTS_SOURCE}),
    firsts AS (
        SELECT DISTINCT ON (event_id) * FROM src ORDER BY event_id, idx
    ),
    ins AS (
        {PG_INSERT_COLUMNS}
        FROM firsts
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    )
    SELECT coalesce(array_agg(f.idx ORDER BY f.idx), '{{}}') FROM firsts AS f JOIN ins USING (event_id)
    """
).bindparams(_RECEIVED_AT)


_POISON_ERRORS = (ArithmeticError, ValueError, TypeError, LookupError, UnicodeError)
"""Python errors raised by the data of a message (e.g. ``OverflowError`` converting a timestamp):
never by a connection, whose failures are ``OSError`` s or driver errors."""


def is_poison(exc: BaseException) -> bool:
    """Whether ``exc`` says some message of the batch can never be stored (so bisect the batch),
    rather than that the database or broker is unavailable for now (so retry)."""
    if isinstance(exc, (IntegrityError, DataError)):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return bool(sqlstate) and str(sqlstate)[:2] in POISON_SQLSTATE_CLASSES
    sqlstate = getattr(exc, "sqlstate", None)  # a driver error raised outside SQLAlchemy
    if sqlstate:
        return str(sqlstate)[:2] in POISON_SQLSTATE_CLASSES
    return isinstance(exc, _POISON_ERRORS)


async def ingest_batch(
    conn: AsyncConnection,
    messages: Sequence[RawMessage],
    *,
    catalog: CatalogIndex,
    now: datetime | None = None,
) -> BatchResult:
    """Validate, deduplicate, store and aggregate ``messages`` in ``conn``'s open transaction."""
    postgres = conn.dialect.name == "postgresql"
    return await store_batch(conn, prepare_batch(messages, catalog=catalog, now=now, postgres=postgres))


async def store_batch(conn: AsyncConnection, batch: PreparedBatch) -> BatchResult:
    """Insert the batch's events (new ones only) and aggregate them, in ``conn``'s open transaction."""
    now = batch.now
    result = BatchResult(received=batch.received, dead_letters=list(batch.dead_letters))
    if conn.dialect.name == "postgresql":
        if batch.events and batch.columns is None:
            serialise(batch)
        inserted = await _insert_events_pg(conn, batch) if batch.events else []
    else:
        inserted = await _insert_events_sqlite(conn, batch) if batch.events else []
    result.inserted = len(inserted)
    result.duplicates = len(batch.events) - len(inserted)

    routes = batch.routes
    applied = 0
    for i in inserted:
        status = routes[i].status
        if status == EventStatus.APPLIED:
            applied += 1
        elif status == EventStatus.UNMAPPED:
            result.unmapped += 1
        elif status == EventStatus.DEFERRED:
            result.deferred += 1
        else:
            result.dead_letters.append(dead_letter(batch.messages[i], routes[i].reason or "rejected", now))
    result.applied = applied
    if applied:
        events = batch.events
        with gc_paused():
            per_kpi, per_bucket = group_batch_deltas(
                inserted,
                routes=routes,
                stamps=batch.stamps,
                values=[e.value for e in events],
                occurred=[e.occurred_at for e in events],
                event_ids=lambda i: str(events[i].event_id),
            )
        await apply_kpi_deltas(conn, per_kpi, received_at=now)
        await apply_bucket_deltas(conn, per_bucket)
    if result.duplicates:
        taken = set(inserted)
        repeated = [i for i in range(len(batch.events)) if i not in taken]
        result.dead_letters.extend(await _conflicting_duplicates(conn, batch, repeated))
    if result.dead_letters:
        # Only the letters not recorded before go on to the DLQ topic (a re-read batch publishes none).
        result.dead_letters = await record_dead_letters(conn, result.dead_letters)
    return result


def _content(event: MetricEvent) -> tuple[object, ...]:
    return (
        event.source,
        event.department_id,
        event.metric,
        event.employee_id,
        event.value,
        event.unit,
        as_utc(event.occurred_at),
        dimensions_json(event.dimensions),
    )


async def _conflicting_duplicates(conn: AsyncConnection, batch: PreparedBatch, repeated: list[int]) -> list[DeadLetter]:
    """Dead letters for the events at ``repeated`` (not inserted: their ``event_id`` is stored)
    whose content differs from the stored event's. A plain redelivery is identical and silent."""
    ids = sorted({str(batch.events[i].event_id) for i in repeated})
    chunk = 5000 if conn.dialect.name == "postgresql" else _SQLITE_CHUNK
    c = _events.c
    stored: dict[str, tuple[object, ...]] = {}
    for start in range(0, len(ids), chunk):
        rows = await conn.execute(
            select(c.event_id, *(c[name] for name in _CONTENT_FIELDS)).where(c.event_id.in_(ids[start : start + chunk]))
        )
        for row in rows:
            *fields, occurred_at, dimensions = row[1:]
            stored[row[0]] = (*fields, as_utc(occurred_at), dimensions)
    letters = []
    for i in repeated:
        event = batch.events[i]
        event_id = str(event.event_id)
        first = stored.get(event_id)
        if first is None:
            continue
        differ = [name for name, a, b in zip(_CONTENT_FIELDS, first, _content(event), strict=True) if a != b]
        if differ:
            reason = (
                f"{CONFLICT_REASON_PREFIX}: event_id {event_id} was stored before with another "
                f"{', '.join(differ)}; the first event is kept"
            )
            letters.append(dead_letter(batch.messages[i], reason, batch.now))
    return letters


async def _insert_events_pg(conn: AsyncConnection, batch: PreparedBatch) -> list[int]:
    """Insert the batch; return the (0-based, ascending) positions of the events it stored.

    Fast path, for the usual batch of new events: a plain ``INSERT`` in a savepoint, which the
    unique ``event_id`` index rejects whole if any event is stored already (or twice in the
    batch). Then the exact path: the same rows with ``ON CONFLICT (event_id) DO NOTHING``,
    keeping the first occurrence of each ``event_id``, returning what it inserted.
    """
    params = {**(batch.columns or {}), "received_at": batch.now}
    try:
        async with conn.begin_nested():
            await conn.execute(_PG_INSERT_NEW_EVENTS, params)
        return list(range(len(batch.events)))
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) not in RETRY_WITH_ON_CONFLICT:
            raise
    found = await conn.execute(_PG_INSERT_EVENTS, params)
    positions = found.scalar_one()
    return [p - 1 for p in positions] if positions else []


async def _insert_events_sqlite(conn: AsyncConnection, batch: PreparedBatch) -> list[int]:
    """Chunked multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``; the first of each
    ``event_id`` in the batch is the one stored."""
    firsts: dict[str, int] = {}
    for i, event in enumerate(batch.events):
        firsts.setdefault(str(event.event_id), i)
    ids = list(firsts)
    inserted: list[int] = []
    for start in range(0, len(ids), _SQLITE_CHUNK):
        rows = []
        for event_id in ids[start : start + _SQLITE_CHUNK]:
            i = firsts[event_id]
            event = batch.events[i]
            rows.append(
                {
                    "event_id": event_id,
                    "source": event.source,
                    "department_id": event.department_id,
                    "metric": event.metric,
                    "employee_id": event.employee_id,
                    "value": event.value,
                    "unit": event.unit,
                    "occurred_at": as_utc(event.occurred_at),
                    "status": batch.routes[i].status,
                    "dimensions": dimensions_json(event.dimensions),
                    "received_at": batch.now,
                }
            )
        stmt = (
            sqlite_insert(_events)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(_events.c.event_id)
        )
        found = await conn.execute(stmt)
        inserted.extend(firsts[event_id] for event_id in found.scalars())
    return sorted(inserted)
