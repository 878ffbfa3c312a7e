"""One batch of raw Kafka messages into the database, exactly once per ``event_id``.

``ingest_batch`` runs inside the caller's transaction and never commits: the
consumer commits the database, and only then the Kafka offsets. Two halves, so the
consumer can overlap the CPU work of one batch with the database write of the previous:

``prepare_batch`` (CPU only, no I/O):

1. validate every message against ``MetricEvent`` in one pydantic-core call over the
   batch (``BATCH_ADAPTER``, each value parsed as its own JSON document); when that
   fails, the failing messages are re-validated one by one for a readable reason and
   become ``DeadLetter`` s, the rest is validated again as a batch;
2. route the events to KPIs (``rules.CatalogIndex.route_batch``: cached per routing key,
   exact ``route`` near period bounds);
3. for PostgreSQL, turn the batch into binary arrays for one ``unnest`` insert.

``store_batch`` (in the caller's transaction):

4. insert the events. PostgreSQL: a plain ``INSERT`` in a savepoint (every event new:
   the usual case); if the unique ``event_id`` index refuses it (a redelivery or a
   duplicate within the batch), the same rows again with ``ON CONFLICT (event_id) DO
   NOTHING``, keeping the first occurrence and returning what was inserted. SQLite:
   chunked multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``;
5. aggregate only the newly inserted events, per (cycle, KPI) and per trend bucket
   (``rules.group_batch_deltas``), with atomic ``UPDATE``/upsert statements that merge
   the batch's count/sum/min/max/last into the stored ones.

The cyclic garbage collector is paused during the allocation-heavy synchronous steps
(``gc_paused``): measured, it otherwise doubles the cost of validating a batch.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Json, TypeAdapter, ValidationError
from sqlalchemy import DateTime, Float, Integer, String, Table, and_, bindparam, case, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events import DeadLetter, MetricEvent
from contracts.tracking import LateDataPolicy
from services.common.kafka import principal_mismatch
from services.tracking.models import (
    TrackingCatalog,
    TrackingDeadLetter,
    TrackingKpi,
    TrackingKpiBucket,
    TrackingMetricEvent,
)
from services.tracking.rules import (
    Aggregate,
    CatalogIndex,
    EventStatus,
    KpiRule,
    Routing,
    as_utc,
    group_batch_deltas,
    period_bounds,
)

__all__ = [
    "BatchResult",
    "CatalogCache",
    "PreparedBatch",
    "RawMessage",
    "apply_bucket_deltas",
    "bucket_seconds_for",
    "ingest_batch",
    "load_catalog",
    "parse_message",
    "prepare_batch",
    "store_batch",
    "store_new_batch",
    "validate_values",
]

EVENT_ADAPTER: TypeAdapter[MetricEvent] = TypeAdapter(MetricEvent)
"""Built once: validating with a reused adapter avoids per-message schema setup."""

BATCH_ADAPTER: TypeAdapter[list[MetricEvent]] = TypeAdapter(list[Json[MetricEvent]])
"""A whole batch of raw values in one pydantic-core call; each value is parsed as its own JSON
document, exactly as ``EVENT_ADAPTER.validate_json`` would."""

TOMBSTONE_REASON = "message has no value (tombstone)"
_TEXT_COLUMNS = ("source", "department_id", "metric", "unit", "employee_id")


def _nul_reason(fields: Sequence[str]) -> str:
    names = " and ".join(fields)
    return f"{names} contains the character U+0000 (\\u0000), which the database cannot store; remove it"

_SQLITE_CHUNK = 400  # 11 columns per row, well below SQLite's bound-parameter limit

_RETRY_WITH_ON_CONFLICT = {"23505", "40P01"}
"""unique_violation, deadlock_detected: the fast insert met an event_id stored before (or by a
concurrent consumer); the batch is inserted again with ``ON CONFLICT DO NOTHING``."""


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a synchronous, allocation-heavy batch step.

    Validating a batch allocates tens of thousands of container objects that all stay alive
    until the batch is stored; with the collector on, each of them is scanned again and again by
    young-generation collections (measured: about half of the validation time). Nothing in these
    steps creates reference cycles, and the collector resumes right after, so no garbage is kept.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

_events: Table = TrackingMetricEvent.__table__  # type: ignore[assignment]
_kpis: Table = TrackingKpi.__table__  # type: ignore[assignment]
_buckets: Table = TrackingKpiBucket.__table__  # type: ignore[assignment]
_dead_letters: Table = TrackingDeadLetter.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class RawMessage:
    """A consumed Kafka record, reduced to what ingestion needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class BatchResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    applied: int = 0
    unmapped: int = 0
    deferred: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err["type"] == "json_invalid":
            return f"message is not valid JSON: {err['msg']}"
        if err["type"] == "model_type":
            return "message is not a JSON object"
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "contract violation: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_message(value: bytes | None) -> MetricEvent | str:
    """The validated event, or a readable reason why the message breaks the contract."""
    if value is None:
        return TOMBSTONE_REASON
    try:
        return EVENT_ADAPTER.validate_json(value)
    except ValidationError as exc:
        return _reason(exc)


