"""One batch of raw Kafka messages into the database, exactly once per ``event_id``.

``ingest_batch`` runs inside the caller's transaction and never commits: the
consumer commits the database, and only then the Kafka offsets. Steps:

1. validate every message against ``MetricEvent`` (one reused ``TypeAdapter``);
   failures become ``DeadLetter`` s with a readable reason;
2. route valid events to KPIs (``rules.CatalogIndex``) and insert them in bulk
   with ``ON CONFLICT (event_id) DO NOTHING RETURNING event_id`` (PostgreSQL: one
   ``unnest`` statement; SQLite: chunked multi-row ``VALUES``), so a redelivered
   event is recognised and skipped;
3. aggregate only the newly inserted events, per (cycle, KPI) and per trend
   bucket, with atomic ``UPDATE``/upsert statements that merge the batch's
   count/sum/min/max/last into the stored ones.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import DateTime, Float, Integer, String, Table, and_, bindparam, case, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events import DeadLetter, MetricEvent
from contracts.tracking import LateDataPolicy
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
    group_deltas,
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
]

EVENT_ADAPTER: TypeAdapter[MetricEvent] = TypeAdapter(MetricEvent)
"""Built once: validating with a reused adapter avoids per-message schema setup."""

_SQLITE_CHUNK = 400  # 11 columns per row, well below SQLite's bound-parameter limit
_PG_CHUNK = 20_000

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
        return "message has no value (tombstone)"
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
    """A batch after the CPU-only steps (validate, dedupe within the batch, route), before any I/O."""

    received: int
    now: datetime
    dead_letters: list[DeadLetter]
    entries: dict[str, tuple[RawMessage, MetricEvent, datetime, Routing]]
    duplicates: int


def prepare_batch(
    messages: Sequence[RawMessage], *, catalog: CatalogIndex, now: datetime | None = None
) -> PreparedBatch:
    """Validate and route ``messages``; no I/O, so the consumer overlaps it with the previous batch's writes."""
    now = now or datetime.now(UTC)
    dead_letters: list[DeadLetter] = []
    entries: dict[str, tuple[RawMessage, MetricEvent, datetime, Routing]] = {}
    validate = EVENT_ADAPTER.validate_json
    for message in messages:
        try:
            event = validate(message.value) if message.value is not None else None
        except ValidationError as exc:
            dead_letters.append(dead_letter(message, _reason(exc), now))
            continue
        if event is None:
            dead_letters.append(dead_letter(message, "message has no value (tombstone)", now))
            continue
        event_id = str(event.event_id)
        if event_id not in entries:
            entries[event_id] = (message, event, as_utc(event.occurred_at), catalog.route(event))
    return PreparedBatch(
        received=len(messages),
        now=now,
        dead_letters=dead_letters,
        entries=entries,
        duplicates=len(messages) - len(dead_letters) - len(entries),
    )


async def ingest_batch(
    conn: AsyncConnection,
    messages: Sequence[RawMessage],
    *,
    catalog: CatalogIndex,
    now: datetime | None = None,
) -> BatchResult:
    """Validate, deduplicate, store and aggregate ``messages`` in ``conn``'s open transaction."""
    return await store_batch(conn, prepare_batch(messages, catalog=catalog, now=now))


async def store_batch(conn: AsyncConnection, batch: PreparedBatch) -> BatchResult:
    """Insert the batch's events (new ones only) and aggregate them, in ``conn``'s open transaction."""
    now = batch.now
    result = BatchResult(received=batch.received, duplicates=batch.duplicates, dead_letters=list(batch.dead_letters))
    inserted = await _insert_events(conn, batch.entries, received_at=now) if batch.entries else []
    result.inserted = len(inserted)
    result.duplicates += len(batch.entries) - len(inserted)

    applied: list[tuple[float, datetime, str, list[KpiRule]]] = []
    for event_id in inserted:
        message, event, occurred_at, route = batch.entries[event_id]
        if route.status == EventStatus.APPLIED:
            applied.append((event.value, occurred_at, event_id, route.targets))
        elif route.status == EventStatus.UNMAPPED:
            result.unmapped += 1
        elif route.status == EventStatus.DEFERRED:
            result.deferred += 1
        else:
            result.dead_letters.append(dead_letter(message, route.reason or "rejected", now))
    result.applied = len(applied)
    if applied:
        per_kpi, per_bucket = group_deltas(applied)
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


async def _insert_events(
    conn: AsyncConnection,
    entries: dict[str, tuple[RawMessage, MetricEvent, datetime, Routing]],
    *,
    received_at: datetime,
) -> list[str]:
    """Insert the events; return the ids that were not stored before."""
    inserted: list[str] = []
    ids = list(entries)
    if conn.dialect.name == "postgresql":
        for start in range(0, len(ids), _PG_CHUNK):
            chunk = ids[start : start + _PG_CHUNK]
            items = [entries[i] for i in chunk]
            params = {
                "event_id": chunk,
                "source": [e.source for _m, e, _o, _r in items],
                "department_id": [e.department_id for _m, e, _o, _r in items],
                "metric": [e.metric for _m, e, _o, _r in items],
                "employee_id": [e.employee_id for _m, e, _o, _r in items],
                "value": [e.value for _m, e, _o, _r in items],
                "unit": [e.unit for _m, e, _o, _r in items],
                "occurred_at": [o for _m, _e, o, _r in items],
                "status": [r.status for _m, _e, _o, r in items],
                "dimensions": [_dimensions_json(e.dimensions) for _m, e, _o, _r in items],
                "received_at": received_at,
            }
            found = await conn.execute(_PG_INSERT_EVENTS, params)
            inserted.extend(found.scalars())
        return inserted
    for start in range(0, len(ids), _SQLITE_CHUNK):
        rows = []
        for event_id in ids[start : start + _SQLITE_CHUNK]:
            _m, event, occurred_at, route = entries[event_id]
            rows.append(
                {
                    "event_id": event_id,
                    "source": event.source,
                    "department_id": event.department_id,
                    "metric": event.metric,
                    "employee_id": event.employee_id,
                    "value": event.value,
                    "unit": event.unit,
                    "occurred_at": occurred_at,
                    "status": route.status,
                    "dimensions": _dimensions_json(event.dimensions),
                    "received_at": received_at,
                }
            )
        stmt = (
            sqlite_insert(_events)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(_events.c.event_id)
        )
        found = await conn.execute(stmt)
        inserted.extend(found.scalars())
    return inserted


# One statement per batch: arrays bound once, expanded server-side by unnest().
_PG_INSERT_EVENTS = text(
    """
    INSERT INTO tracking_metric_event
        (event_id, source, department_id, metric, employee_id, value, unit, occurred_at, received_at, status,
         dimensions)
    SELECT e.event_id, e.source, e.department_id, e.metric, e.employee_id, e.value, e.unit, e.occurred_at,
           :received_at, e.status, e.dimensions
    FROM unnest(
        CAST(:event_id AS varchar[]), CAST(:source AS varchar[]), CAST(:department_id AS varchar[]),
        CAST(:metric AS varchar[]), CAST(:employee_id AS varchar[]), CAST(:value AS float8[]),
        CAST(:unit AS varchar[]), CAST(:occurred_at AS timestamptz[]), CAST(:status AS varchar[]),
        CAST(:dimensions AS text[])
    ) AS e(event_id, source, department_id, metric, employee_id, value, unit, occurred_at, status, dimensions)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
).bindparams(bindparam("received_at", type_=DateTime(timezone=True)))


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
