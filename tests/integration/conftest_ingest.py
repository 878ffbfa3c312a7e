"""Helpers shared by the ingestion tests on real servers (imported, not a pytest conftest).

The test catalog has one SUM KPI per department on one metric; events are keyed
``department:metric`` (``MetricEvent.message_key``), and twelve departments spread the keys over
every partition of a 4-partition topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import func, select

from contracts.events import DeadLetter, MetricEvent
from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from contracts.tracking import LateDataPolicy
from services.common.db import create_engine, create_session_factory
from services.common.kafka import create_producer
from services.common.migrations import upgrade
from services.tracking import service
from services.tracking.consumer import TrackingConsumer, consumer_lag
from services.tracking.models import TrackingKpi, TrackingMetricEvent

__all__ = [
    "CYCLE",
    "DEPARTMENTS",
    "METRIC",
    "catalog",
    "drained",
    "event",
    "in_process_consumer",
    "kpi_totals",
    "prepare_db",
    "produce",
    "read_topic",
    "register_catalog",
    "spread_departments",
    "stored_events",
    "wait_for",
]

CYCLE = "ingest"
METRIC = "production.output_units"
DEPARTMENTS = [f"dep{i}" for i in range(12)]


def spread_departments(partitions: int = 4) -> list[str]:
    """One department per partition of a ``partitions``-partition topic (by the producer's own
    partitioner over ``department:metric`` keys), so a test's events reach every partition."""
    partitioner = DefaultPartitioner()
    chosen: dict[int, str] = {}
    for department in DEPARTMENTS:
        key = f"{department}:{METRIC}".encode()
        chosen.setdefault(partitioner(key, list(range(partitions)), list(range(partitions))), department)
    assert len(chosen) == partitions, "the test departments do not cover every partition"
    return [chosen[p] for p in range(partitions)]


def catalog(departments: Sequence[str] = DEPARTMENTS, *, cycle_id: str = CYCLE) -> KpiCatalog:
    """One SUM KPI ``out-<department>`` per department, over a period around today."""
    today = datetime.now(UTC).date()
    return KpiCatalog(
        cycle_id=cycle_id,
        period_start=date(today.year - 1, 1, 1),
        period_end=date(today.year + 1, 12, 31),
        kpis=[
            KpiDefinition(
                kpi_id=f"out-{department}",
                level=GoalLevel.DEPARTMENT,
                name=f"Output {department}",
                metric=METRIC,
                unit="units",
                aggregation=Aggregation.SUM,
                direction=Direction.HIGHER_IS_BETTER,
                start_value=0,
                target_value=1e9,
                owner_department_id=department,
                update_frequency_hours=1,
                department_id=department,
            )
            for department in departments
        ],
    )


async def register_catalog(engine: Any, kpis: KpiCatalog) -> None:
    async with create_session_factory(engine)() as session:
        await service.replace_catalog(
            session=session,
            catalog=kpis,
            late_data_policy=LateDataPolicy.ACCEPT,
            grace_hours=1,
            check_in_cadence_days=14,
        )


async def prepare_db(url: str, *, with_catalog: bool = True) -> Any:
    """Migrate ``url``; register the test catalog unless told not to. Returns an engine."""
    await upgrade("tracking", url)
    engine = create_engine(url)
    if with_catalog:
        await register_catalog(engine, catalog())
    return engine


def event(department: str, value: float, **extra: Any) -> MetricEvent:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "source": "mes",
        "department_id": department,
        "metric": METRIC,
        "value": value,
        "unit": "units",
        "occurred_at": datetime.now(UTC),
        **extra,
    }
    return MetricEvent(**fields)


async def kpi_totals(engine: Any, cycle_id: str = CYCLE) -> dict[str, tuple[int, float]]:
    """KPI id -> (event count, value sum)."""
    async with create_session_factory(engine)() as session:
        rows = (await session.scalars(select(TrackingKpi).where(TrackingKpi.cycle_id == cycle_id))).all()
        return {k.kpi_id: (k.event_count, k.value_sum) for k in rows}


async def stored_events(engine: Any) -> dict[str, float]:
    """event_id -> value of every stored event."""
    async with create_session_factory(engine)() as session:
        rows = (await session.execute(select(TrackingMetricEvent.event_id, TrackingMetricEvent.value))).all()
        return {r[0]: r[1] for r in rows}


async def stored_count(engine: Any) -> int:
    async with create_session_factory(engine)() as session:
        return int((await session.execute(select(func.count()).select_from(TrackingMetricEvent))).scalar_one())


def expected_totals(events: Sequence[MetricEvent]) -> dict[str, tuple[int, float]]:
    counts: Counter[str] = Counter()
    sums: dict[str, float] = {}
    for e in events:
        counts[e.department_id] += 1
        sums[e.department_id] = sums.get(e.department_id, 0.0) + e.value
    return {f"out-{d}": (counts[d], sums.get(d, 0.0)) for d in DEPARTMENTS}


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.3) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def in_process_consumer(**kwargs: Any) -> AsyncIterator[TrackingConsumer]:
    consumer = TrackingConsumer(**kwargs)
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        consumer.stop()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=15)


async def produce(
    servers: str,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes | None]],
    *,
    idempotence: bool,
    **options: Any,
) -> list[Any]:
    """Send ``(key, value)`` messages in order; their ``RecordMetadata`` (partition, offset)."""
    producer = await create_producer(servers, idempotence=idempotence, **options)
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


def keyed(events: Sequence[MetricEvent]) -> list[tuple[bytes | None, bytes | None]]:
    return [(e.message_key.encode(), e.model_dump_json().encode()) for e in events]


async def read_topic(servers: str, topic: str, *, at_least: int, timeout: float = 30, settle: float = 1.5) -> list[Any]:
    """Every record of ``topic`` from the start: waits for ``at_least``, then ``settle`` seconds
    more, so records beyond the expected ones (duplicates) are seen too."""
    reader = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False)
    await reader.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < at_least:
                for batch in (await reader.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        end = asyncio.get_running_loop().time() + settle
        while asyncio.get_running_loop().time() < end:
            for batch in (await reader.getmany(timeout_ms=300)).values():
                records.extend(batch)
    finally:
        await reader.stop()
    return records


def dead_letters(records: Sequence[Any]) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(r.value) for r in records]


async def drained(servers: str, *, group: str, topic: str) -> bool:
    """The group's lag is 0 on every partition that holds records, with offsets committed."""
    lags = await consumer_lag(servers, group_id=group, topic=topic)
    return sum(p.lag for p in lags) == 0 and all(p.committed is not None for p in lags if p.end_offset)