def dead_letter(message: RawMessage, reason: str, now: datetime) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key.decode("utf-8", "replace") if message.key is not None else None,
        original_b64=base64.b64encode(message.value or b"").decode("ascii"),
        rejected_at=now,
    )


def bucket_seconds_for(frequency_hours: float) -> int:
    """Trend buckets are one update period long (at least a minute)."""
    return max(60, int(frequency_hours * 3600))


# --------------------------------------------------------------------------- catalog


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
    rules = []
    for row in rows:
        start, end = period_bounds(row.period_start, row.period_end)
        rules.append(
            KpiRule(
                cycle_id=row.cycle_id,
                kpi_id=row.kpi_id,
                metric=row.metric,
                owner_department_id=row.owner_department_id,
                department_id=row.department_id,
                employee_id=row.employee_id,
                period_start=start,
                period_end=end,
                late_data_policy=LateDataPolicy(row.late_data_policy),
                bucket_seconds=bucket_seconds_for(row.update_frequency_hours),
            )
        )
    return CatalogIndex(rules)


class CatalogCache:
    """The catalog index, reloaded only when a catalog PUT changed it (one tiny query per batch)."""

    def __init__(self) -> None:
        self._version: tuple[Any, ...] | None = None
        self._index = CatalogIndex([])

    async def get(self, conn: AsyncConnection) -> CatalogIndex:
        version = tuple(
            (await conn.execute(select(func.count(), func.max(TrackingCatalog.updated_at)))).one()
        )
        if version != self._version:
            self._index = await load_catalog(conn)
            self._version = version
        return self._index


# --------------------------------------------------------------------------- batch


@dataclass
class PreparedBatch:
    """A batch after the CPU-only steps (validate, route, serialise), before any I/O.

    ``messages``, ``events``, ``routes`` and ``stamps`` are aligned: the valid messages in arrival
    order (a re-delivered duplicate may appear more than once), their ``MetricEvent``, routing and
    ``occurred_at`` in epoch seconds.
    """

    received: int
    now: datetime
    dead_letters: list[DeadLetter]
    messages: list[RawMessage]
    events: list[MetricEvent]
    routes: list[Routing]
    stamps: list[float]
    columns: dict[str, Any] | None = None
    """PostgreSQL only: the bound parameters of the insert (see ``_serialise``)."""
    new_batch_args: tuple[Any, ...] | None = None
    """PostgreSQL only, when every event is storable and nothing is dead-lettered: the positional
    arguments of ``store_new_batch``'s single statement (insert + aggregates, computed as if every
    event were new); ``None`` when that fast path does not apply."""


_STATUS_CODES = {
    EventStatus.APPLIED: "a",
    EventStatus.UNMAPPED: "u",
    EventStatus.DEFERRED: "d",
    EventStatus.REJECTED: "r",
}


