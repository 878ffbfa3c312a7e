"""The CPU half of ingesting a batch: validate, route and serialise, with no I/O, so the consumer
overlaps it with the previous batch's database write."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.events import DeadLetter, MetricEvent
from services.common.kafka import principal_mismatch
from services.tracking.ingest.messages import (
    TOMBSTONE_REASON,
    RawMessage,
    dead_letter,
    dimensions_json,
    gc_paused,
    validate_values,
)
from services.tracking.rules import Aggregate, CatalogIndex, EventStatus, Routing, group_batch_deltas

__all__ = [
    "NEW_BATCH_NAMES",
    "PRINCIPAL_REASON_PREFIX",
    "PreparedBatch",
    "nul_reason",
    "prepare_batch",
    "serialise",
]

PRINCIPAL_REASON_PREFIX = "principal check failed: "

_TEXT_COLUMNS = ("source", "department_id", "metric", "unit", "employee_id")

_STATUS_CODES = {
    EventStatus.APPLIED: "a",
    EventStatus.UNMAPPED: "u",
    EventStatus.DEFERRED: "d",
    EventStatus.REJECTED: "r",
}

NEW_BATCH_NAMES = (
    # events (see serialise)
    "event_id", "value", "sec", "usec", "series", "codes",
    "s_source", "s_department_id", "s_metric", "s_unit", "s_employee_id", "s_dimensions",
    "received_at",
    # per (cycle, KPI) deltas
    "k_cycle", "k_kpi", "k_n", "k_sum", "k_min", "k_max", "k_last", "k_last_at", "k_last_id",
    # per (cycle, KPI, bucket) deltas
    "b_cycle", "b_kpi", "b_start", "b_n", "b_sum", "b_min", "b_max", "b_last", "b_last_at", "b_last_id",
    # the catalog version the batch was routed at (nothing is applied if the catalog changed)
    "catalog_version",
)  # fmt: skip
"""The parameters of the PostgreSQL fast path's single statement, in its positional order
(``fast_path.store_new_batch``)."""


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
    catalog_version: int = 0
    """The catalog version the events were routed at (``CatalogIndex.version``)."""
    columns: dict[str, Any] | None = None
    """PostgreSQL only: the bound parameters of the insert (see ``serialise``)."""
    new_batch_args: tuple[Any, ...] | None = None
    """PostgreSQL only, when every event is storable and nothing is dead-lettered: the positional
    arguments of ``store_new_batch``'s single statement (insert + aggregates, computed as if every
    event were new); ``None`` when that fast path does not apply."""


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
        catalog_version=catalog.version,
    )
    if postgres and events:
        serialise(batch)
        if not batch.dead_letters and not any(r.status == EventStatus.REJECTED for r in batch.routes):
            batch.new_batch_args = _new_batch_args(batch)
    return batch


def nul_reason(fields: Sequence[str]) -> str:
    """Why an event with U+0000 in ``fields`` (text columns) is refused: PostgreSQL text cannot store it."""
    names = " and ".join(fields)
    return f"{names} contains the character U+0000 (\\u0000), which the database cannot store; remove it"


def serialise(batch: PreparedBatch) -> None:
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
            row: tuple[str | None, ...] = (*key[:5], dimensions_json(dimensions))  # JSON escapes U+0000
            with_nul = [name for name, value in zip(_TEXT_COLUMNS, key, strict=False) if value and "\x00" in value]
            if with_nul:
                unstorable[number] = nul_reason(with_nul)
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


_DELTA_COLUMNS = (
    ("n", "count"),
    ("sum", "total"),
    ("min", "minimum"),
    ("max", "maximum"),
    ("last", "last_value"),
    ("last_at", "last_occurred_at"),
    ("last_id", "last_event_id"),
)
"""Suffix of each fast-path delta parameter (``k_<suffix>``, ``b_<suffix>``) and the ``Aggregate``
field it carries."""


def _delta_columns(
    prefix: str, key_names: Sequence[str], deltas: list[tuple[tuple[Any, ...], Aggregate]]
) -> dict[str, list[Any]]:
    """The fast path's columns of one kind of delta (``k`` per KPI, ``b`` per bucket), one array
    per part of the key and per aggregate field."""
    columns = {f"{prefix}_{name}": [key[i] for key, _ in deltas] for i, name in enumerate(key_names)}
    for suffix, attribute in _DELTA_COLUMNS:
        columns[f"{prefix}_{suffix}"] = [getattr(agg, attribute) for _, agg in deltas]
    return columns


def _new_batch_args(batch: PreparedBatch) -> tuple[Any, ...]:
    """The fast path's arguments: the insert's columns and the aggregates of every event."""
    events = batch.events
    per_kpi, per_bucket = group_batch_deltas(
        range(len(events)),
        routes=batch.routes,
        stamps=batch.stamps,
        values=batch.columns["value"] if batch.columns else [e.value for e in events],
        occurred=[e.occurred_at for e in events],
        event_ids=lambda i: str(events[i].event_id),
    )
    columns = {**(batch.columns or {}), "received_at": batch.now, "catalog_version": batch.catalog_version}
    columns.update(_delta_columns("k", ("cycle", "kpi"), sorted(per_kpi.items())))
    columns.update(_delta_columns("b", ("cycle", "kpi", "start"), sorted(per_bucket.items())))
    return tuple(columns[name] for name in NEW_BATCH_NAMES)
