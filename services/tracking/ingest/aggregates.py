"""Merging a batch's deltas into the stored aggregates, with atomic ``UPDATE`` / upsert statements
(so several consumers can share the group), and recording its dead letters. PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Integer, String, Table, and_, bindparam, case, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.events import DeadLetter
from services.tracking.models import TrackingDeadLetter, TrackingKpi, TrackingKpiBucket
from services.tracking.rules import Aggregate

__all__ = ["apply_bucket_deltas", "apply_kpi_deltas", "record_dead_letters"]

_kpis: Table = TrackingKpi.__table__  # type: ignore[assignment]
_buckets: Table = TrackingKpiBucket.__table__  # type: ignore[assignment]
_dead_letters: Table = TrackingDeadLetter.__table__  # type: ignore[assignment]


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


async def apply_kpi_deltas(
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


async def record_dead_letters(conn: AsyncConnection, letters: list[DeadLetter]) -> list[DeadLetter]:
    """Record ``letters`` (one row per source offset); return those not recorded before.

    Only those go to the DLQ topic: a batch read again (after a rebalance, a restart, a retry)
    does not publish its dead letters twice.
    """
    if not letters:
        return []
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    c = _dead_letters.c
    new: set[tuple[str, int, int]] = set()
    for start in range(0, len(letters), _DEAD_LETTER_CHUNK):
        rows = [
            {
                "topic": d.topic,
                "partition": d.partition,
                "offset": d.offset,
                "reason": d.reason,
                "rejected_at": d.rejected_at,
            }
            for d in letters[start : start + _DEAD_LETTER_CHUNK]
        ]
        stmt = (
            insert(_dead_letters)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["topic", "partition", "offset"])
            .returning(c.topic, c.partition, c.offset)
        )
        new.update((t, p, o) for t, p, o in (await conn.execute(stmt)).all())
    return [d for d in letters if (d.topic, d.partition, d.offset) in new]


_DEAD_LETTER_CHUNK = 400
"""Rows per multi-row insert: 5 parameters each, well below SQLite's bound-parameter limit."""