def validate_values(values: Sequence[bytes]) -> tuple[list[MetricEvent], dict[int, str]]:
    """Validate raw message values against ``MetricEvent``: the valid events (in order) and,
    per index of an invalid value, the readable reason.

    The whole batch is validated in one pydantic-core call (each value parsed on its own, so one
    message can never shift into another); only when that fails are the failing indices
    re-checked one by one for their reason, and the rest validated again as a batch.
    """
    try:
        return BATCH_ADAPTER.validate_python(values), {}
    except ValidationError as exc:
        locations = [err["loc"][0] if err["loc"] else None for err in exc.errors()]
    failing = sorted({i for i in locations if isinstance(i, int)})
    if not failing or len(failing) < len(set(locations)):  # an error not tied to one item: check each
        failing = list(range(len(values)))
    rejected: dict[int, str] = {}
    for index in failing:
        outcome = parse_message(values[index])
        if isinstance(outcome, str):
            rejected[index] = outcome
    rest = [v for i, v in enumerate(values) if i not in rejected]
    try:
        return BATCH_ADAPTER.validate_python(rest), rejected
    except ValidationError:  # cannot happen if single and batch validation agree; stay exact anyway
        events: list[MetricEvent] = []
        for index, value in enumerate(values):
            if index not in rejected:
                outcome = parse_message(value)
                if isinstance(outcome, str):
                    rejected[index] = outcome
                else:
                    events.append(outcome)
        return events, rejected


def prepare_batch(
    messages: Sequence[RawMessage],
    *,
    catalog: CatalogIndex,
    now: datetime | None = None,
    postgres: bool = False,
    enforce_principal: bool = False,
) -> PreparedBatch:
    """Validate and route ``messages``; no I/O, so the consumer overlaps it with the previous batch's writes.

    With ``postgres``, also build the PostgreSQL insert's parameters (``store_batch`` builds them
    otherwise when it needs them) and, when the whole batch is clean, the single-statement fast
    path's arguments (``store_new_batch``).

    With ``enforce_principal``, a valid event whose record lacks the ingest gateway's
    ``tandem-principal-department`` header, or whose header names another department than the
    event's ``department_id``, is dead-lettered (``services.common.kafka.principal_mismatch``).
    """
    with gc_paused():
        return _prepare(
            messages,
            catalog=catalog,
            now=now or datetime.now(UTC),
            postgres=postgres,
            enforce_principal=enforce_principal,
        )


PRINCIPAL_REASON_PREFIX = "principal check failed: "


def _check_principals(
    kept: list[RawMessage], events: list[MetricEvent], dead_letters: list[DeadLetter], now: datetime
) -> tuple[list[RawMessage], list[MetricEvent]]:
    """Drop (and dead-letter) the events whose gateway-stamped department disagrees with theirs."""
    refused: dict[int, str] = {}
    for i, (message, event) in enumerate(zip(kept, events, strict=True)):
        reason = principal_mismatch(getattr(message, "headers", None), department_id=event.department_id)
        if reason is not None:
            refused[i] = reason
    if not refused:
        return kept, events
    for i, reason in refused.items():
        dead_letters.append(dead_letter(kept[i], PRINCIPAL_REASON_PREFIX + reason, now))
    keep = [i for i in range(len(kept)) if i not in refused]
    return [kept[i] for i in keep], [events[i] for i in keep]


def _prepare(
    messages: Sequence[RawMessage], *, catalog: CatalogIndex, now: datetime, postgres: bool, enforce_principal: bool
) -> PreparedBatch:
    dead_letters: list[DeadLetter] = []
    kept = list(messages)
    values = [m.value for m in kept]
    if None in values:
        for message in kept:
            if message.value is None:
                dead_letters.append(dead_letter(message, TOMBSTONE_REASON, now))
        kept = [m for m in kept if m.value is not None]
        values = [m.value for m in kept]
    events, rejected = validate_values(values)  # type: ignore[arg-type]
    if rejected:
        for index, reason in sorted(rejected.items()):
            dead_letters.append(dead_letter(kept[index], reason, now))
        kept = [m for i, m in enumerate(kept) if i not in rejected]
    if enforce_principal and events:
        kept, events = _check_principals(kept, events, dead_letters, now)
    routes, stamps = catalog.route_batch(events)
    batch = PreparedBatch(
        received=len(messages),
        now=now,
        dead_letters=dead_letters,
        messages=kept,
        events=events,
        routes=routes,
        stamps=stamps,
    )
    if postgres and events:
        _serialise(batch)
        if not batch.dead_letters and not any(r.status == EventStatus.REJECTED for r in batch.routes):
            batch.new_batch_args = _new_batch_args(batch)
    return batch


def _serialise(batch: PreparedBatch) -> None:
    """The PostgreSQL insert's parameters, as binary arrays (asyncpg encodes those in C and
    PostgreSQL reads them without parsing): per event the ``event_id`` (uuid), value, occurred_at
    as exact epoch seconds plus microseconds, a series number and a status byte; per series
    (distinct source, department, metric, unit, person and dimensions, which repeat a lot) the
    text columns once.

    Events with U+0000 in a text column (only ``unit`` can hold it by the contract) are valid but
    PostgreSQL text cannot store that character: they go to the DLQ instead of failing the whole
    batch over and over.
    """
    series: dict[tuple[Any, ...], int] = {}
    texts: list[list[str | None]] = [[], [], [], [], [], []]
    unstorable: dict[int, str] = {}
    numbers: list[int] = []
    for event in batch.events:
        dimensions = event.dimensions
        key = (
            event.source,
            event.department_id,
            event.metric,
            event.unit,
            event.employee_id,
            tuple(dimensions.items()) if dimensions else (),
        )
        number = series.get(key)
        if number is None:
            number = series[key] = len(series) + 1  # 1-based, like WITH ORDINALITY
            row: tuple[str | None, ...] = (*key[:5], _dimensions_json(dimensions))  # JSON escapes U+0000
            with_nul = [name for name, value in zip(_TEXT_COLUMNS, key, strict=False) if value and "\x00" in value]
            if with_nul:
                unstorable[number] = _nul_reason(with_nul)
                row = (None,) * len(row)  # no event refers to it
            for column, value in zip(texts, row, strict=True):
                column.append(value)
        numbers.append(number)
    if unstorable:
        keep = [i for i, number in enumerate(numbers) if number not in unstorable]
        for i, message in enumerate(batch.messages):
            if numbers[i] in unstorable:
                batch.dead_letters.append(dead_letter(message, unstorable[numbers[i]], batch.now))
        batch.messages = [batch.messages[i] for i in keep]
        batch.events = [batch.events[i] for i in keep]
        batch.routes = [batch.routes[i] for i in keep]
        batch.stamps = [batch.stamps[i] for i in keep]
        numbers = [numbers[i] for i in keep]
    events = batch.events
    micros = [e.occurred_at.microsecond for e in events]
    codes = _STATUS_CODES
    batch.columns = {
        "event_id": [e.event_id for e in events],
        "value": [e.value for e in events],
        # Whole seconds, exact: the float timestamp is within far less than 0.5 s of them for
        # every year up to 9999; the microseconds come from the datetime itself.
        "sec": [round(stamp - micro / 1e6) for stamp, micro in zip(batch.stamps, micros, strict=True)],
        "usec": micros,
        "series": numbers,
        # One byte per event: PostgreSQL reads the n-th byte in constant time.
        "codes": "".join([codes[r.status] for r in batch.routes]).encode(),
        "s_source": texts[0],
        "s_department_id": texts[1],
        "s_metric": texts[2],
        "s_unit": texts[3],
        "s_employee_id": texts[4],
        "s_dimensions": texts[5],
    }


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
            _serialise(batch)
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
        await _apply_kpi_deltas(conn, per_kpi, received_at=now)
        await apply_bucket_deltas(conn, per_bucket)
    if result.dead_letters:
        await _record_dead_letters(conn, result.dead_letters)
    return result


_DIMENSIONS_CACHE: dict[tuple[tuple[str, str], ...], str] = {}


def _dimensions_json(dimensions: dict[str, str]) -> str | None:
    if not dimensions:
        return None
    key = tuple(sorted(dimensions.items()))
    text_value = _DIMENSIONS_CACHE.get(key)
    if text_value is None:
        text_value = json.dumps(dict(key))
        if len(_DIMENSIONS_CACHE) < 10_000:  # labels repeat a lot; bound the cache anyway
            _DIMENSIONS_CACHE[key] = text_value
    return text_value


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
        if getattr(exc.orig, "sqlstate", None) not in _RETRY_WITH_ON_CONFLICT:
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
                    "dimensions": _dimensions_json(event.dimensions),
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


# The batch as rows: binary arrays expanded server-side by unnest(), joined to the batch's series.
_PG_EVENTS_SOURCE = """
    SELECT CAST(e.event_id AS varchar) AS event_id, s.source, s.department_id, s.metric, s.employee_id, e.value,
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
_PG_INSERT_COLUMNS = """
    INSERT INTO tracking_metric_event
        (event_id, source, department_id, metric, employee_id, value, unit, occurred_at, received_at, status,
         dimensions)
    SELECT event_id, source, department_id, metric, employee_id, value, unit, occurred_at, :received_at,
           CASE code WHEN 'a' THEN 'applied' WHEN 'u' THEN 'unmapped' WHEN 'd' THEN 'deferred' ELSE 'rejected' END,
           dimensions
"""
_RECEIVED_AT = bindparam("received_at", type_=DateTime(timezone=True))

# Fast path: every event is new (the unique index refuses the whole statement otherwise).
_PG_INSERT_NEW_EVENTS = text(
    f"WITH src AS ({_PG_EVENTS_SOURCE}) {_PG_INSERT_COLUMNS} FROM src"
).bindparams(_RECEIVED_AT)

# Exact path: keep the first occurrence of each event_id (sorted, so concurrent consumers take
# index locks in the same order), skip stored ones, return the positions inserted.
_PG_INSERT_EVENTS = text(
    f"""
    WITH src AS ({_PG_EVENTS_SOURCE}),
    firsts AS (
        SELECT DISTINCT ON (event_id COLLATE "C") * FROM src ORDER BY event_id COLLATE "C", idx
    ),
    ins AS (
        {_PG_INSERT_COLUMNS}
        FROM firsts
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    )
    SELECT coalesce(array_agg(f.idx ORDER BY f.idx), '{{}}') FROM firsts AS f JOIN ins USING (event_id)
    """
).bindparams(_RECEIVED_AT)


# --------------------------------------------------------------------------- fast path (PostgreSQL)


def _positional(sql: str, names: Sequence[str]) -> str:
    """``:name`` bind parameters to asyncpg's ``$n`` (``n`` = 1 + the name's index in ``names``)."""
    index = {name: i + 1 for i, name in enumerate(names)}
    return re.sub(r"(?<![:\w]):([a-z_]+)", lambda m: f"${index[m.group(1)]}", sql)


_NEW_BATCH_NAMES = (
    # events (see _serialise)
    "event_id", "value", "sec", "usec", "series", "codes",
    "s_source", "s_department_id", "s_metric", "s_unit", "s_employee_id", "s_dimensions",
    "received_at",
    # per (cycle, KPI) deltas
    "k_cycle", "k_kpi", "k_n", "k_sum", "k_min", "k_max", "k_last", "k_last_at", "k_last_id",
    # per (cycle, KPI, bucket) deltas
    "b_cycle", "b_kpi", "b_start", "b_n", "b_sum", "b_min", "b_max", "b_last", "b_last_at", "b_last_id",
)  # fmt: skip

# One statement, atomic on its own (run outside a transaction): insert every event, merge the
# batch's per-KPI deltas into tracking_kpi and upsert its per-bucket deltas, exactly what
# store_batch does for a batch of new events. If any event_id is stored already (or twice in the
# batch) the unique index fails the whole statement and nothing is applied; deltas are sorted by
# key, like store_batch's, so concurrent consumers usually lock rows in the same order (a deadlock
# also just fails the statement, and the batch takes store_batch's path).
_PG_STORE_NEW_BATCH = _positional(
    f"""
    WITH src AS ({_PG_EVENTS_SOURCE}),
    ins AS ({_PG_INSERT_COLUMNS} FROM src),
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
        WHERE t.cycle_id = d.c AND t.kpi_id = d.k
    ),
    bucket AS (
        INSERT INTO tracking_kpi_bucket AS t
            (cycle_id, kpi_id, bucket_start, event_count, value_sum, value_min, value_max, last_value,
             last_occurred_at, last_event_id)
        SELECT * FROM unnest(
            CAST(:b_cycle AS varchar[]), CAST(:b_kpi AS varchar[]), CAST(:b_start AS timestamptz[]),
            CAST(:b_n AS int8[]), CAST(:b_sum AS float8[]), CAST(:b_min AS float8[]), CAST(:b_max AS float8[]),
            CAST(:b_last AS float8[]), CAST(:b_last_at AS timestamptz[]), CAST(:b_last_id AS varchar[])
        )
        ON CONFLICT (cycle_id, kpi_id, bucket_start) DO UPDATE SET
            event_count = t.event_count + EXCLUDED.event_count,
            value_sum = t.value_sum + EXCLUDED.value_sum,
            value_min = CASE WHEN EXCLUDED.value_min < t.value_min THEN EXCLUDED.value_min ELSE t.value_min END,
            value_max = CASE WHEN EXCLUDED.value_max > t.value_max THEN EXCLUDED.value_max ELSE t.value_max END,
            last_value = CASE WHEN {{later_ex}} THEN EXCLUDED.last_value ELSE t.last_value END,
            last_event_id = CASE WHEN {{later_ex}} THEN EXCLUDED.last_event_id ELSE t.last_event_id END,
            last_occurred_at = CASE WHEN {{later_ex}} THEN EXCLUDED.last_occurred_at ELSE t.last_occurred_at END
    )
    SELECT 1
    """.replace(
        "{later}",
        "(t.last_occurred_at IS NULL OR d.lo > t.last_occurred_at OR "
        "(d.lo = t.last_occurred_at AND d.lid > t.last_event_id))",
    ).replace(
        "{later_ex}",
        "(t.last_occurred_at IS NULL OR EXCLUDED.last_occurred_at > t.last_occurred_at OR "
        "(EXCLUDED.last_occurred_at = t.last_occurred_at AND EXCLUDED.last_event_id > t.last_event_id))",
    ),
    _NEW_BATCH_NAMES,
)


def _new_batch_args(batch: PreparedBatch) -> tuple[Any, ...]:
    """``_PG_STORE_NEW_BATCH``'s arguments: the insert's columns and the aggregates of every event."""
    events = batch.events
    per_kpi, per_bucket = group_batch_deltas(
        range(len(events)),
        routes=batch.routes,
        stamps=batch.stamps,
        values=batch.columns["value"] if batch.columns else [e.value for e in events],
        occurred=[e.occurred_at for e in events],
        event_ids=lambda i: str(events[i].event_id),
    )
    kpis = sorted(per_kpi.items())
    buckets = sorted(per_bucket.items())
    columns = {**(batch.columns or {}), "received_at": batch.now}
    columns.update(
        k_cycle=[key[0] for key, _ in kpis],
        k_kpi=[key[1] for key, _ in kpis],
        k_n=[a.count for _, a in kpis],
        k_sum=[a.total for _, a in kpis],
        k_min=[a.minimum for _, a in kpis],
        k_max=[a.maximum for _, a in kpis],
        k_last=[a.last_value for _, a in kpis],
        k_last_at=[a.last_occurred_at for _, a in kpis],
        k_last_id=[a.last_event_id for _, a in kpis],
        b_cycle=[key[0] for key, _ in buckets],
        b_kpi=[key[1] for key, _ in buckets],
        b_start=[key[2] for key, _ in buckets],
        b_n=[a.count for _, a in buckets],
        b_sum=[a.total for _, a in buckets],
        b_min=[a.minimum for _, a in buckets],
        b_max=[a.maximum for _, a in buckets],
        b_last=[a.last_value for _, a in buckets],
        b_last_at=[a.last_occurred_at for _, a in buckets],
        b_last_id=[a.last_event_id for _, a in buckets],
    )
    return tuple(columns[name] for name in _NEW_BATCH_NAMES)


async def store_new_batch(conn: AsyncConnection, batch: PreparedBatch) -> BatchResult | None:
    """PostgreSQL fast path for a clean batch of new events: one round trip, committed on return.

    Runs ``batch.new_batch_args`` as a single statement on ``conn``'s driver connection while
    ``conn`` has no transaction open (a single statement is its own transaction): the events are
    stored and the aggregates merged together, or nothing is. Returns ``None`` (nothing stored)
    when the fast path does not apply: not PostgreSQL, a transaction is open, the batch has dead
    letters or rejected events, or an ``event_id`` is already stored (a redelivery) or twice in
    the batch; then ``store_batch`` in a transaction does the exact work.
    """
    args = batch.new_batch_args
    if args is None or conn.dialect.name != "postgresql" or conn.in_transaction():
        return None
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        await driver.fetchval(_PG_STORE_NEW_BATCH, *args)
    except Exception as exc:  # asyncpg.PostgresError; asyncpg is only imported with the dialect
        if getattr(exc, "sqlstate", None) in _RETRY_WITH_ON_CONFLICT:
            return None
        raise
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


def _later(stored_at: Any, stored_id: Any, new_at: Any, new_id: Any) -> Any:
    return or_(stored_at.is_(None), new_at > stored_at, and_(new_at == stored_at, new_id > stored_id))


def _kpi_update_stmt() -> Any:
    lo = bindparam("lo", type_=DateTime(timezone=True))
    lid = bindparam("lid", type_=String())
    lv = bindparam("lv", type_=Float())
    mn = bindparam("mn", type_=Float())
    mx = bindparam("mx", type_=Float())
    later = _later(_kpis.c.last_occurred_at, _kpis.c.last_event_id, lo, lid)
    return (
        update(_kpis)
        .where(_kpis.c.cycle_id == bindparam("c", type_=String()), _kpis.c.kpi_id == bindparam("k", type_=String()))
        .values(
            event_count=_kpis.c.event_count + bindparam("n", type_=Integer()),
            value_sum=_kpis.c.value_sum + bindparam("s", type_=Float()),
            value_min=case((or_(_kpis.c.value_min.is_(None), mn < _kpis.c.value_min), mn), else_=_kpis.c.value_min),
            value_max=case((or_(_kpis.c.value_max.is_(None), mx > _kpis.c.value_max), mx), else_=_kpis.c.value_max),
            last_value=case((later, lv), else_=_kpis.c.last_value),
            last_event_id=case((later, lid), else_=_kpis.c.last_event_id),
            last_occurred_at=case((later, lo), else_=_kpis.c.last_occurred_at),
            last_received_at=bindparam("now", type_=DateTime(timezone=True)),
        )
    )


_KPI_UPDATE = _kpi_update_stmt()


async def _apply_kpi_deltas(
    conn: AsyncConnection, deltas: dict[tuple[str, str], Aggregate], *, received_at: datetime
) -> None:
    # Sorted, so concurrent consumers lock KPI rows in the same order (no deadlocks).
    params = [
        {
            "c": cycle_id,
            "k": kpi_id,
            "n": agg.count,
            "s": agg.total,
            "mn": agg.minimum,
            "mx": agg.maximum,
            "lv": agg.last_value,
            "lo": agg.last_occurred_at,
            "lid": agg.last_event_id,
            "now": received_at,
        }
        for (cycle_id, kpi_id), agg in sorted(deltas.items())
    ]
    await conn.execute(_KPI_UPDATE, params)


async def apply_bucket_deltas(conn: AsyncConnection, deltas: dict[tuple[str, str, datetime], Aggregate]) -> None:
    rows = [
        {
            "cycle_id": cycle_id,
            "kpi_id": kpi_id,
            "bucket_start": start,
            "event_count": agg.count,
            "value_sum": agg.total,
            "value_min": agg.minimum,
            "value_max": agg.maximum,
            "last_value": agg.last_value,
            "last_occurred_at": agg.last_occurred_at,
            "last_event_id": agg.last_event_id,
        }
        for (cycle_id, kpi_id, start), agg in sorted(deltas.items())
    ]
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(_buckets)
    ex = stmt.excluded
    later = _later(_buckets.c.last_occurred_at, _buckets.c.last_event_id, ex.last_occurred_at, ex.last_event_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=["cycle_id", "kpi_id", "bucket_start"],
        set_={
            "event_count": _buckets.c.event_count + ex.event_count,
            "value_sum": _buckets.c.value_sum + ex.value_sum,
            "value_min": case((ex.value_min < _buckets.c.value_min, ex.value_min), else_=_buckets.c.value_min),
            "value_max": case((ex.value_max > _buckets.c.value_max, ex.value_max), else_=_buckets.c.value_max),
            "last_value": case((later, ex.last_value), else_=_buckets.c.last_value),
            "last_event_id": case((later, ex.last_event_id), else_=_buckets.c.last_event_id),
            "last_occurred_at": case((later, ex.last_occurred_at), else_=_buckets.c.last_occurred_at),
        },
    )
    await conn.execute(stmt, rows)


async def _record_dead_letters(conn: AsyncConnection, letters: list[DeadLetter]) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(_dead_letters).on_conflict_do_nothing(index_elements=["topic", "partition", "offset"])
    await conn.execute(
        stmt,
        [
            {
                "topic": d.topic,
                "partition": d.partition,
                "offset": d.offset,
                "reason": d.reason,
                "rejected_at": d.rejected_at,
            }
            for d in letters
        ],
    )
